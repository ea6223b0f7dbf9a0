"""Metrics, baselines, cross-validation and the evaluation of a model on the corpus.

Every classifier here takes texts and label dicts (``{"trust": "positive"}``) and predicts label
dicts, so the model and the baselines are scored by the same code on the same split.
:func:`evaluate_model` is what ``classifier train`` and ``classifier evaluate`` report; the
tables that show it are drawn by :mod:`classifier.rendering`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.metrics import brier_score_loss, f1_score, precision_recall_fscore_support
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from classifier._errors import ClassifierError
from classifier.codebook import Codebook, load_codebook
from classifier.rendering import REAL

Labels = Mapping[str, str]
CV_METRICS = ("macro_f1", "micro_f1", "polarity_accuracy", "untagged_share_of_no_theme")


def presence_matrix(labels: Sequence[Labels], themes: Sequence[str]) -> np.ndarray:
    """Indicator matrix (texts x themes): 1 where the text carries the theme, either polarity.

    Examples
    --------
    >>> presence_matrix([{"trust": "positive"}, {}], ["trust", "empathy"]).tolist()
    [[1, 0], [0, 0]]
    """
    binarizer = MultiLabelBinarizer(classes=list(themes))
    # Themes outside ``themes`` (another codebook's) are left out rather than warned about.
    known = set(themes)
    return binarizer.fit_transform([[t for t in labels_ if t in known] for labels_ in labels])


def theme_metrics(
    y_true: Sequence[Labels],
    y_pred: Sequence[Labels],
    themes: Sequence[str],
    scores: np.ndarray | None = None,
) -> dict:
    """Per-theme precision/recall/F1 of presence, macro and micro F1, polarity accuracy.

    ``polarity_accuracy`` is measured on correctly detected themes only (true positives of
    presence), so it does not double-count detection errors. ``untagged_share_of_no_theme`` is the
    share of texts without any true theme that got no predicted theme either.
    """
    truth, guess = presence_matrix(y_true, themes), presence_matrix(y_pred, themes)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, guess, average=None, zero_division=0
    )
    per_theme = {
        theme: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, theme in enumerate(themes)
    }
    polarity_hits = polarity_total = 0
    for true_labels, predicted in zip(y_true, y_pred, strict=True):
        for theme, polarity in predicted.items():
            if theme in true_labels:
                polarity_total += 1
                polarity_hits += true_labels[theme] == polarity
    no_theme = truth.sum(axis=1) == 0
    result = {
        "n_texts": len(y_true),
        "per_theme": per_theme,
        "macro_f1": float(f1_score(truth, guess, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(truth, guess, average="micro", zero_division=0)),
        "polarity_accuracy": polarity_hits / polarity_total if polarity_total else float("nan"),
        "polarity_n": polarity_total,
        "untagged_share_of_no_theme": (
            float((guess[no_theme].sum(axis=1) == 0).mean()) if no_theme.any() else float("nan")
        ),
        "n_no_theme": int(no_theme.sum()),
    }
    if scores is not None:
        result["brier"] = {
            theme: float(brier_score_loss(truth[:, i], scores[:, i]))
            for i, theme in enumerate(themes)
        }
    return result


def presence_kappas(
    y_true: Sequence[Labels], y_pred: Sequence[Labels], themes: Sequence[str]
) -> dict[str, float]:
    """Cohen's kappa of theme presence between two sets of labels, per theme and their mean."""
    from sklearn.metrics import cohen_kappa_score

    kappas = {}
    truth, guess = presence_matrix(y_true, themes), presence_matrix(y_pred, themes)
    for col, theme in enumerate(themes):
        a, b = truth[:, col], guess[:, col]
        # One value throughout on both sides: perfect agreement (kappa itself is undefined).
        kappas[theme] = float(cohen_kappa_score(a, b)) if len(set(a) | set(b)) > 1 else 1.0
    kappas["mean"] = float(np.mean([kappas[theme] for theme in themes]))
    return kappas


def polarity_of(text_scores: Mapping[str, int], positive: str, negative: str) -> str:
    return positive if text_scores.get(positive, 0) >= text_scores.get(negative, 0) else negative


