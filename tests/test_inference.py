"""The compiled model file: round trip, and every way a crafted or broken file is refused."""

import json
import subprocess
import sys

import numpy as np
import pytest

from classifier import ClassifierError, load_model
from classifier import inference as inference_module
from classifier.inference import CompiledModel


def _arrays(path):
    with np.load(path, allow_pickle=False) as stored:
        return {name: stored[name] for name in stored.files}


def test_round_trip_gives_the_same_scores(tiny_model, tiny_model_path, tiny_corpus):
    texts = tiny_corpus["text"].tolist()[:60]
    loaded = CompiledModel.load(tiny_model_path)
    np.testing.assert_array_equal(loaded.predict_proba(texts), tiny_model.predict_proba(texts))
    assert loaded.thresholds_ == pytest.approx(tiny_model.thresholds_)
    assert loaded.codebook["version"] == tiny_model.codebook_["version"]
    assert "[[themes]]" in loaded.codebook["toml"]  # the codebook travels with the model


def test_loading_does_not_import_scikit_learn_or_skops(tiny_model_path):
    code = (
        "import sys; from classifier import load_model; "
        f"load_model({str(tiny_model_path)!r}).classify('She listened.'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'skops')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_truncated_file_is_one_clear_error(tiny_model_path, tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(tiny_model_path.read_bytes()[:5000])
    with pytest.raises(ClassifierError, match=r"broken.npz: not a readable model file"):
        load_model(broken)


def test_an_array_of_python_objects_is_refused(tiny_model_path, tmp_path):
    arrays = _arrays(tiny_model_path)
    arrays["coef"] = np.array([{"evil": "object"}], dtype=object)
    crafted = tmp_path / "objects.npz"
    np.savez(crafted, **arrays)  # numpy pickles object arrays; loading must never unpickle
    with pytest.raises(ClassifierError, match="objects.npz: not a readable model file"):
        load_model(crafted)


def test_inconsistent_shapes_are_refused(tiny_model_path, tmp_path):
    arrays = _arrays(tiny_model_path)
    arrays["coef"] = arrays["coef"][:10]
    crafted = tmp_path / "shapes.npz"
    np.savez(crafted, **arrays)
    with pytest.raises(ClassifierError, match="shapes.npz: inconsistent model: coefficients"):
        load_model(crafted)


def test_a_file_that_unpacks_too_large_is_refused_before_reading(
    tiny_model_path, tmp_path, monkeypatch
):
    monkeypatch.setattr(inference_module, "MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(ClassifierError, match="refused: its arrays would take"):
        CompiledModel.load(tiny_model_path)


def test_another_format_is_refused(tiny_model_path, tmp_path):
    arrays = _arrays(tiny_model_path)
    meta = json.loads(arrays["meta"].tobytes().decode())
    meta["format"] = "something-else"
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    crafted = tmp_path / "other.npz"
    np.savez(crafted, **arrays)
    with pytest.raises(ClassifierError, match="not a compiled theme-classifier model"):
        load_model(crafted)


def test_non_finite_numbers_are_refused(tiny_model_path, tmp_path):
    arrays = _arrays(tiny_model_path)
    arrays["intercept"] = arrays["intercept"].copy()
    arrays["intercept"][0] = np.nan
    crafted = tmp_path / "nan.npz"
    np.savez(crafted, **arrays)
    with pytest.raises(ClassifierError, match="non-finite"):
        load_model(crafted)
