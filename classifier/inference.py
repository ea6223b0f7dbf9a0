"""The model that tags texts: plain arrays, loaded without scikit-learn, skops or pickle.

Training (:class:`~classifier.model.ThemeClassifier`) fits scikit-learn estimators; what scoring
needs from them is a handful of arrays: the vocabularies and idf weights of the TF-IDF features,
one coefficient matrix with the intercepts (presence and polarity of every theme), the calibration
of each presence score and the decision thresholds. :class:`CompiledModel` holds exactly those,
plus the codebook's content and the preprocessing settings, and is saved as an ``.npz`` file read
with ``allow_pickle=False``: the file can hold numbers and text, never code.

Tagging and ``classify()`` run on it. Importing scikit-learn, scipy.stats and skops costs over two
seconds per process; numpy, scipy.sparse and spaCy are all this module needs.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from classifier._errors import ClassifierError, model_not_found
from classifier._files import atomic_path
from classifier.prediction import (
    ANALYSED,
    STATUS_EMPTY,
    STATUS_NOT_TEXT,
    STATUS_OK,
    STATUS_TRUNCATED,
    BatchScores,
    Prediction,
)
from classifier.preprocessing import Sentence, SpacyPreprocessor
from classifier.vectorize import NgramTfidf

FORMAT = "therapy-themes-compiled-model"
FORMAT_VERSION = 1
EVIDENCE_SEPARATOR = " … "
# A model file whose arrays unpack to more than this is refused before anything is read
# (a crafted file could otherwise claim gigabytes of zeros).
MAX_UNPACKED_BYTES = 1 << 30
CALIBRATIONS = ("sigmoid", "isotonic")


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function, 1 / (1 + exp(-x)), without overflow for large |x|.

    scipy.special.expit gives the same numbers, but importing scipy.special costs ~0.5 s of a
    fresh process's start-up.
    """
    return np.exp(-np.logaddexp(0.0, -x))


def text_status(value: object, max_chars: int | None = None) -> str:
    """``ok`` for a non-blank string (``truncated`` if longer than ``max_chars``, which only
    that many characters are analysed of); ``empty`` for a blank string or a missing value
    (None, NaN, ``pd.NA``); ``not_text`` for anything else, such as a number.

    A blank cell is ``empty`` however it is read: a CSV reader may give ``""`` and pandas NaN
    for the same cell, and the CLI and the library must agree on it.
    """
    if isinstance(value, str):
        if not value.strip():
            return STATUS_EMPTY
        return STATUS_TRUNCATED if max_chars is not None and len(value) > max_chars else STATUS_OK
    if _is_missing(value):
        return STATUS_EMPTY
    return STATUS_NOT_TEXT


def _is_missing(value: object) -> bool:
    # Without importing pandas: its NA and NaT are recognised by type name.
    if value is None or (isinstance(value, float) and value != value):
        return True
    return type(value).__name__ in ("NAType", "NaTType") or (
        isinstance(value, np.floating) and bool(np.isnan(value))
    )