class KeywordBaseline(BaseEstimator):
    """A lexicon baseline: a theme is present when a word from its codebook indicators appears.

    The lexicon is the content words of each theme's strength and concern indicators and examples
    that belong to one theme x polarity only. Nothing is learned from labels; ``fit`` builds the
    lexicon so the baseline has the same interface as the model.
    """

    def __init__(self, codebook: str | None = None):
        self.codebook = codebook

    def fit(self, X, y=None) -> KeywordBaseline:
        codebook = load_codebook(self.codebook)
        self.themes_ = codebook.theme_ids
        self.polarities_ = tuple(codebook.polarities)
        owners: dict[str, set[tuple[str, str]]] = {}
        for theme in codebook.themes:
            for polarity, phrases in (
                (self.polarities_[0], theme.strength + theme.examples_positive),
                (self.polarities_[1], theme.concern + theme.examples_negative),
            ):
                for word in _words(" ".join(phrases)):
                    owners.setdefault(word, set()).add((theme.id, polarity))
        self.lexicon_ = {
            word: next(iter(cells)) for word, cells in owners.items() if len(cells) == 1
        }
        return self

    def predict(self, X) -> list[dict[str, str]]:
        check_is_fitted(self, "lexicon_")
        predictions = []
        for text in X:
            votes: dict[str, dict[str, int]] = {}
            for word in _words(text if isinstance(text, str) else ""):
                if word in self.lexicon_:
                    theme, polarity = self.lexicon_[word]
                    votes.setdefault(theme, {}).setdefault(polarity, 0)
                    votes[theme][polarity] += 1
            predictions.append(
                {
                    theme: polarity_of(votes[theme], *self.polarities_)
                    for theme in self.themes_
                    if theme in votes
                }
            )
        return predictions


def _words(text: str) -> list[str]:
    return [
        w
        for w in re.findall(r"[a-z']+", text.lower())
        if len(w) > 2 and w not in ENGLISH_STOP_WORDS
    ]


class TfidfSvcBaseline(BaseEstimator):
    """TF-IDF on raw text (scikit-learn's own tokenizer, no spaCy) + LinearSVC per theme."""

    def __init__(self, codebook: str | None = None, C: float = 1.0):
        self.codebook = codebook
        self.C = C

    def fit(self, X, y) -> TfidfSvcBaseline:
        codebook = load_codebook(self.codebook)
        self.themes_ = codebook.theme_ids
        self.polarities_ = tuple(codebook.polarities)
        texts = [text if isinstance(text, str) else "" for text in X]
        self.vectorizer_ = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        features = self.vectorizer_.fit_transform(texts)
        self.presence_, self.polarity_ = {}, {}
        presence = presence_matrix(y, self.themes_)
        for col, theme in enumerate(self.themes_):
            present = presence[:, col]
            self.presence_[theme] = LinearSVC(C=self.C, class_weight="balanced").fit(
                features, present
            )
            rows = np.flatnonzero(present)
            is_positive = [y[i][theme] == self.polarities_[0] for i in rows]
            self.polarity_[theme] = (
                LinearSVC(C=self.C, class_weight="balanced").fit(features[rows], is_positive)
                if len(set(is_positive)) == 2
                else bool(is_positive[0])
                if is_positive
                else True
            )
        return self

    def predict(self, X) -> list[dict[str, str]]:
        check_is_fitted(self, "presence_")
        texts = [text if isinstance(text, str) else "" for text in X]
        features = self.vectorizer_.transform(texts)
        predictions: list[dict[str, str]] = [{} for _ in texts]
        for theme in self.themes_:
            present = self.presence_[theme].predict(features).astype(bool)
            polarity = self.polarity_[theme]
            positive = (
                polarity.predict(features).astype(bool)
                if hasattr(polarity, "predict")
                else np.full(len(texts), polarity)
            )
            for i in np.flatnonzero(present):
                predictions[i][theme] = self.polarities_[0 if positive[i] else 1]
        return predictions


