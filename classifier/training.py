"""Training the shipped model and writing its model card (``classifier train`` / ``evaluate``).

The test split is used once, after fitting, for the reported numbers; thresholds, calibration and
the ablation all use the train split only (cross-validation).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from classifier._errors import ClassifierError
from classifier._files import write_text_atomically
from classifier._versions import library_versions
from classifier.codebook import load_codebook
from classifier.data import DEFAULT_CORPUS_PATH, corpus_hash, read_corpus
from classifier.evaluation import (
    KeywordBaseline,
    TfidfSvcBaseline,
    cross_validate,
    evaluate_on,
    presence_kappas,
    theme_metrics,
)
from classifier.model import ThemeClassifier
from classifier.persistence import (
    CARD_JSON,
    CARD_MARKDOWN,
    ESTIMATOR_FILE,
    MODEL_FILE,
    save_model,
)
from classifier.rendering import REAL, render_card

# Preprocessing steps switched off one at a time; scored by cross-validation on the train split.
ABLATIONS = {
    "full pipeline (shipped)": {},
    "without domain adaptation": {"domain_adaptation": False},
    "without negation scope": {"negation": False},
    "without word bigrams": {"ngram_range": (1, 1)},
    "without character n-grams": {"char_ngram_range": None},
}


def split_corpus(corpus: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
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


def _groups(test: pd.DataFrame) -> dict[str, pd.Series]:
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
    """The training parameters of a fitted ThemeClassifier or of a compiled model."""
    if hasattr(model, "get_params"):
        return model.get_params()
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
    log("scoring the model on the test split")
    report["test"] = {"all": evaluate_on(model, test["text"], test["labels"])}
    for name, mask in _groups(test).items():
        report["test"][name] = evaluate_on(model, test[mask]["text"], test[mask]["labels"])
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
            report["baselines"][name] = {
                "all": evaluate_on(fitted, test["text"], test["labels"], with_scores=False),
                **{
                    group: evaluate_on(
                        fitted, test[mask]["text"], test[mask]["labels"], with_scores=False
                    )
                    for group, mask in _groups(test).items()
                },
            }
    if cv_folds:
        log(f"{cv_folds}-fold cross-validation on the train split")
        report["cross_validation"] = _cross_validate(
            ThemeClassifier(**params), train, cv_folds, n_jobs
        )
    return report


def _cross_validate(estimator, train: pd.DataFrame, folds: int, n_jobs: int | None = -1) -> dict:
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


def train_model(
    corpus_path: str | Path = DEFAULT_CORPUS_PATH,
    output_dir: str | Path = "models",
    codebook_path: str | None = None,
    cv_folds: int = 5,
    ablation: bool = True,
    params: dict | None = None,
    log: Callable[[str], None] = lambda message: None,
    n_jobs: int | None = -1,
) -> dict:
    """Fit on the train split, evaluate, write the model file and its card; return the card.

    Cross-validation and ablation folds run in ``n_jobs`` processes (-1: one per core).
    """
    corpus_path = Path(corpus_path)
    codebook = load_codebook(codebook_path)
    corpus = read_corpus(corpus_path)
    train, _ = split_corpus(corpus)
    model_params = {"codebook": codebook_path, **(params or {})}

    log(f"fitting on {len(train):,} training texts")
    model = ThemeClassifier(**model_params).fit(
        train["text"].tolist(), train["labels"].tolist(), **fit_params(train)
    )
    report = evaluate_model(
        model, corpus, baselines=True, cv_folds=cv_folds, log=log, n_jobs=n_jobs
    )

    if ablation and cv_folds:
        report["ablation"] = {}
        for name, change in ABLATIONS.items():
            if not change and "cross_validation" in report:
                report["ablation"][name] = report["cross_validation"]
                continue
            log(f"ablation: {name}")
            report["ablation"][name] = _cross_validate(
                ThemeClassifier(**{**model_params, **change}), train, cv_folds, n_jobs
            )

    output_dir = Path(output_dir)
    model_path = save_model(model, output_dir / MODEL_FILE)
    save_model(model, output_dir / ESTIMATOR_FILE)
    card = {
        "model_file": MODEL_FILE,
        "estimator_file": ESTIMATOR_FILE,
        "trained_on": dt.date.today().isoformat(),
        "training_data": {
            "path": corpus_path.name,
            "sha256": corpus_hash(corpus_path),
            "n_train": report["n_train"],
            "n_test": report["n_test"],
        },
        "codebook": {
            "name": codebook.name,
            "version": codebook.version,
            "sha256": hashlib.sha256(Path(codebook.path).read_bytes()).hexdigest(),
            "themes": list(codebook.theme_ids),
        },
        "library_versions": library_versions(),
        "parameters": model_parameters(model),
        "thresholds": {theme: round(value, 4) for theme, value in model.thresholds_.items()},
        "metrics": report,
    }
    write_text_atomically(output_dir / CARD_JSON, json.dumps(card, indent=2, default=list) + "\n")
    write_text_atomically(output_dir / CARD_MARKDOWN, render_card(card))
    log(f"wrote {model_path}, {output_dir / CARD_JSON}, {output_dir / CARD_MARKDOWN}")
    return card
