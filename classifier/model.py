"""The theme classifier: spaCy features -> TF-IDF -> per-theme calibrated presence and polarity.

The feature step is TF-IDF of word and character n-grams unless ``features`` gives another
scikit-learn transformer. For every theme of the codebook the model learns two things from the
same features:

* presence: a logistic regression, whose out-of-fold scores (``cross_val_predict`` on the
  training data) give its decision threshold, F1-optimal over all training rows
  (``precision_recall_curve``), and its calibration (Platt's sigmoid, or isotonic regression),
  fitted on the real rows when the training data has them (``target_domain``, or
  ``calibration_rows``), so that a score is a probability for the texts the model is used on.
  (Thresholds tuned on the real rows alone were worse on held-out real rows: too few positives
  per theme to place them well; see the model card.)
* polarity: a logistic regression trained on the texts that carry the theme, telling a strength
  from a concern.

Real survey comments are the texts the model is used on, but most training texts were written
for the corpus. With ``target_domain`` the features are augmented as in Daumé III (2007),
"Frustratingly easy domain adaptation": every feature has a shared copy and a copy that is
non-zero only on real (target-domain) rows, so the model can learn where real text differs.
Every text the model tags is treated as real, so the two coefficient sets fold into one
(shared + real) and inference costs nothing extra.

Evidence for a detected theme is the sentence (or sentences) that reach the theme's threshold
under the same presence model, so the explanation comes from the same model as the tag.

After fitting, :meth:`ThemeClassifier.compile` turns the estimators into a
:class:`~classifier.inference.CompiledModel` (arrays only, or, with ``features`` other than the
built-in TF-IDF, arrays and the fitted transformer); classification runs on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, clone
from sklearn.dummy import DummyClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_curve
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import FeatureUnion
from sklearn.utils.validation import check_is_fitted

from classifier._errors import ClassifierError
from classifier._versions import library_versions
from classifier.codebook import load_codebook
from classifier.features import TfidfFeatures, as_ngram_tfidf
from classifier.inference import CompiledModel
from classifier.prediction import BatchScores, Prediction
from classifier.preprocessing import SpacyPreprocessor


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


def augment(features, target: np.ndarray | None):
    """Daumé's feature augmentation: ``[X, X on target rows only]``.

    ``features`` is a sparse matrix or a dense array (whatever the feature step gives); the
    result is CSR or a dense array respectively. ``target`` is a boolean per row (True: a real
    text); None treats every row as real, which is how the model sees the texts it tags.

    Examples
    --------
    >>> import numpy as np
    >>> augment(np.array([[1.0], [2.0]]), np.array([True, False])).tolist()
    [[1.0, 1.0], [2.0, 0.0]]
    """
    if not sparse.issparse(features):
        # sparse.hstack would read a list of dense arrays as one 3-d array of blocks
        features = np.asarray(features)
        if target is None:
            return np.hstack([features, features])
        return np.hstack([features, features * np.asarray(target, dtype=bool)[:, None]])
    if target is None:
        return sparse.hstack([features, features], format="csr")
    # dtype given twice: without it scipy casts integer diagonals (counts) to float64, warning
    mask = sparse.diags(np.asarray(target, dtype=features.dtype), dtype=features.dtype)
    return sparse.hstack([features, mask @ features], format="csr")


class ThemeClassifier(BaseEstimator):
    r"""Tag texts with codebook themes, each with a polarity, a calibrated score and evidence.

    Parameters
    ----------
    codebook : str or None, default=None
        Path of the codebook TOML whose themes to learn; None uses the packaged codebook. The
        codebook's content is stored in the fitted model, so the file is not needed afterwards.
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
    features : scikit-learn transformer or None, default=None
        The feature step; None is the TF-IDF of word and character n-grams set by
        ``ngram_range``, ``char_ngram_range`` and ``min_df`` (which are ignored otherwise). Any
        transformer fitted on the preprocessed documents alone (strings of space-separated
        tokens, e.g. ``"NEG_judged she listen"``) that maps them to a sparse or dense matrix
        will do: ``CountVectorizer(token_pattern=r"\S+")``, a ``HashingVectorizer``, a
        ``FeatureUnion`` or ``Pipeline``. ``fit`` clones it. Evidence works with any features;
        but only the built-in TF-IDF (including an equivalent union of :class:`TfidfFeatures`)
        can be saved as ``.npz``: save other models as ``.skops``, which loads back only if
        every type in the transformer is one skops trusts (scikit-learn's own) or is on
        :data:`classifier.persistence.ALLOWED_TYPES`; others are refused when loading.
    C : float, default=4.0
        Inverse regularisation strength of the logistic regressions.
    domain_adaptation : bool, default=True
        Augment the features (see the module docstring) when ``fit`` is given ``target_domain``
        with both real and other rows.
    calibrate_on : {"target", "all"}, default="target"
        Rows whose out-of-fold scores fit the calibration: the target-domain (real) rows when
        ``fit`` is given ``target_domain``, or all rows.
    calibration : {"sigmoid", "isotonic"}, default="sigmoid"
        Calibration method of the presence scores.
    cv : int, default=5
        Folds of the out-of-fold scores behind calibration and thresholds.
    random_state : int, default=0
        Seed of the cross-validation splits; the same data and settings give the same model.

    Attributes
    ----------
    themes_ : tuple of str
        Theme ids, in codebook order.
    polarities_ : tuple of str
        The (positive, negative) polarity names.
    codebook_ : dict
        Name, version and TOML text of the codebook the model learned.
    preprocessor_ : SpacyPreprocessor
    vectorizer_ : transformer
        The fitted feature step: a clone of ``features``, or by default a FeatureUnion of
        TfidfFeatures (word and character n-grams).
    augmented_ : bool
        Whether the estimators were fitted on augmented (shared + real) features.
    presence_ : dict of str to LogisticRegression
        Presence of each theme, fitted on all training rows.
    calibrators_ : dict of str to LogisticRegression or IsotonicRegression
        Maps a presence model's decision value (one column) to a probability.
    polarity_ : dict of str to LogisticRegression (or DummyClassifier when one polarity is absent)
    thresholds_ : dict of str to float
        F1-optimal decision threshold on the calibrated presence probability.

    Examples
    --------
    >>> from classifier import ThemeClassifier
    >>> model = ThemeClassifier().fit(texts, labels, target_domain=is_real)   # doctest: +SKIP
    >>> model.predict(["She cancelled twice this month."])                     # doctest: +SKIP
    [{'boundaries': 'negative'}]
    >>> from sklearn.feature_extraction.text import CountVectorizer
    >>> counts = ThemeClassifier(features=CountVectorizer(token_pattern=r"\S+", min_df=2))
    """

    def __init__(
        self,
        codebook: str | None = None,
        negation: bool = True,
        max_scope: int = 8,
        ngram_range: tuple[int, int] = (1, 2),
        char_ngram_range: tuple[int, int] | None = (3, 5),
        min_df: int = 2,
        features: object | None = None,
        C: float = 4.0,
        domain_adaptation: bool = True,
        calibrate_on: str = "target",
        calibration: str = "sigmoid",
        cv: int = 5,
        random_state: int = 0,
    ):
        self.codebook = codebook
        self.negation = negation
        self.max_scope = max_scope
        self.ngram_range = ngram_range
        self.char_ngram_range = char_ngram_range
        self.min_df = min_df
        self.features = features
        self.C = C
        self.domain_adaptation = domain_adaptation
        self.calibrate_on = calibrate_on
        self.calibration = calibration
        self.cv = cv
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: Sequence[object],
        y: Sequence[Mapping[str, str]],
        target_domain: Sequence[bool] | None = None,
        calibration_rows: Sequence[bool] | None = None,
    ) -> ThemeClassifier:
        """Learn every theme of the codebook from texts ``X`` and label dicts ``y``.

        Parameters
        ----------
        X : sequence of str
        y : sequence of dict
            ``{theme: polarity}`` per text; ``{}`` for a text with no theme.
        target_domain : sequence of bool, optional
            True for texts of the kind the model will tag (real feedback), False for auxiliary
            texts (written for the corpus). Used for domain adaptation.
        calibration_rows : sequence of bool, optional
            Rows whose out-of-fold scores fit the calibration. Default: the target-domain rows
            (``calibrate_on="target"``) or all rows. Pass the rows that look like what the model
            will tag (real rows drawn at random, not rows chosen because they were likely to
            carry a theme), so that a score is a probability on a real export.
        """
        codebook = load_codebook(self.codebook)
        texts = list(X)
        labels = check_labels(list(y), codebook.theme_ids, codebook.polarities)
        if len(texts) != len(labels):
            raise ClassifierError(f"{len(texts)} texts but {len(labels)} label rows")
        target = None if target_domain is None else np.asarray(target_domain, dtype=bool)
        if target is not None and len(target) != len(texts):
            raise ClassifierError(f"{len(texts)} texts but {len(target)} target_domain flags")

        self.versions_ = library_versions()
        self.themes_ = codebook.theme_ids
        self.polarities_ = tuple(codebook.polarities)
        self.codebook_ = {
            "name": codebook.name,
            "version": codebook.version,
            "toml": Path(codebook.path).read_text(encoding="utf-8") if codebook.path else "",
        }
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
        if sparse.issparse(features):
            # CSR for row selection (polarity rows, CV folds): a transformer may give COO
            features = features.tocsr()
        self.augmented_ = bool(
            self.domain_adaptation and target is not None and 0 < target.sum() < len(target)
        )
        if self.augmented_:
            features = augment(features, target)

        if self.calibrate_on not in ("target", "all"):
            raise ClassifierError(
                f"calibrate_on must be 'target' or 'all', not {self.calibrate_on!r}"
            )
        calibrated_rows = np.ones(len(texts), dtype=bool)
        if calibration_rows is not None:
            calibrated_rows = np.asarray(calibration_rows, dtype=bool)
            if len(calibrated_rows) != len(texts) or not calibrated_rows.any():
                raise ClassifierError(
                    "calibration_rows must flag some of the texts, one flag per text"
                )
        elif self.calibrate_on == "target" and target is not None and target.any():
            calibrated_rows = target.copy()

        positive = self.polarities_[0]
        self.presence_, self.calibrators_, self.polarity_, self.thresholds_ = {}, {}, {}, {}
        for theme, present in presence_targets.items():
            self.presence_[theme] = self._logistic_regression().fit(features, present)
            # Out-of-fold decision values: each row scored by a model that never saw it.
            held_out = cross_val_predict(
                self._logistic_regression(),
                features,
                present,
                cv=self._folds(),
                method="decision_function",
            )
            # The decision: the F1-optimal cut of the out-of-fold scores of all rows ...
            cut = _f1_optimal_threshold(present, held_out)
            # ... expressed as a probability calibrated on the rows like those the model tags.
            rows = calibrated_rows
            if not (present[rows].any() and not present[rows].all()):
                rows = slice(None)  # one class only among them: calibrate on all rows
            calibrator = self._calibrator().fit(held_out[rows].reshape(-1, 1), present[rows])
            if self.calibration == "sigmoid" and calibrator.coef_[0, 0] <= 0:
                # Too few examples to order them: fall back to all rows.
                calibrator = self._calibrator().fit(held_out.reshape(-1, 1), present)
            self.calibrators_[theme] = calibrator
            self.thresholds_[theme] = float(_calibrated(calibrator, np.array([cut]))[0])

            rows = np.flatnonzero(present)
            is_positive = np.array([labels[i][theme] == positive for i in rows], dtype=int)
            if len(np.unique(is_positive)) < 2:
                polarity = DummyClassifier(strategy="prior")
            else:
                polarity = self._logistic_regression()
            self.polarity_[theme] = polarity.fit(features[rows], is_positive)
        self.__dict__.pop("_compiled", None)
        return self

    def compile(self) -> CompiledModel:
        """The fitted model as arrays (:class:`CompiledModel`): what inference runs and saves.

        Every theme's coefficients go into one matrix, so a batch is scored with one sparse
        product instead of 12+ estimator calls (each validating its input). With augmented
        features the shared and real coefficients are added up: every tagged text is real.

        The built-in TF-IDF features (or an equivalent union of :class:`TfidfFeatures`) become
        :class:`~classifier.vectorize.NgramTfidf` arrays, which can be saved as ``.npz``; any
        other feature step is kept as the fitted transformer itself (one part), which scores
        and finds evidence the same way but is saved only as ``.skops``.

        Examples
        --------
        >>> compiled = model.compile()                                 # doctest: +SKIP
        >>> compiled.predict(["She listened."])                        # doctest: +SKIP
        [{'empathy': 'positive'}]
        """
        check_is_fitted(self, "presence_")
        compiled = self.__dict__.get("_compiled")
        if compiled is not None:
            return compiled
        n_themes = len(self.themes_)
        n_columns = self.presence_[self.themes_[0]].coef_.shape[1]
        coef = np.zeros((n_columns, 2 * n_themes))
        intercept = np.zeros(2 * n_themes)
        sigmoid_a, sigmoid_b, iso_x, iso_y = np.zeros(n_themes), np.zeros(n_themes), [], []
        for col, theme in enumerate(self.themes_):
            presence = self.presence_[theme]
            coef[:, col] = presence.coef_[0]
            intercept[col] = presence.intercept_[0]
            calibrator = self.calibrators_[theme]
            if self.calibration == "sigmoid":
                # expit(w z + c) written as CompiledModel's expit(-(a z + b))
                sigmoid_a[col] = -calibrator.coef_[0, 0]
                sigmoid_b[col] = -calibrator.intercept_[0]
            else:
                iso_x.append(np.asarray(calibrator.X_thresholds_, dtype=float))
                iso_y.append(np.asarray(calibrator.y_thresholds_, dtype=float))
            polarity = self.polarity_[theme]
            if isinstance(polarity, LogisticRegression):
                coef[:, n_themes + col] = polarity.coef_[0]
                intercept[n_themes + col] = polarity.intercept_[0]
            else:  # DummyClassifier: a constant probability, as a bias-only logit
                prior = (
                    float(polarity.class_prior_[list(polarity.classes_).index(1)])
                    if 1 in polarity.classes_
                    else 0.0
                )
                prior = min(max(prior, 1e-9), 1 - 1e-9)
                intercept[n_themes + col] = np.log(prior / (1 - prior))
        if getattr(self, "augmented_", False):
            half = n_columns // 2
            coef = coef[:half] + coef[half:]
        calibration = (
            {"method": "sigmoid", "a": sigmoid_a, "b": sigmoid_b}
            if self.calibration == "sigmoid"
            else {"method": "isotonic", "x": iso_x, "y": iso_y}
        )
        compiled = CompiledModel(
            themes=self.themes_,
            polarities=self.polarities_,
            preprocessor=SpacyPreprocessor(**self.preprocessor_.get_params()),
            parts=self._compiled_parts(),
            coef=coef,
            intercept=intercept,
            calibration=calibration,
            thresholds=np.array([self.thresholds_[theme] for theme in self.themes_]),
            codebook=getattr(self, "codebook_", {}),
            info={"versions": self.versions_, "parameters": self._parameters()},
        )
        self._compiled = compiled
        return compiled

    def _compiled_parts(self) -> list:
        # NgramTfidf arrays when they give the fitted step's exact numbers (saveable as .npz);
        # otherwise the fitted transformer, whose transform is whatever the user gave.
        fast = as_ngram_tfidf(self.vectorizer_)
        return fast if fast is not None else [self.vectorizer_]

    def _parameters(self) -> dict:
        # Shallow, with the feature step as its repr: the compiled model's info is saved as
        # JSON, and deep parameters would add one entry per setting of the transformer.
        parameters = self.get_params(deep=False)
        if parameters["features"] is not None:
            parameters["features"] = repr(parameters["features"])
        return parameters

    def _vectorizer(self):
        if self.features is not None:
            # A fresh copy: fitting must not change the transformer the user passed.
            return clone(self.features)
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

    def _calibrator(self):
        if self.calibration == "sigmoid":
            # Platt scaling: a logistic regression on the one decision value, unregularised.
            return LogisticRegression(C=np.inf)
        if self.calibration == "isotonic":
            return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        raise ClassifierError(
            f"calibration must be 'sigmoid' or 'isotonic', not {self.calibration!r}"
        )

    def estimator_proba(self, X: Sequence[object]) -> np.ndarray:
        """Presence probabilities computed by the fitted estimators themselves (no compiling).

        The reference that the compiled model is tested against.
        """
        features = self.estimator_features(X)
        return np.column_stack(
            [
                _calibrated(
                    self.calibrators_[theme], self.presence_[theme].decision_function(features)
                )
                for theme in self.themes_
            ]
        )

    def _folds(self) -> StratifiedKFold:
        return StratifiedKFold(n_splits=self.cv, shuffle=True, random_state=self.random_state)

    def estimator_features(self, X: Sequence[object]):
        """The feature matrix the fitted estimators take for texts tagged as real."""
        check_is_fitted(self, "presence_")
        features = self.vectorizer_.transform(self.preprocessor_.transform(list(X)))
        return augment(features, None) if self.augmented_ else features

    # --------------------------------------------------------------- prediction
    # All of these run on the compiled model, so a researcher's estimator and the shipped
    # model file give the same numbers.
    def predict_proba(self, X: Sequence[object]) -> np.ndarray:
        """Calibrated probability that each theme is present: shape (n_texts, n_themes)."""
        return self.compile().predict_proba(X)

    def predict(self, X: Sequence[object]) -> list[dict[str, str]]:
        """Label dicts ``{theme: polarity}`` (detected themes only), one per text."""
        return self.compile().predict(X)

    def classify(self, text: object, explain: bool = True) -> Prediction:
        """Classify one text. See :meth:`classify_many`."""
        return self.compile().classify(text, explain=explain)

    def classify_many(
        self, texts: Iterable[object], explain: bool = False, batch_size: int = 5000
    ) -> list[Prediction]:
        """Classify texts; same length and order as ``texts`` (see ``CompiledModel``)."""
        return self.compile().classify_many(texts, explain=explain, batch_size=batch_size)

    def score_batch(self, texts: Sequence[object], explain: bool = False) -> BatchScores:
        """Classify one batch of texts into arrays (see :class:`BatchScores`)."""
        return self.compile().score_batch(texts, explain=explain)

    def __getstate__(self):
        state = dict(super().__getstate__())
        state.pop("_compiled", None)  # rebuilt from the estimators on first use
        return state

    def __setstate__(self, state):
        # Files saved before ``features`` existed used the built-in TF-IDF, which None means;
        # without the attribute get_params (and so compile) fails on them.
        super().__setstate__({"features": None, **state})


def _calibrated(calibrator, decision: np.ndarray) -> np.ndarray:
    """A calibrator's probability for one column of decision values."""
    if isinstance(calibrator, IsotonicRegression):
        return calibrator.predict(decision)
    return calibrator.predict_proba(decision.reshape(-1, 1))[:, 1]


def _f1_optimal_threshold(truth: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold (predict ``>=``) with the best F1 on these rows."""
    precision, recall, thresholds = precision_recall_curve(truth, scores)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0)
    return float(thresholds[int(np.argmax(f1[:-1]))])