def cross_validate(
    estimator,
    texts: Sequence[str],
    labels: Sequence[Labels],
    codebook: Codebook | None = None,
    folds: int = 5,
    random_state: int = 0,
    target_domain: Sequence[bool] | None = None,
    scored_rows: Sequence[bool] | None = None,
    n_jobs: int | None = None,
) -> dict:
    """K-fold cross-validation, stratified over theme x polarity cells (iterative stratification).

    Only the ``scored_rows`` (default: the ``target_domain`` rows, or all rows) are split into
    folds and scored; every other row is always training data. So with real rows drawn at random
    as ``scored_rows``, texts written for the corpus and rows picked because they were likely to
    carry a theme only ever train, and the scores say how the model does on a real export. An
    estimator whose ``fit`` takes ``target_domain`` and ``calibration_rows`` is given them (its
    calibration rows: the scored rows of the training folds).

    Runs scikit-learn's :func:`~sklearn.model_selection.cross_validate` over those folds, in
    ``n_jobs`` processes (None: one). Returns the mean and standard deviation across folds of
    macro F1, micro F1, polarity accuracy and the share of no-theme texts left untagged, and the
    per-fold values.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
    from sklearn.model_selection import cross_validate as sklearn_cross_validate

    from classifier.data import label_matrix

    codebook = codebook or load_codebook(getattr(estimator, "codebook", None))
    texts, labels = list(texts), [dict(label) for label in labels]
    everything = np.ones(len(texts), dtype=bool)
    target = everything if target_domain is None else np.asarray(target_domain, dtype=bool)
    scored_mask = target if scored_rows is None else np.asarray(scored_rows, dtype=bool)
    scored = np.flatnonzero(scored_mask)
    always_train = np.flatnonzero(~scored_mask)
    targets = label_matrix(pd.Series([labels[i] for i in scored]), codebook)
    splitter = MultilabelStratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    splits = [
        (np.concatenate([always_train, scored[train_part]]), scored[test_part])
        for train_part, test_part in splitter.split(np.zeros(len(scored)), targets)
    ]
    # Per-row fit arguments: scikit-learn hands each fold its training rows' values.
    accepts = inspect.signature(estimator.fit).parameters
    params = {}
    if "target_domain" in accepts and target_domain is not None:
        params["target_domain"] = target.tolist()
    if "calibration_rows" in accepts and scored_rows is not None:
        params["calibration_rows"] = scored_mask.tolist()

    def score(model, X, y) -> dict[str, float]:
        metrics = theme_metrics(y, model.predict(X), codebook.theme_ids)
        return {key: metrics[key] for key in CV_METRICS}

    results = sklearn_cross_validate(
        estimator, texts, labels, cv=splits, scoring=score, params=params, n_jobs=n_jobs,
        error_score="raise",
    )  # fmt: skip
    summary = {
        "folds": folds,
        "scored_rows": "all" if len(always_train) == 0 else "a subset",
        "n_scored": len(scored),
    }
    for key in CV_METRICS:
        values = np.asarray(results[f"test_{key}"], dtype=float)
        summary[key] = {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "per_fold": values.round(4).tolist(),
        }
    return summary


def evaluate_on(
    model, texts: Sequence[str], labels: Sequence[Labels], with_scores: bool = True
) -> dict:
    """:func:`theme_metrics` of ``model`` on a held-out set (with Brier scores if it has them)."""
    predicted = model.predict(list(texts))
    scores = (
        model.predict_proba(list(texts))
        if with_scores and hasattr(model, "predict_proba")
        else None
    )
    return theme_metrics(list(labels), predicted, model.themes_, scores)


# ------------------------------------------------------- the model on the corpus
def split_corpus(corpus: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The corpus's train and test rows (its ``split`` column)."""
    train, test = corpus[corpus["split"] == "train"], corpus[corpus["split"] == "test"]
    if train.empty or test.empty:
        raise ClassifierError("the corpus needs rows in both the train and the test split")
    return train, test


def is_real(frame: pd.DataFrame) -> pd.Series:
    """Rows of real feedback (any source but ``authored``)."""
    return frame["source"] != "authored"


def is_representative(frame: pd.DataFrame) -> pd.Series:
    """Real rows that stand for a real export: all but those chosen as likely to carry a theme.

    Scores are calibrated and cross-validation is scored on these rows, so that both reflect
    the mix of a real export (mostly no theme), not the enriched sample that was coded to teach
    the model.
    """
    targeted = (
        frame["selection"].eq("targeted")
        if "selection" in frame
        else pd.Series(False, index=frame.index)
    )
    return is_real(frame) & ~targeted


def fit_params(train: pd.DataFrame) -> dict:
    """What ThemeClassifier.fit needs besides texts and labels: the domain of each row."""
    real = is_real(train)
    if not real.any() or real.all():
        return {}
    return {
        "target_domain": real.tolist(),
        "calibration_rows": is_representative(train).tolist(),
    }


