"""Shared fixtures: a small corpus cut from the real one, and a tiny model fitted on it once."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from classifier.data import DEFAULT_CORPUS_PATH, read_corpus
from classifier.model import ThemeClassifier
from classifier.persistence import save_model

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CSV = ROOT / "training_data" / "sample_feedback.csv"

# Small enough to fit in seconds, large enough for 3-fold CV on every theme.
TINY_TRAIN, TINY_TEST = 500, 120
# 3-fold out-of-fold scores and character 3-4-grams seen in 3+ texts: every step runs, in a
# tenth of the time (the shipped 3-5-grams make L-BFGS take many more iterations).
TINY_PARAMS = {"cv": 3, "char_ngram_range": (3, 4), "min_df": 3}


@pytest.fixture(scope="session")
def corpus() -> pd.DataFrame:
    return read_corpus(DEFAULT_CORPUS_PATH)


@pytest.fixture(scope="session")
def tiny_corpus(corpus) -> pd.DataFrame:
    # Half real, half authored rows, as the full corpus mixes them (domain adaptation needs both).
    parts = []
    for split, size in (("train", TINY_TRAIN), ("test", TINY_TEST)):
        rows = corpus[corpus["split"] == split]
        real = rows["source"] != "authored"
        parts += [rows[real].head(size // 2), rows[~real].head(size - size // 2)]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="session")
def tiny_corpus_path(tiny_corpus, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "tiny.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for record in tiny_corpus.drop(columns=["line"]).to_dict("records"):
            record = {k: v for k, v in record.items() if isinstance(v, (str, dict))}
            handle.write(json.dumps(record) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_corpus) -> ThemeClassifier:
    train = tiny_corpus[tiny_corpus["split"] == "train"]
    return ThemeClassifier(**TINY_PARAMS).fit(
        train["text"].tolist(),
        train["labels"].tolist(),
        target_domain=(train["source"] != "authored").tolist(),
    )


@pytest.fixture(scope="session")
def tiny_model_path(tiny_model, tmp_path_factory) -> Path:
    """The tiny model as tagging loads it: the compiled ``.npz`` file."""
    return save_model(tiny_model, tmp_path_factory.mktemp("model") / "tiny.npz")


@pytest.fixture(scope="session")
def tiny_estimator_path(tiny_model, tmp_path_factory) -> Path:
    """The tiny model's fitted estimators, as researchers load them (skops)."""
    return save_model(tiny_model, tmp_path_factory.mktemp("estimators") / "tiny.skops")
