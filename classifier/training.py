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

from classifier._files import write_text_atomically
from classifier._versions import library_versions
from classifier.codebook import load_codebook
from classifier.data import DEFAULT_CORPUS_PATH, corpus_hash, read_corpus
from classifier.evaluation import (
    cross_validate_train,
    evaluate_model,
    fit_params,
    model_parameters,
    split_corpus,
)
from classifier.features import as_ngram_tfidf
from classifier.model import ThemeClassifier
from classifier.persistence import (
    CARD_JSON,
    CARD_MARKDOWN,
    ESTIMATOR_FILE,
    MODEL_FILE,
    save_model,
)
from classifier.rendering import render_card

# Preprocessing steps switched off one at a time; scored by cross-validation on the train split.
ABLATIONS = {
    "full pipeline (shipped)": {},
    "without domain adaptation": {"domain_adaptation": False},
    "without negation scope": {"negation": False},
    "without word bigrams": {"ngram_range": (1, 1)},
    "without character n-grams": {"char_ngram_range": None},
}


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
            report["ablation"][name] = cross_validate_train(
                ThemeClassifier(**{**model_params, **change}), train, cv_folds, n_jobs
            )

    output_dir = Path(output_dir)
    # The arrays-only file holds the built-in TF-IDF; other features live in the skops file only.
    compiles = as_ngram_tfidf(model.vectorizer_) is not None
    model_path = save_model(model, output_dir / ESTIMATOR_FILE)
    if compiles:
        model_path = save_model(model, output_dir / MODEL_FILE)
    card = {
        "model_file": MODEL_FILE if compiles else ESTIMATOR_FILE,
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
    write_text_atomically(
        output_dir / CARD_JSON, json.dumps(card, indent=2, default=json_value) + "\n"
    )
    write_text_atomically(output_dir / CARD_MARKDOWN, render_card(card))
    log(f"wrote {model_path}, {output_dir / CARD_JSON}, {output_dir / CARD_MARKDOWN}")
    return card


def json_value(value: object) -> object:
    """JSON for what the card holds besides plain values: tuples and sets as lists, and a
    ``features`` transformer as its repr (the card describes it; the model file holds it)."""
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    return repr(value)