def test_groups(test: pd.DataFrame) -> dict[str, pd.Series]:
    """Row groups of the test split reported on their own: the real rows, then each source."""
    groups = {}
    if is_real(test).any() and not is_real(test).all():
        groups[REAL] = is_real(test)
    for source in sorted(test["source"].unique()):
        groups[f"source={source}"] = test["source"] == source
    return groups


def coder_agreement(model, test: pd.DataFrame) -> dict | None:
    """Model-vs-coder next to coder-vs-coder agreement on the double-coded test rows.

    Coder-vs-coder agreement is the honest ceiling: a model cannot be expected to agree with one
    coder more than a second coder does. Returns None when no test row is double-coded.
    """
    if "double_coded" not in test:
        return None
    coded = test[test["double_coded"].map(lambda value: isinstance(value, dict))]
    if coded.empty:
        return None
    first = coded["double_coded"].map(lambda value: value["first"]).tolist()
    second = coded["double_coded"].map(lambda value: value["second"]).tolist()
    predicted = model.predict(coded["text"].tolist())
    themes = model.themes_
    return {
        "n_texts": len(coded),
        "coder_vs_coder": theme_metrics(first, second, themes),
        "model_vs_first_coder": theme_metrics(first, predicted, themes),
        "model_vs_second_coder": theme_metrics(second, predicted, themes),
        "model_vs_final_labels": theme_metrics(coded["labels"].tolist(), predicted, themes),
        "presence_kappa_coder_vs_coder": presence_kappas(first, second, themes),
        "presence_kappa_model_vs_final": presence_kappas(
            coded["labels"].tolist(), predicted, themes
        ),
    }


def model_parameters(model) -> dict:
    """The training parameters of a fitted ThemeClassifier or of a compiled model.

    Top-level parameters only (``deep=False``): a ``features`` transformer stays one object, so
    ``ThemeClassifier(**model_parameters(model))`` rebuilds the same estimator.
    """
    if hasattr(model, "get_params"):
        return model.get_params(deep=False)
    return dict(model.info.get("parameters", {}))


def evaluate_model(
    model,
    corpus: pd.DataFrame,
    baselines: bool = True,
    cv_folds: int = 5,
    log: Callable[[str], None] = lambda message: None,
    n_jobs: int | None = -1,
) -> dict:
    """Test-split metrics (all rows, real rows, per source), coder agreement, baselines, CV.

    Cross-validation folds the train split's real rows and scores only them (authored rows are
    always training data), as model choices for real text are made.
    """
    train, test = split_corpus(corpus)
    params = model_parameters(model)
    codebook = params.get("codebook")
    report: dict = {"n_train": len(train), "n_test": len(test)}
    groups = {"all": pd.Series(True, index=test.index), **test_groups(test)}

    def on_test(fitted, with_scores: bool = True) -> dict:
        # the whole test split, then its real rows and each source on their own
        return {
            name: evaluate_on(fitted, test[rows]["text"], test[rows]["labels"], with_scores)
            for name, rows in groups.items()
        }

    log("scoring the model on the test split")
    report["test"] = on_test(model)
    agreement = coder_agreement(model, test)
    if agreement:
        report["coder_agreement"] = agreement
    if baselines:
        report["baselines"] = {}
        for name, baseline in (
            ("keyword lexicon from the codebook", KeywordBaseline(codebook=codebook)),
            ("TF-IDF + LinearSVC, raw text, no spaCy", TfidfSvcBaseline(codebook=codebook)),
        ):
            log(f"baseline: {name}")
            fitted = baseline.fit(train["text"].tolist(), train["labels"].tolist())
            report["baselines"][name] = on_test(fitted, with_scores=False)
    if cv_folds:
        from classifier.model import ThemeClassifier  # scikit-learn estimators: only for CV

        log(f"{cv_folds}-fold cross-validation on the train split")
        report["cross_validation"] = cross_validate_train(
            ThemeClassifier(**params), train, cv_folds, n_jobs
        )
    return report


def cross_validate_train(
    estimator, train: pd.DataFrame, folds: int, n_jobs: int | None = -1
) -> dict:
    """CV scored on the train split's representative real rows (all rows if it has none).

    Folds run in parallel, one process per core.
    """
    params = fit_params(train)
    return cross_validate(
        estimator,
        train["text"].tolist(),
        train["labels"].tolist(),
        folds=folds,
        target_domain=params.get("target_domain"),
        scored_rows=params.get("calibration_rows"),
        n_jobs=n_jobs,
    )