class CompiledModel:
    """A fitted theme classifier as arrays: what ``classify()`` and ``classifier tag`` run.

    Built by :meth:`ThemeClassifier.compile() <classifier.model.ThemeClassifier.compile>`, saved
    with :meth:`save` and read with :meth:`load` (or :func:`classifier.load_model`). Its scores
    are the fitted estimators' own ``predict_proba`` (tested).

    Parameters
    ----------
    themes, polarities : sequence of str
        Theme ids (codebook order) and the (positive, negative) polarity names.
    preprocessor : SpacyPreprocessor
    parts : list of NgramTfidf, or of fitted transformers
        The feature blocks, in the order of ``coef``'s rows: :class:`NgramTfidf` for the
        built-in TF-IDF (saveable as ``.npz``), or, for a model trained with other
        ``features``, the fitted scikit-learn transformer itself (in memory only).
    coef : numpy.ndarray, shape (n_features, 2 * n_themes)
        Presence logits in the first ``n_themes`` columns, polarity logits in the rest.
    intercept : numpy.ndarray, shape (2 * n_themes,)
    calibration : dict
        ``{"method": "sigmoid", "a": array, "b": array}`` (presence = 1 / (1 + exp(a * logit + b)))
        or ``{"method": "isotonic", "x": [array per theme], "y": [array per theme]}``.
    thresholds : numpy.ndarray, shape (n_themes,)
        Decision threshold on each calibrated presence score.
    codebook : dict
        ``name``, ``version`` and ``toml`` (the codebook file's text) the model was trained with.
    info : dict, optional
        Anything else worth keeping (library versions, training parameters).

    Examples
    --------
    >>> from classifier import load_model
    >>> model = load_model()                                   # doctest: +SKIP
    >>> model.classify("She cancelled twice this month.").labels  # doctest: +SKIP
    {'boundaries': 'negative'}
    """

    def __init__(
        self,
        themes: Sequence[str],
        polarities: Sequence[str],
        preprocessor: SpacyPreprocessor,
        parts: list,
        coef: np.ndarray,
        intercept: np.ndarray,
        calibration: dict,
        thresholds: np.ndarray,
        codebook: dict,
        info: dict | None = None,
    ):
        self.themes_ = tuple(themes)
        self.polarities_ = tuple(polarities)
        self.preprocessor_ = preprocessor
        self.parts = list(parts)
        self.coef = np.asarray(coef)
        self.intercept = np.asarray(intercept)
        self.calibration = calibration
        self.thresholds = np.asarray(thresholds, dtype=float)
        self.codebook = dict(codebook)
        self.info = dict(info or {})
        self._check()

    @property
    def thresholds_(self) -> dict[str, float]:
        return dict(zip(self.themes_, self.thresholds.tolist(), strict=True))

    @property
    def arrays_only(self) -> bool:
        """Whether every feature block is the built-in TF-IDF as arrays (saveable as .npz)."""
        return all(isinstance(part, NgramTfidf) for part in self.parts)

    def _check(self) -> None:
        n_themes = len(self.themes_)
        problems = []
        if len(self.polarities_) != 2:
            problems.append("there must be two polarities")
        if self.arrays_only:
            n_features = sum(part.n_features for part in self.parts)
            if self.coef.shape != (n_features, 2 * n_themes):
                problems.append(f"coefficients of shape {self.coef.shape}, expected "
                                f"{(n_features, 2 * n_themes)}")  # fmt: skip
        elif self.coef.ndim != 2 or self.coef.shape[1] != 2 * n_themes:
            # A fitted transformer's width is known only by transforming something; such parts
            # come from ThemeClassifier.compile, which took coef from that transformer's output.
            problems.append(f"coefficients of shape {self.coef.shape}, expected "
                            f"(n_features, {2 * n_themes})")  # fmt: skip
        if self.intercept.shape != (2 * n_themes,) or self.thresholds.shape != (n_themes,):
            problems.append("intercepts or thresholds do not match the themes")
        method = self.calibration.get("method")
        if method == "sigmoid":
            if any(np.shape(self.calibration[k]) != (n_themes,) for k in ("a", "b")):
                problems.append("sigmoid calibration does not match the themes")
        elif method == "isotonic":
            xs, ys = self.calibration.get("x", []), self.calibration.get("y", [])
            if len(xs) != n_themes or len(ys) != n_themes:
                problems.append("isotonic calibration does not match the themes")
            elif any(
                np.shape(x) != np.shape(y) or np.ndim(x) != 1 for x, y in zip(xs, ys, strict=True)
            ):
                problems.append("isotonic calibration arrays differ in shape")
        else:
            problems.append(f"unknown calibration {method!r}")
        arrays = [self.coef, self.intercept, self.thresholds] + [
            p.idf for p in self.parts if isinstance(p, NgramTfidf)
        ]
        if not all(np.isfinite(a).all() for a in arrays if a.size):
            problems.append("non-finite numbers")
        if problems:
            raise ClassifierError("inconsistent model: " + "; ".join(problems))

    # --------------------------------------------------------------- prediction
    def predict_proba(self, X: Sequence[object]) -> np.ndarray:
        """Calibrated probability that each theme is present: shape (n_texts, n_themes)."""
        return self._scores(self._vectorize(self.preprocessor_.transform(list(X))))[0]

    def predict(self, X: Sequence[object]) -> list[dict[str, str]]:
        """Label dicts ``{theme: polarity}`` (detected themes only), one per text."""
        return [prediction.labels for prediction in self.classify_many(X, explain=False)]

    def classify(self, text: object, explain: bool = True) -> Prediction:
        """Classify one text, with its evidence unless ``explain=False``.

        One text is what a reader looks at, so the sentence behind each tag comes by default;
        batches (:meth:`classify_many`, ``tag_frame``, ``classifier tag``) add it on request.
        """
        return self.classify_many([text], explain=explain)[0]

    def classify_many(
        self, texts: Iterable[object], explain: bool = False, batch_size: int = 5000
    ) -> list[Prediction]:
        """Classify texts; the result has the same length and order as ``texts``.

        Parameters
        ----------
        texts : iterable of str
            Anything iterable; non-strings and empty strings come back untagged with a status.
        explain : bool, default=False
            Find the evidence sentence(s) of every detected theme (about 40% more time), as
            ``classifier tag --explain`` does.
        batch_size : int, default=5000
            Texts analysed at a time, which bounds memory.
        """
        texts = list(texts)
        predictions: list[Prediction] = []
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            predictions.extend(self.score_batch(batch, explain).predictions())
        return predictions

    def score_batch(self, texts: Sequence[object], explain: bool = False) -> BatchScores:
        """Classify one batch of texts into arrays (see :class:`BatchScores`).

        What the batch CLI uses: it writes columns straight from the arrays instead of building
        a :class:`Prediction` per text. Memory grows with the batch; :meth:`classify_many`
        splits long inputs into batches.
        """
        limit = self.preprocessor_.max_chars
        statuses = [text_status(text, limit) for text in texts]
        # Exports repeat themselves ("Nothing", "All good"): analyse each distinct text once.
        distinct: dict[str, int] = {}
        rows = np.full(len(statuses), -1, dtype=np.int64)
        for i, (text, status) in enumerate(zip(texts, statuses, strict=True)):
            if status in ANALYSED:
                rows[i] = distinct.setdefault(text, len(distinct))
        unique = list(distinct)
        analysed = []
        if explain and unique:
            analysed = list(self.preprocessor_.analyse(unique, sentences=True))
            features = [doc for doc, _ in analysed]
        elif unique:
            # Feature ids rather than strings: the same features, several times faster.
            features = self.preprocessor_.analyse_ids(unique)
        else:
            features = []
        presence, positive = self._scores(self._vectorize(features))
        detected = presence >= self.thresholds
        evidence: dict[tuple[int, int], str] = {}
        if explain and unique:
            evidence = self._evidence(unique, [sents for _, sents in analysed], detected)
        return BatchScores(
            themes=self.themes_,
            polarities=self.polarities_,
            status=statuses,
            row=rows,
            presence=presence,
            positive=positive,
            detected=detected,
            evidence=evidence,
        )

    def _vectorize(self, docs: Sequence[str]) -> list:
        """The feature blocks of the documents, not stacked.

        Scoring multiplies each block by its own rows of the coefficients, which gives the same
        logits as stacking first; ``sparse.hstack`` cost ~0.4 ms a call, a fifth of the latency
        of classifying one text.

        ``docs`` may also be :class:`~classifier.preprocessing.FeatureIds` (what
        :meth:`score_batch` passes), which the built-in TF-IDF blocks read without strings.
        """
        from classifier.preprocessing import FeatureIds

        if isinstance(docs, FeatureIds):
            if self.arrays_only:
                return [part.transform_ids(docs) for part in self.parts]
            docs = docs.strings()
        return [part.transform(docs) for part in self.parts]

    def _scores(self, parts: list) -> tuple[np.ndarray, np.ndarray]:
        """(presence probability, probability of the positive polarity), each (n, n_themes)."""
        n_themes = len(self.themes_)
        n_rows = parts[0].shape[0] if parts else 0
        if n_rows == 0:
            return np.zeros((0, n_themes)), np.zeros((0, n_themes))
        logits = np.tile(self.intercept, (n_rows, 1))
        offset = 0
        for part in parts:
            logits += part @ self.coef[offset : offset + part.shape[1]]
            offset += part.shape[1]
        positive = expit(logits[:, n_themes:])
        presence_logits = logits[:, :n_themes]
        if self.calibration["method"] == "sigmoid":
            a, b = self.calibration["a"], self.calibration["b"]
            presence = expit(-(a * presence_logits + b))
        else:  # isotonic: scikit-learn's IsotonicRegression(out_of_bounds="clip").predict
            presence = np.column_stack(
                [
                    np.interp(presence_logits[:, col], x, y)
                    for col, (x, y) in enumerate(
                        zip(self.calibration["x"], self.calibration["y"], strict=True)
                    )
                ]
            )
        return presence, positive

    def _evidence(
        self, texts: Sequence[str], sentences: Sequence[list[Sentence]], detected: np.ndarray
    ) -> dict[tuple[int, int], str]:
        """Per detected (text, theme): the sentence(s) whose own presence score reaches the
        theme's threshold, or, when none does alone, the one that scores highest."""
        evidence: dict[tuple[int, int], str] = {}
        owners, spans, sentence_features = [], [], []
        for row, sents in enumerate(sentences):
            if not detected[row].any():
                continue
            if len(sents) <= 1:  # one sentence: the evidence is the whole text
                for col in np.flatnonzero(detected[row]):
                    evidence[(row, col)] = texts[row].strip()
                continue
            for sent in sents:
                owners.append(row)
                spans.append(sent)
                sentence_features.append(sent.features)
        if not owners:
            return evidence
        scores = self._scores(self._vectorize(sentence_features))[0]
        owners_arr = np.asarray(owners)
        for row in np.unique(owners_arr):
            members = np.flatnonzero(owners_arr == row)
            for col in np.flatnonzero(detected[row]):
                theme_scores = scores[members, col]
                chosen = members[theme_scores >= self.thresholds[col]]
                if len(chosen) == 0:
                    chosen = members[[int(np.argmax(theme_scores))]]
                analysed = self.preprocessor_.analysed_text(texts[row])  # what offsets index
                evidence[(row, col)] = EVIDENCE_SEPARATOR.join(
                    analysed[spans[i].start : spans[i].end].strip() for i in chosen
                )
        return evidence

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the model as a compressed ``.npz`` (arrays and JSON only), atomically.

        Raises
        ------
        ClassifierError
            If the features are not the built-in TF-IDF (a model trained with other
            ``features``): save the ThemeClassifier as ``.skops`` instead.

        Examples
        --------
        >>> model.compile().save("models/theme-classifier.npz")   # doctest: +SKIP
        PosixPath('models/theme-classifier.npz')
        """
        # Only NgramTfidf blocks are arrays; a fitted transformer would need pickle-like code.
        if not self.arrays_only:
            raise ClassifierError(
                f"{Path(path).name}: only the built-in TF-IDF features can be saved as .npz; "
                "save this model as .skops instead"
            )
        n_themes = len(self.themes_)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "themes": list(self.themes_),
            "polarities": list(self.polarities_),
            "codebook": self.codebook,
            "preprocessing": self.preprocessor_.get_params(),
            "parts": [
                {
                    "analyzer": part.analyzer,
                    "ngram_range": list(part.ngram_range),
                    "sublinear_tf": part.sublinear_tf,
                    "n_terms": part.n_features,
                }
                for part in self.parts
            ],
            "calibration": self.calibration["method"],
            "info": self.info,
        }
        arrays = {
            "meta": _encode(json.dumps(meta, ensure_ascii=False, default=_json_default)),
            "coef": self.coef,
            "intercept": self.intercept,
            "thresholds": self.thresholds,
        }
        for i, part in enumerate(self.parts):
            arrays[f"part{i}_terms"] = _encode("\n".join(part.terms))
            arrays[f"part{i}_idf"] = part.idf
        if self.calibration["method"] == "sigmoid":
            arrays["sigmoid_a"] = np.asarray(self.calibration["a"], dtype=float)
            arrays["sigmoid_b"] = np.asarray(self.calibration["b"], dtype=float)
        else:
            for col in range(n_themes):
                arrays[f"isotonic_x{col}"] = np.asarray(self.calibration["x"][col], dtype=float)
                arrays[f"isotonic_y{col}"] = np.asarray(self.calibration["y"][col], dtype=float)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary, open(temporary, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> CompiledModel:
        """Read a model written by :meth:`save`; anything else gives a one-line error.

        Raises
        ------
        ClassifierError
            Missing, truncated, crafted or inconsistent file (the message names the file).
        """
        path = Path(path)
        if not path.is_file():
            raise model_not_found(path)
        try:
            with zipfile.ZipFile(path) as archive:
                unpacked = sum(member.file_size for member in archive.infolist())
            if unpacked > MAX_UNPACKED_BYTES:
                raise ClassifierError(
                    f"{path}: refused: its arrays would take {unpacked / 2**20:,.0f} MB"
                )
            with np.load(path, allow_pickle=False) as stored:
                return cls._from_arrays(stored)
        except ClassifierError as exc:
            message = str(exc)
            raise ClassifierError(
                message if message.startswith(str(path)) else f"{path}: {message}"
            ) from None
        except Exception as exc:  # zipfile, numpy and json each raise their own types
            raise ClassifierError(
                f"{path}: not a readable model file ({type(exc).__name__})"
            ) from None

    @classmethod
    def _from_arrays(cls, stored) -> CompiledModel:
        meta = json.loads(_decode(stored["meta"]))
        if meta.get("format") != FORMAT:
            raise ClassifierError("not a compiled theme-classifier model")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ClassifierError(
                f"model format version {meta.get('format_version')} is not supported "
                f"(this version reads {FORMAT_VERSION}); retrain with `classifier train`"
            )
        themes = [str(theme) for theme in meta["themes"]]
        parts = []
        for i, spec in enumerate(meta["parts"]):
            terms = _decode(stored[f"part{i}_terms"]).split("\n")
            if len(terms) != int(spec["n_terms"]):
                raise ClassifierError(f"feature block {i}: vocabulary size does not match")
            parts.append(
                NgramTfidf(
                    str(spec["analyzer"]),
                    tuple(int(n) for n in spec["ngram_range"]),
                    terms,
                    _float_array(stored[f"part{i}_idf"], np.float32),
                    sublinear_tf=bool(spec["sublinear_tf"]),
                )
            )
        method = meta["calibration"]
        if method == "sigmoid":
            calibration = {
                "method": method,
                "a": _float_array(stored["sigmoid_a"]),
                "b": _float_array(stored["sigmoid_b"]),
            }
        elif method == "isotonic":
            calibration = {
                "method": method,
                "x": [_float_array(stored[f"isotonic_x{c}"]) for c in range(len(themes))],
                "y": [_float_array(stored[f"isotonic_y{c}"]) for c in range(len(themes))],
            }
        else:
            raise ClassifierError(f"unknown calibration {method!r}")
        settings = {
            key: value
            for key, value in meta["preprocessing"].items()
            if key in SpacyPreprocessor._PARAMS
        }
        return cls(
            themes=themes,
            polarities=[str(p) for p in meta["polarities"]],
            preprocessor=SpacyPreprocessor(**settings),
            parts=parts,
            coef=_float_array(stored["coef"]),
            intercept=_float_array(stored["intercept"]),
            calibration=calibration,
            thresholds=_float_array(stored["thresholds"]),
            codebook=meta["codebook"],
            info=meta.get("info", {}),
        )


def _encode(text: str) -> np.ndarray:
    # Text as UTF-8 bytes in a uint8 array: numpy's unicode arrays pad every item to the longest.
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _decode(array: np.ndarray) -> str:
    if array.dtype != np.uint8 or array.ndim != 1:
        raise ClassifierError("a text field is not stored as bytes")
    return array.tobytes().decode("utf-8")


def _float_array(array: np.ndarray, dtype=np.float64) -> np.ndarray:
    if array.dtype.kind != "f":
        raise ClassifierError(f"expected numbers, found an array of {array.dtype}")
    return array.astype(dtype, copy=False)


def _json_default(value):
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
