import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_PARAMS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.pipeline import FeatureUnion

from classifier import ClassifierError, ThemeClassifier, load_model, save_model
from classifier.codebook import DEFAULT_CODEBOOK_PATH
from classifier.features import TfidfFeatures
from classifier.prediction import STATUS_EMPTY, STATUS_NOT_TEXT, STATUS_OK
from classifier.vectorize import NgramTfidf


def test_predict_returns_codebook_labels(tiny_model, tiny_corpus):
    predictions = tiny_model.predict(tiny_corpus["text"].tolist()[:50])
    assert len(predictions) == 50
    for labels in predictions:
        assert set(labels) <= set(tiny_model.themes_)
        assert set(labels.values()) <= {"positive", "negative"}


def test_the_model_learns_something(tiny_model, tiny_corpus):
    test = tiny_corpus[tiny_corpus["split"] == "test"]
    truth = np.array([[t in lab for t in tiny_model.themes_] for lab in test["labels"]])
    scores = tiny_model.predict_proba(test["text"].tolist())
    assert scores.shape == truth.shape
    assert ((scores >= 0) & (scores <= 1)).all()
    # Texts that carry a theme score higher for it, on average, than texts that do not.
    for col in range(truth.shape[1]):
        if truth[:, col].any():
            assert scores[truth[:, col], col].mean() > scores[~truth[:, col], col].mean()


def test_prediction_shape_and_evidence(tiny_model):
    text = "I never felt judged there. She cancelled on me three times this month."
    prediction = tiny_model.classify(text)
    assert set(prediction.scores) == set(tiny_model.themes_)
    assert prediction.labels == {r.theme: r.polarity for r in prediction.themes}
    for result in prediction.themes:
        assert result.score >= tiny_model.thresholds_[result.theme]
        assert 0.5 <= result.polarity_score <= 1
        for piece in result.evidence.split(" … "):
            assert piece and piece in text
    assert prediction.to_dict()["labels"] == prediction.labels


def test_unusable_inputs_come_back_untagged_with_a_status(tiny_model):
    texts = ["", "  ", None, math.nan, pd.NA, np.float32("nan"), 3, True, "She listened."]
    predictions = tiny_model.classify_many(texts)
    # Blank and missing are one thing ("empty"), as a blank CSV cell reads as "" or NaN.
    assert [p.status for p in predictions] == [STATUS_EMPTY] * 6 + [STATUS_NOT_TEXT] * 2 + [
        STATUS_OK
    ]
    assert all(not p.themes and not p.scores for p in predictions[:-1])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.one_of(st.text(max_size=80), st.none(), st.integers()), max_size=30),
    st.integers(min_value=1, max_value=7),
)
def test_classify_many_keeps_length_and_order(tiny_model, texts, batch_size):
    together = tiny_model.classify_many(texts, batch_size=batch_size)
    one_by_one = [tiny_model.classify(text) for text in texts]
    assert len(together) == len(texts)
    assert [p.labels for p in together] == [p.labels for p in one_by_one]


def test_same_data_and_settings_give_the_same_model(tiny_corpus, tiny_model):
    train = tiny_corpus[tiny_corpus["split"] == "train"]
    again = ThemeClassifier(**TINY_PARAMS).fit(
        train["text"].tolist(),
        train["labels"].tolist(),
        target_domain=(train["source"] != "authored").tolist(),
    )
    texts = tiny_corpus["text"].tolist()
    np.testing.assert_array_equal(again.predict_proba(texts), tiny_model.predict_proba(texts))
    assert again.thresholds_ == tiny_model.thresholds_


def test_unfitted_model_refuses_to_predict():
    with pytest.raises(NotFittedError):
        ThemeClassifier().predict(["hello"])


@pytest.mark.parametrize(
    "labels, message",
    [
        ([{"warmth": "positive"}], "unknown theme 'warmth'"),
        ([{"trust": "good"}], "unknown polarity 'good'"),
    ],
)
def test_bad_labels_are_rejected_by_row(labels, message):
    with pytest.raises(ClassifierError, match=f"row 0: {message}"):
        ThemeClassifier().fit(["text"], labels)


def test_too_few_examples_of_a_theme_is_a_clear_error():
    with pytest.raises(ClassifierError, match="theme 'genuineness'"):
        ThemeClassifier(cv=3).fit(["a", "b", "c", "d"], [{}, {}, {}, {}])


def test_compiled_scores_match_the_scikit_learn_estimators(tiny_model, tiny_corpus):
    texts = tiny_corpus["text"].tolist()[:80]
    # The estimators see the augmented features of a real text; the compiled model folds them.
    assert tiny_model.augmented_
    features = tiny_model.estimator_features(texts)
    compiled = tiny_model.compile()
    batch = compiled.score_batch(texts)
    presence, positive = batch.per_text(batch.presence), batch.per_text(batch.positive)
    np.testing.assert_allclose(presence, tiny_model.estimator_proba(texts), rtol=1e-5, atol=1e-6)
    for col, theme in enumerate(tiny_model.themes_):
        polarity = tiny_model.polarity_[theme]
        expected = polarity.predict_proba(features)[:, list(polarity.classes_).index(1)]
        np.testing.assert_allclose(positive[:, col], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        batch.per_text(batch.detected, False),
        tiny_model.estimator_proba(texts) >= compiled.thresholds,
    )


