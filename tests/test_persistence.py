import json
import os
import warnings

import numpy as np
import pytest
import skops.io as sio
from sklearn.preprocessing import FunctionTransformer

from classifier import ClassifierError, load_model, save_model
from classifier.data import DEFAULT_CORPUS_PATH, corpus_hash
from classifier.persistence import CARD_JSON, DEFAULT_MODEL_PATH, ModelVersionWarning


def test_round_trip_keeps_predictions(tiny_model, tiny_estimator_path, tiny_corpus):
    loaded = load_model(tiny_estimator_path)
    texts = tiny_corpus["text"].tolist()[:40]
    np.testing.assert_array_equal(loaded.predict_proba(texts), tiny_model.predict_proba(texts))


def test_a_file_with_foreign_types_is_refused(tmp_path):
    crafted = tmp_path / "evil.skops"
    sio.dump(FunctionTransformer(func=os.system), crafted)
    with pytest.raises(ClassifierError, match="refused to load.*system"):
        load_model(crafted)


def test_a_pickle_or_garbage_file_is_refused(tmp_path):
    bogus = tmp_path / "model.skops"
    bogus.write_bytes(b"\x80\x04not a zip")
    with pytest.raises(ClassifierError, match="not a readable skops model file"):
        load_model(bogus)


def test_missing_model_file_names_the_path(tmp_path):
    with pytest.raises(ClassifierError, match="nothere.skops: model file not found"):
        load_model(tmp_path / "nothere.skops")


def test_other_library_versions_trigger_a_warning_naming_them(tiny_model, tmp_path):
    old = tiny_model.versions_
    tiny_model.versions_ = {**old, "scikit-learn": "0.0.1"}
    try:
        path = save_model(tiny_model, tmp_path / "old.skops")
    finally:
        tiny_model.versions_ = old
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_model(path)
    messages = [str(w.message) for w in caught if issubclass(w.category, ModelVersionWarning)]
    assert messages and "scikit-learn 0.0.1" in messages[0] and "classifier train" in messages[0]


def test_shipped_model_matches_the_training_data():
    card = json.loads(DEFAULT_MODEL_PATH.with_name(CARD_JSON).read_text())
    assert card["training_data"]["sha256"] == corpus_hash(DEFAULT_CORPUS_PATH), (
        "training_data/ changed since the shipped model was trained: run `classifier train`"
    )
    model = load_model(DEFAULT_MODEL_PATH)
    assert list(model.themes_) == card["codebook"]["themes"]
    assert model.thresholds_ == pytest.approx(card["thresholds"], abs=1e-4)


def test_a_crafted_skops_file_that_fails_while_loading_is_refused_in_one_line(
    tiny_estimator_path, tmp_path
):
    # Every type in it is allowed (the type check passes), but one value is not valid JSON:
    # skops fails half-way through rebuilding the model.
    import json
    import zipfile

    crafted = tmp_path / "crafted.skops"
    with zipfile.ZipFile(tiny_estimator_path) as source, zipfile.ZipFile(crafted, "w") as out:
        schema = json.loads(source.read("schema.json"))
        schema["content"]["content"]["max_scope"]["content"] = "{not json"
        for member in source.infolist():
            data = json.dumps(schema) if member.filename == "schema.json" else source.read(member)
            out.writestr(member, data)
    with pytest.raises(ClassifierError, match=r"crafted\.skops: not a loadable skops model file"):
        load_model(crafted)
