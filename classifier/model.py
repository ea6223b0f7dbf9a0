"""The theme classifier: spaCy features -> TF-IDF -> per-theme calibrated presence and polarity.

For every theme of the codebook the model learns two things from the same TF-IDF features:

* presence: a logistic regression, calibrated with
  :class:`~sklearn.calibration.CalibratedClassifierCV` so that its score is a probability,
  and a decision threshold tuned for F1 by
  :class:`~sklearn.model_selection.TunedThresholdClassifierCV` (cross-validation on the training
  data only);
* polarity: a logistic regression trained on the texts that carry the theme, telling a strength
  from a concern.

Evidence for a detected theme is the sentence (or sentences) that the theme's presence model
scores highest, so the explanation comes from the same model as the tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, TunedThresholdClassifierCV
from sklearn.pipeline import FeatureUnion
from sklearn.utils.validation import check_is_fitted

from classifier._errors import ClassifierError
from classifier.codebook import load_codebook
from classifier.features import TfidfFeatures
from classifier.prediction import (
    STATUS_EMPTY,
    STATUS_NOT_TEXT,
    STATUS_OK,
    BatchScores,
    Prediction,
)
from classifier.preprocessing import Sentence, SpacyPreprocessor

EVIDENCE_SEPARATOR = " … "


def _text_status(value: object) -> str:
    if not isinstance(value, str):
        return STATUS_NOT_TEXT
    return STATUS_OK if value.strip() else STATUS_EMPTY


def check_labels(
    labels: Iterable[Mapping[str, str]], themes: Sequence[str], polarities: Sequence[str]
) -> list[dict[str, str]]:
    """Validate label dicts against the codebook; return them as plain dicts.

    Raises :class:`ClassifierError` naming the row (0-based) and the bad value.
    """
    known_themes, known_polarities = set(themes), set(polarities)
    checked = []
    for row, label in enumerate(labels):
        if not isinstance(label, Mapping):
            raise ClassifierError(f"labels row {row}: expected a mapping of theme to polarity")
        for theme, polarity in label.items():
            if theme not in known_themes:
                raise ClassifierError(f"labels row {row}: unknown theme {theme!r}")
            if polarity not in known_polarities:
                raise ClassifierError(f"labels row {row}: unknown polarity {polarity!r}")
        checked.append(dict(label))
    return checked


class ThemeClassifier(ClassifierMixin, BaseEstimator):
    """Tag texts with codebook themes, each with a polarity, a calibrated score and evidence.

    Parameters
    ----------
    codebook : str or None, default=None
        Path of the codebook TOML whose themes to learn; None uses the packaged codebook.
    negation : bool, default=True
        Mark tokens in a negation scope (see :class:`SpacyPreprocessor`).
    max_scope : int, default=8
        Longest negation scope in tokens.
    ngram_range : tuple of int, default=(1, 2)
        Word n-grams of the TF-IDF features.
    char_ngram_range : tuple of int or None, default=(3, 5)
        Character n-grams (within word boundaries) of the normalised tokens, which make the model
        robust to typos and word forms ("listend", "listening"); None to use words only.
    min_df : int, default=2
        Ignore n-grams seen in fewer training texts.
    C : float, default=4.0
        Inverse regularisation strength of the logistic regressions.
    calibration : {"sigmoid", "isotonic"}, default="sigmoid"
        Calibration method of the presence scores.
    cv : int, default=5
        Folds for calibration and for threshold tuning.
    n_thresholds : int, default=100
        Candidate thresholds tried per theme when tuning (fewer is faster: each is scored with
        scikit-learn's f1_score, whose input checks dominate the fitting time of small models).
    random_state : int, default=0
        Seed of the cross-validation splits; the same data and settings give the same model.

    Attributes
    ----------
    themes_ : tuple of str
        Theme ids, in codebook order.
    polarities_ : tuple of str
        The (positive, negative) polarity names.
    preprocessor_ : SpacyPreprocessor
    vectorizer_ : FeatureUnion of TfidfFeatures (word and character n-grams)
    presence_ : dict of str to TunedThresholdClassifierCV
    polarity_ : dict of str to LogisticRegression (or DummyClassifier when one polarity is absent)
    thresholds_ : dict of str to float
        Tuned decision threshold on the calibrated presence probability.

    Examples
    --------
    >>> from classifier import ThemeClassifier
    >>> model = ThemeClassifier().fit(texts, labels)            # doctest: +SKIP
    >>> model.predict(["She cancelled twice this month."])      # doctest: +SKIP
    [{'boundaries': 'negative'}]
    """

    def __init__(
        self,
        codebook: str | None = None,
        negation: bool = True,
        max_scope: int = 8,
        ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] | None = (3, 5),
        min_df: int = 2,
        C: float = 4.0,
        calibration: str = "sigmoid",
        cv: int = 5,
        n_thresholds: int = 100,
        random_state: int = 0,
    ):
        self.codebook = codebook
        self.negation = negation
        self.max_scope = max_scope
        self.ngram_range = ngram_range
        self.char_ngram_range = char_ngram_range
        self.min_df = min_df
        self.C = C
        self.calibration = calibration
        self.cv = cv
        self.n_thresholds = n_thresholds
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Sequence[object], y: Sequence[Mapping[str, str]]) -> ThemeClassifier:
        """Learn every theme of the codebook from texts ``X`` and label dicts ``y``."""
        codebook = load_codebook(self.codebook)
        texts = list(X)
        labels = check_labels(list(y), codebook.theme_ids, codebook.polarities)
        if len(texts) != len(labels):
            raise ClassifierError(f"{len(texts)} texts but {len(labels)} label rows")

        from classifier.persistence import library_versions

        self.versions_ = library_versions()
        self.themes_ = codebook.theme_ids
        self.polarities_ = tuple(codebook.polarities)
        self.codebook_name_ = codebook.name
        self.codebook_version_ = codebook.version
        self.preprocessor_ = SpacyPreprocessor(negation=self.negation, max_scope=self.max_scope)
        self.vectorizer_ = self._vectorizer()
        presence_targets = {}
        for theme in self.themes_:
            present = np.array([theme in label for label in labels], dtype=int)
            n_present = int(present.sum())
            if min(n_present, len(present) - n_present) < self.cv:
                raise ClassifierError(
                    f"theme {theme!r}: {n_present} of {len(present)} texts carry it; "
                    f"need at least {self.cv} with and without it to cross-validate"
                )
            presence_targets[theme] = present
        features = self.vectorizer_.fit_transform(self.preprocessor_.transform(texts))

        positive = self.polarities_[0]
        self.presence_, self.polarity_, self.thresholds_ = {}, {}, {}
        for theme, present in presence_targets.items():
            presence = TunedThresholdClassifierCV(
                CalibratedClassifierCV(
                    self._logistic_regression(),
                    method=self.calibration,
                    cv=self._folds(),
                    ensemble=False,
                ),
                scoring="f1",
                thresholds=self.n_thresholds,
                cv=self._folds(),
                random_state=self.random_state,
            ).fit(features, present)
            self.presence_[theme] = presence
            self.thresholds_[theme] = float(presence.best_threshold_)

            rows = np.flatnonzero(present)
            is_positive = np.array([labels[i][theme] == positive for i in rows], dtype=int)
            if len(np.unique(is_positive)) < 2:
                polarity = DummyClassifier(strategy="prior")
            else:
                polarity = self._logistic_regression()
            self.polarity_[theme] = polarity.fit(features[rows], is_positive)
        self._compile_linear()
        return self

    def _compile_linear(self) -> None:
        """Collect every theme's fitted coefficients into one matrix for fast prediction.

        Calling 12+ scikit-learn estimators per batch costs ~70 input validations per text,
        which dominated single-text latency. The numbers are the estimators' own (tested to
        match their predict_proba); the estimators stay in the model as the reference.
        """
        n_features = len(
            self.presence_[self.themes_[0]].estimator_.calibrated_classifiers_[0].estimator.coef_[0]
        )
        coef = np.zeros((n_features, 2 * len(self.themes_)))
        intercept = np.zeros(2 * len(self.themes_))
        self.sigmoid_a_ = np.zeros(len(self.themes_))
        self.sigmoid_b_ = np.zeros(len(self.themes_))
        for col, theme in enumerate(self.themes_):
            calibrated = self.presence_[theme].estimator_.calibrated_classifiers_[0]
            coef[:, col] = calibrated.estimator.coef_[0]
            intercept[col] = calibrated.estimator.intercept_[0]
            calibrator = calibrated.calibrators[0]
            if self.calibration == "sigmoid":
                self.sigmoid_a_[col], self.sigmoid_b_[col] = calibrator.a_, calibrator.b_
            polarity = self.polarity_[theme]
            if isinstance(polarity, LogisticRegression):
                coef[:, len(self.themes_) + col] = polarity.coef_[0]
                intercept[len(self.themes_) + col] = polarity.intercept_[0]
            else:  # DummyClassifier: a constant probability, as a bias-only logit
                prior = (
                    float(polarity.class_prior_[list(polarity.classes_).index(1)])
                    if 1 in polarity.classes_
                    else 0.0
                )
                prior = min(max(prior, 1e-9), 1 - 1e-9)
                intercept[len(self.themes_) + col] = np.log(prior / (1 - prior))
        self.linear_coef_ = coef
        self.linear_intercept_ = intercept

    def _vectorizer(self):
        words = TfidfFeatures(
            token_pattern=r"\S+",  # the preprocessor already tokenised; keep its tokens as they are
            lowercase=False,
            ngram_range=tuple(self.ngram_range),
            min_df=self.min_df,
            sublinear_tf=True,
            dtype=np.float32,
        )
        if self.char_ngram_range is None:
            return words
        chars = TfidfFeatures(
            analyzer="char_wb",
            lowercase=False,
            ngram_range=tuple(self.char_ngram_range),
            min_df=self.min_df,
            sublinear_tf=True,
            dtype=np.float32,
        )
        return FeatureUnion([("words", words), ("chars", chars)])

    def _logistic_regression(self) -> LogisticRegression:
        return LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000)

    def _folds(self) -> StratifiedKFold:
        return StratifiedKFold(n_splits=self.cv, shuffle=True, random_state=self.random_state)

    # --------------------------------------------------------------- prediction
    def predict_proba(self, X: Sequence[object]) -> np.ndarray:
        """Calibrated probability that each theme is present: shape (n_texts, n_themes)."""
        check_is_fitted(self, "presence_")
        return self._presence_scores(self._features(X))

    def predict(self, X: Sequence[object]) -> list[dict[str, str]]:
        """Label dicts ``{theme: polarity}`` (detected themes only), one per text."""
        return [prediction.labels for prediction in self.classify_many(X, explain=False)]

    def classify(self, text: object, explain: bool = True) -> Prediction:
        """Classify one text. See :meth:`classify_many`."""
        return self.classify_many([text], explain=explain)[0]

    def classify_many(
        self, texts: Iterable[object], explain: bool = True, batch_size: int = 5000
    ) -> list[Prediction]:
        """Classify texts; the result has the same length and order as ``texts``.

        Parameters
        ----------
        texts : iterable of str
            Anything iterable; non-strings and empty strings come back untagged with a status.
        explain : bool, default=True
            Find the evidence sentence(s) of every detected theme (costs extra time).
        batch_size : int, default=5000
            Texts analysed at a time, which bounds memory.
        """
        check_is_fitted(self, "presence_")
        texts = list(texts)
        predictions: list[Prediction] = []
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            predictions.extend(self.score_batch(batch, explain).predictions())
        return predictions

    def _features(self, texts: Sequence[object]):
        return self._vectorize(self.preprocessor_.transform(texts))

    def _vectorize(self, docs: Sequence[str]) -> list:
        """The feature matrices of the vectorizer's parts (words, characters), not stacked.

        Scoring multiplies each part by its own rows of the coefficients, which gives the same
        logits as stacking first; ``sparse.hstack`` cost ~0.4 ms a call, a fifth of the latency
        of classifying one text.
        """
        if isinstance(self.vectorizer_, FeatureUnion):
            return [part.transform(docs) for _, part in self.vectorizer_.transformer_list]
        return [self.vectorizer_.transform(docs)]

    def _scores(self, features) -> tuple[np.ndarray, np.ndarray]:
        """(presence probability, probability of the positive polarity), each (n, n_themes).

        ``features`` is one matrix over all features, or the list of parts from ``_vectorize``.
        """
        parts = features if isinstance(features, list) else [features]
        n_themes, n_rows = len(self.themes_), parts[0].shape[0]
        if n_rows == 0:
            return np.zeros((0, n_themes)), np.zeros((0, n_themes))
        logits = np.tile(self.linear_intercept_, (n_rows, 1))
        offset = 0
        for part in parts:
            logits += part @ self.linear_coef_[offset : offset + part.shape[1]]
            offset += part.shape[1]
        positive = expit(logits[:, n_themes:])
        if self.calibration == "sigmoid":
            presence = expit(-(self.sigmoid_a_ * logits[:, :n_themes] + self.sigmoid_b_))
        else:  # isotonic calibration has no closed form: ask the estimators
            from scipy import sparse

            stacked = sparse.hstack(parts, format="csr")
            presence = np.column_stack(
                [self.presence_[theme].predict_proba(stacked)[:, 1] for theme in self.themes_]
            )
        return presence, positive

    def _presence_scores(self, features) -> np.ndarray:
        return self._scores(features)[0]

    def score_batch(self, texts: Sequence[object], explain: bool = False) -> BatchScores:
        """Classify one batch of texts into arrays (see :class:`BatchScores`).

        What the batch CLI uses: it writes columns straight from the arrays instead of building
        a :class:`Prediction` per text. Memory grows with the batch; :meth:`classify_many`
        splits long inputs into batches.
        """
        check_is_fitted(self, "presence_")
        statuses = [_text_status(text) for text in texts]
        # Exports repeat themselves ("Nothing", "All good"): analyse each distinct text once.
        distinct: dict[str, int] = {}
        rows = np.full(len(statuses), -1, dtype=np.int64)
        for i, (text, status) in enumerate(zip(texts, statuses, strict=True)):
            if status == STATUS_OK:
                rows[i] = distinct.setdefault(text, len(distinct))
        unique = list(distinct)
        analysed = list(self.preprocessor_.analyse(unique, sentences=explain)) if unique else []
        presence, positive = self._scores(self._vectorize([doc for doc, _ in analysed]))
        thresholds = np.array([self.thresholds_[theme] for theme in self.themes_])
        detected = presence >= thresholds
        evidence: dict[tuple[int, int], str] = {}
        if explain and unique:
            evidence = self._evidence(unique, [sents for _, sents in analysed], detected)
        return BatchScores(
            themes=tuple(self.themes_),
            polarities=tuple(self.polarities_),
            status=statuses,
            row=rows,
            presence=presence,
            positive=positive,
            detected=detected,
            evidence=evidence,
        )

    def _evidence(
        self, texts: Sequence[str], sentences: Sequence[list[Sentence]], detected: np.ndarray
    ) -> dict[tuple[int, int], str]:
        """Pick, per detected (text, theme), the sentence(s) its presence model scores highest."""
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
        scores = self._presence_scores(self._vectorize(sentence_features))
        owners_arr = np.asarray(owners)
        for row in np.unique(owners_arr):
            members = np.flatnonzero(owners_arr == row)
            for col in np.flatnonzero(detected[row]):
                theme_scores = scores[members, col]
                chosen = members[theme_scores >= self.thresholds_[self.themes_[col]]]
                if len(chosen) == 0:
                    chosen = members[[int(np.argmax(theme_scores))]]
                evidence[(row, col)] = EVIDENCE_SEPARATOR.join(
                    texts[row][spans[i].start : spans[i].end].strip() for i in chosen
                )
        return evidence