def test_thresholds_are_f1_optimal_cuts_calibrated_on_the_real_rows(tiny_corpus):
    from sklearn.metrics import f1_score
    from sklearn.model_selection import cross_val_predict

    from classifier.model import _calibrated, augment

    train = tiny_corpus[tiny_corpus["split"] == "train"]
    real = (train["source"] != "authored").to_numpy()
    model = ThemeClassifier(**TINY_PARAMS).fit(
        train["text"].tolist(), train["labels"].tolist(), target_domain=real
    )
    everywhere = ThemeClassifier(**TINY_PARAMS, calibrate_on="all").fit(
        train["text"].tolist(), train["labels"].tolist(), target_domain=real
    )
    theme = "empathy"
    # Same estimators and the same decisions; only the probability scale differs.
    np.testing.assert_array_equal(model.presence_[theme].coef_, everywhere.presence_[theme].coef_)
    texts = tiny_corpus["text"].tolist()
    np.testing.assert_array_equal(
        model.predict_proba(texts) >= model.compile().thresholds,
        everywhere.predict_proba(texts) >= everywhere.compile().thresholds,
    )
    assert model.thresholds_ != everywhere.thresholds_
    # No other cut of the out-of-fold scores of all rows has a higher F1.
    features = model.vectorizer_.transform(model.preprocessor_.transform(train["text"].tolist()))
    features = augment(features, real)
    truth = np.array([theme in labels for labels in train["labels"]], dtype=int)
    held_out = cross_val_predict(
        model._logistic_regression(), features, truth, cv=model._folds(),
        method="decision_function",
    )  # fmt: skip
    probability = _calibrated(model.calibrators_[theme], held_out)
    # (float32 decision values: allow for the last digit of the stored threshold)
    best = f1_score(truth, probability >= model.thresholds_[theme] - 1e-6)
    for candidate in np.unique(held_out):
        assert f1_score(truth, held_out >= candidate) <= best + 1e-12


@pytest.mark.parametrize("adapt", [True, False])
def test_domain_adaptation_only_with_both_domains(tiny_corpus, adapt):
    train = tiny_corpus[tiny_corpus["split"] == "train"]
    real = (train["source"] != "authored").tolist()
    model = ThemeClassifier(**TINY_PARAMS, domain_adaptation=adapt).fit(
        train["text"].tolist(), train["labels"].tolist(), target_domain=real
    )
    n_features = sum(part.n_features for part in model.compile().parts)
    first = model.presence_[model.themes_[0]]
    assert model.augmented_ is adapt
    assert first.coef_.shape[1] == (2 * n_features if adapt else n_features)
    everything_real = ThemeClassifier(**TINY_PARAMS).fit(
        train["text"].tolist(), train["labels"].tolist(), target_domain=[True] * len(train)
    )
    assert not everything_real.augmented_


def test_target_domain_must_match_the_texts(tiny_corpus):
    with pytest.raises(ClassifierError, match="target_domain"):
        ThemeClassifier().fit(["a", "b"], [{}, {}], target_domain=[True])


def test_isotonic_calibration_compiles_to_the_estimators_numbers(tiny_corpus):
    train = tiny_corpus[tiny_corpus["split"] == "train"]
    model = ThemeClassifier(**TINY_PARAMS, calibration="isotonic").fit(
        train["text"].tolist(), train["labels"].tolist()
    )
    texts = tiny_corpus["text"].tolist()[:60]
    # float32 features: logits agree to ~1e-6, and interpolation can stretch that a little.
    np.testing.assert_allclose(model.predict_proba(texts), model.estimator_proba(texts), atol=1e-4)


# ------------------------------------------------------------------ the feature step (features=)
def _tiny_fit(model, tiny_corpus):
    train = tiny_corpus[tiny_corpus["split"] == "train"]
    return model.fit(
        train["text"].tolist(),
        train["labels"].tolist(),
        target_domain=(train["source"] != "authored").tolist(),
    )


MULTI_SENTENCE = (
    "I never felt judged there. She cancelled on me three times this month. She really listened."
)


@pytest.fixture(scope="module")
def count_features():
    return CountVectorizer(token_pattern=r"\S+", min_df=2)


@pytest.fixture(scope="module")
def count_model(tiny_corpus, count_features, tmp_path_factory):
    """Counts instead of TF-IDF, trained from a codebook given as a path relative to the cwd."""
    folder = tmp_path_factory.mktemp("training-folder")
    shutil.copy(DEFAULT_CODEBOOK_PATH, folder / "book.toml")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        model = ThemeClassifier(codebook="book.toml", cv=3, features=count_features)
        return _tiny_fit(model, tiny_corpus)


