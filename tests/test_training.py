import json

import numpy as np
from conftest import TINY_PARAMS

from classifier import load_model
from classifier.training import CARD_JSON, CARD_MARKDOWN, MODEL_FILE, train_model


def test_train_writes_model_and_card_deterministically(tiny_corpus_path, tmp_path):
    params = TINY_PARAMS
    first = train_model(tiny_corpus_path, tmp_path / "a", cv_folds=0, ablation=False, params=params)
    second = train_model(
        tiny_corpus_path, tmp_path / "b", cv_folds=0, ablation=False, params=params
    )
    for name in (MODEL_FILE, CARD_JSON, CARD_MARKDOWN):
        assert (tmp_path / "a" / name).is_file()
    assert first["thresholds"] == second["thresholds"]
    assert first["metrics"]["test"] == second["metrics"]["test"]
    texts = ["She never once cancelled.", "I felt judged.", ""]
    np.testing.assert_array_equal(
        load_model(tmp_path / "a" / MODEL_FILE).predict_proba(texts),
        load_model(tmp_path / "b" / MODEL_FILE).predict_proba(texts),
    )
    card = json.loads((tmp_path / "a" / CARD_JSON).read_text())
    assert set(card["metrics"]["baselines"]) and "source=nhs-fft" in card["metrics"]["test"]


def test_ablation_scores_every_step_off_on_the_train_split(tiny_corpus_path, tmp_path):
    from classifier.training import ABLATIONS

    card = train_model(
        tiny_corpus_path, tmp_path, cv_folds=2, ablation=True, params={"cv": 2, "n_thresholds": 10}
    )
    ablation = card["metrics"]["ablation"]
    assert list(ablation) == list(ABLATIONS)
    for cv in ablation.values():
        assert 0 <= cv["macro_f1"]["mean"] <= 1 and 0 <= cv["polarity_accuracy"]["mean"] <= 1
    rendered = (tmp_path / CARD_MARKDOWN).read_text()
    assert "| preprocessing (CV on train split) | macro F1 | polarity accuracy |" in rendered
    for name in ABLATIONS:
        assert f"| {name} |" in rendered


def test_shipped_markdown_card_is_the_rendering_of_the_json_card():
    # The Markdown card is generated; a hand edit or a stale rendering would show here.
    from pathlib import Path

    from classifier.training import render_card

    models = Path(__file__).resolve().parent.parent / "models"
    card = json.loads((models / CARD_JSON).read_text())
    assert (models / CARD_MARKDOWN).read_text() == render_card(card)
