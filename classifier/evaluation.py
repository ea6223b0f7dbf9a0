"""Metrics, baselines and cross-validation for theme classifiers.

Every classifier here takes texts and label dicts (``{"trust": "positive"}``) and predicts label
dicts, so the model and the baselines are scored by the same code on the same split.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.metrics import brier_score_loss, f1_score, precision_recall_fscore_support
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from classifier.codebook import Codebook, load_codebook

Labels = Mapping[str, str]


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
    truth = np.array([[theme in labels for theme in themes] for labels in y_true], dtype=int)
    guess = np.array([[theme in labels for theme in themes] for labels in y_pred], dtype=int)
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
    for theme in themes:
        a = [theme in labels for labels in y_true]
        b = [theme in labels for labels in y_pred]
        kappas[theme] = float(cohen_kappa_score(a, b)) if len(set(a) | set(b)) > 1 else 1.0
    kappas["mean"] = float(np.mean([kappas[theme] for theme in themes]))
    return kappas


def polarity_of(text_scores: Mapping[str, int], positive: str, negative: str) -> str:
    return positive if text_scores.get(positive, 0) >= text_scores.get(negative, 0) else negative


class KeywordBaseline(ClassifierMixin, BaseEstimator):
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


class TfidfSvcBaseline(ClassifierMixin, BaseEstimator):
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
        for theme in self.themes_:
            present = np.array([theme in labels for labels in y], dtype=int)
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

    Folds run in ``n_jobs`` processes (joblib; None: one). Returns the mean and standard
    deviation across folds of macro F1, micro F1, polarity accuracy and the share of no-theme
    texts left untagged, and the per-fold values.
    """
    import pandas as pd
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
    from joblib import Parallel, delayed

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
    accepts = inspect.signature(estimator.fit).parameters

    def one_fold(train_part: np.ndarray, test_part: np.ndarray) -> dict:
        train_index = np.concatenate([always_train, scored[train_part]])
        test_index = scored[test_part]
        extra = {}
        if "target_domain" in accepts and target_domain is not None:
            extra["target_domain"] = target[train_index].tolist()
        if "calibration_rows" in accepts and scored_rows is not None:
            extra["calibration_rows"] = scored_mask[train_index].tolist()
        model = clone(estimator).fit(
            [texts[i] for i in train_index], [labels[i] for i in train_index], **extra
        )
        predicted = model.predict([texts[i] for i in test_index])
        return theme_metrics([labels[i] for i in test_index], predicted, codebook.theme_ids)

    per_fold = Parallel(n_jobs=n_jobs)(
        delayed(one_fold)(train_part, test_part)
        for train_part, test_part in splitter.split(np.zeros(len(scored)), targets)
    )
    summary = {
        "folds": folds,
        "scored_rows": "all" if len(always_train) == 0 else "a subset",
        "n_scored": len(scored),
    }
    for key in ("macro_f1", "micro_f1", "polarity_accuracy", "untagged_share_of_no_theme"):
        values = np.array([fold[key] for fold in per_fold])
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


def evaluate_split(
    model_factory: Callable[[], object], train, test, groups: Mapping[str, np.ndarray]
) -> dict:
    """Fit a fresh model on ``train`` and report metrics on ``test`` and on row groups of it."""
    model = model_factory().fit(train["text"].tolist(), train["labels"].tolist())
    report = {"all": evaluate_on(model, test["text"], test["labels"])}
    for name, mask in groups.items():
        subset = test[mask]
        report[name] = evaluate_on(model, subset["text"], subset["labels"])
    return report
