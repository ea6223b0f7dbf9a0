import json

import numpy as np
from conftest import TINY_PARAMS

from classifier import load_model
from classifier.evaluation import coder_agreement
from classifier.persistence import CARD_JSON, CARD_MARKDOWN, ESTIMATOR_FILE, MODEL_FILE
from classifier.training import train_model


def test_train_writes_model_and_card_deterministically(tiny_corpus_path, tmp_path):
    params = TINY_PARAMS
    first = train_model(tiny_corpus_path, tmp_path / "a", cv_folds=0, ablation=False, params=params)
    second = train_model(
        tiny_corpus_path, tmp_path / "b", cv_folds=0, ablation=False, params=params
    )
    for name in (MODEL_FILE, ESTIMATOR_FILE, CARD_JSON, CARD_MARKDOWN):
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
    assert "real" in card["metrics"]["test"]  # the tiny corpus mixes real and authored rows


def test_ablation_scores_every_step_off_on_the_train_split(tiny_corpus_path, tmp_path):
    from classifier.training import ABLATIONS

    card = train_model(tiny_corpus_path, tmp_path, cv_folds=2, ablation=True, params={"cv": 2})
    ablation = card["metrics"]["ablation"]
    assert list(ablation) == list(ABLATIONS)
    for cv in ablation.values():
        assert 0 <= cv["macro_f1"]["mean"] <= 1 and 0 <= cv["polarity_accuracy"]["mean"] <= 1
    rendered = (tmp_path / CARD_MARKDOWN).read_text()
    rows = {line.split("|")[1].strip() for line in rendered.splitlines() if line.startswith("|")}
    assert "pipeline step switched off (CV, as above)" in rows
    assert set(ABLATIONS) <= rows


def test_shipped_markdown_card_is_the_rendering_of_the_json_card():
    # The Markdown card is generated; a hand edit or a stale rendering would show here.
    from pathlib import Path

    from classifier.rendering import render_card

    models = Path(__file__).resolve().parent.parent / "models"
    card = json.loads((models / CARD_JSON).read_text())
    assert (models / CARD_MARKDOWN).read_text() == render_card(card)


def test_coder_agreement_puts_the_model_beside_the_second_coder(tiny_model, tiny_corpus):
    from sklearn.metrics import f1_score

    test = tiny_corpus[tiny_corpus["split"] == "test"].copy()
    themes = tiny_model.themes_
    first = test["labels"].tolist()
    # A second coder who drops every 'empathy' label of the first.
    second = [{k: v for k, v in labels.items() if k != "empathy"} for labels in first]
    test["double_coded"] = [{"first": a, "second": b} for a, b in zip(first, second, strict=True)]
    agreement = coder_agreement(tiny_model, test)
    as_matrix = lambda rows: np.array([[t in r for t in themes] for r in rows], dtype=int)  # noqa: E731
    expected = f1_score(as_matrix(first), as_matrix(second), average="micro", zero_division=0)
    assert agreement["n_texts"] == len(test)
    assert agreement["coder_vs_coder"]["micro_f1"] == expected
    predicted = tiny_model.predict(test["text"].tolist())
    expected_model = f1_score(as_matrix(first), as_matrix(predicted), average="micro")
    assert agreement["model_vs_first_coder"]["micro_f1"] == expected_model
    assert coder_agreement(tiny_model, test.drop(columns=["double_coded"])) is None


def test_a_model_with_other_features_trains_and_is_saved_as_skops_only(tiny_corpus_path, tmp_path):
    from sklearn.feature_extraction.text import CountVectorizer

    features = CountVectorizer(token_pattern=r"\S+", min_df=2)
    card = train_model(
        tiny_corpus_path, tmp_path, cv_folds=0, ablation=False,
        params={**TINY_PARAMS, "features": features},
    )  # fmt: skip
    assert card["model_file"] == ESTIMATOR_FILE and not (tmp_path / MODEL_FILE).exists()
    assert (
        "CountVectorizer"
        in json.loads((tmp_path / CARD_JSON).read_text())["parameters"]["features"]
    )
    model = load_model(tmp_path / ESTIMATOR_FILE)
    assert len(model.predict(["She listened to me.", "Cancelled twice."])) == 2
