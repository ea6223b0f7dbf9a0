import numpy as np

from classifier import BatchScores


def test_batch_scores_expand_to_one_row_per_text(tiny_model):
    texts = ["She listened to me.", "", "She listened to me.", None, "Cancelled again."]
    batch = tiny_model.score_batch(texts)
    assert isinstance(batch, BatchScores) and len(batch) == len(texts)
    assert batch.presence.shape == (2, len(tiny_model.themes_))  # two distinct texts analysed
    presence = batch.per_text(batch.presence)
    assert presence.shape == (5, len(tiny_model.themes_))
    assert np.isnan(presence[[1, 3]]).all()
    analysed = [0, 2, 4]
    expected = tiny_model.predict_proba([texts[i] for i in analysed])
    np.testing.assert_allclose(presence[analysed], expected, rtol=1e-6)
    predictions = batch.predictions()
    assert [p.status for p in predictions] == ["ok", "empty", "ok", "empty", "ok"]
    assert predictions[0] == predictions[2]


def test_round_scores_is_pythons_round_bit_for_bit():
    from classifier.prediction import round_scores

    rng = np.random.default_rng(0)
    # Random scores plus exact and near ties at the third decimal, and NaN.
    ties = np.arange(0, 1001) / 1000 + 0.0005
    values = np.concatenate([rng.random(20_000), ties, np.nextafter(ties, 0), [np.nan, 0, 1]])
    rounded = round_scores(values)
    expected = np.array([round(v, 3) for v in values.tolist()])
    np.testing.assert_array_equal(rounded, expected)  # NaN equals NaN here; floats exactly
