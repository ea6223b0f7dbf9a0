import json

import numpy as np

from classifier import load_model
from classifier.training import CARD_JSON, CARD_MARKDOWN, MODEL_FILE, train_model


def test_train_writes_model_and_card_deterministically(tiny_corpus_path, tmp_path):
    params = {"cv": 3}
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