def test_default_features_are_the_tfidf_union_of_the_parameters(tiny_model, tiny_corpus):
    # What features=None stands for, spelled out: passing it must give the same model.
    settings = dict(lowercase=False, min_df=TINY_PARAMS["min_df"], sublinear_tf=True,
                    dtype=np.float32)  # fmt: skip
    union = FeatureUnion([
        ("words", TfidfFeatures(token_pattern=r"\S+", ngram_range=(1, 2), **settings)),
        ("chars", TfidfFeatures(analyzer="char_wb", ngram_range=(3, 4), **settings)),
    ])  # fmt: skip
    explicit = _tiny_fit(ThemeClassifier(**TINY_PARAMS, features=union), tiny_corpus)
    texts = tiny_corpus["text"].tolist()
    np.testing.assert_array_equal(explicit.predict_proba(texts), tiny_model.predict_proba(texts))
    assert explicit.thresholds_ == tiny_model.thresholds_
    # ... and it compiles to the same saveable arrays.
    assert all(isinstance(part, NgramTfidf) for part in explicit.compile().parts)
    assert tiny_model.get_params()["features"] is None


def test_features_is_a_parameter_that_clone_copies():
    features = CountVectorizer(token_pattern=r"\S+", min_df=2)
    model = ThemeClassifier(features=features)
    assert model.get_params()["features"] is features  # __init__ only stores it
    assert model.get_params()["features__min_df"] == 2
    copy = clone(model.set_params(features__min_df=3))
    assert copy.features is not features
    assert copy.features.get_params() == features.get_params()
    assert features.min_df == 3


def test_other_features_fit_predict_and_match_their_estimators(
    count_model, count_features, tiny_corpus
):
    # fit cloned the transformer: the one passed in stays unfitted.
    assert not hasattr(count_features, "vocabulary_")
    assert isinstance(count_model.vectorizer_, CountVectorizer)
    assert count_model.augmented_  # domain adaptation on count features
    compiled = count_model.compile()
    assert compiled.parts == [count_model.vectorizer_]
    texts = tiny_corpus["text"].tolist()[:60]
    np.testing.assert_allclose(
        count_model.predict_proba(texts), count_model.estimator_proba(texts), atol=1e-9
    )
    for labels in count_model.predict(texts):
        assert set(labels) <= set(count_model.themes_)


def test_other_features_give_evidence_from_the_text(count_model):
    prediction = count_model.classify(MULTI_SENTENCE, explain=True)
    assert prediction.themes, "the tiny count model should detect a theme in this text"
    for result in prediction.themes:
        pieces = result.evidence.split(" … ")
        assert all(piece and piece in MULTI_SENTENCE for piece in pieces)
        assert result.evidence != MULTI_SENTENCE  # sentences scored, not the whole text


def test_other_features_are_refused_as_npz_and_saved_as_skops(count_model, tiny_corpus, tmp_path):
    with pytest.raises(ClassifierError) as refused:
        save_model(count_model, tmp_path / "counts.npz")
    message = str(refused.value)
    assert "\n" not in message
    assert "only the built-in TF-IDF features can be saved as .npz" in message
    assert ".skops" in message
    assert not (tmp_path / "counts.npz").exists()
    # scikit-learn's CountVectorizer is trusted by skops: the estimators load back.
    loaded = load_model(save_model(count_model, tmp_path / "counts.skops"))
    texts = tiny_corpus["text"].tolist()[:40]
    np.testing.assert_array_equal(loaded.predict_proba(texts), count_model.predict_proba(texts))


def test_the_codebook_travels_with_the_model(count_model, tmp_path, monkeypatch):
    # Trained from "book.toml" in another folder: nothing reads that path after fitting.
    monkeypatch.chdir(tmp_path)
    assert not Path("book.toml").exists()
    toml = DEFAULT_CODEBOOK_PATH.read_text(encoding="utf-8")
    assert count_model.codebook_["toml"] == toml
    fresh = pickle.loads(pickle.dumps(count_model))  # no cached compiled model
    assert fresh.compile().codebook["toml"] == toml
    assert fresh.predict([MULTI_SENTENCE]) == count_model.predict([MULTI_SENTENCE])


def test_augment_treats_dense_and_sparse_features_alike():
    from classifier.model import augment

    dense = np.array([[1, 2], [3, 0], [0, 4]], dtype=np.int64)
    target = np.array([True, False, True])
    expected = [[1, 2, 1, 2], [3, 0, 0, 0], [0, 4, 0, 4]]
    assert augment(dense, target).tolist() == expected
    assert augment(sparse.csr_matrix(dense), target).toarray().tolist() == expected
    assert augment(dense, None).tolist() == np.hstack([dense, dense]).tolist()


def test_no_inherited_score_method():
    # ClassifierMixin.score would compare label dicts as if they were class labels.
    assert not hasattr(ThemeClassifier(), "score")


def test_a_model_saved_before_features_existed_still_compiles(tiny_model, tiny_corpus):
    # A .skops file written by an earlier version holds no "features" attribute.
    state = tiny_model.__getstate__()
    del state["features"]
    old = ThemeClassifier.__new__(ThemeClassifier)
    old.__setstate__(state)
    assert old.get_params()["features"] is None
    texts = tiny_corpus["text"].tolist()[:20]
    np.testing.assert_array_equal(old.predict_proba(texts), tiny_model.predict_proba(texts))
