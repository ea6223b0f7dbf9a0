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
    assert [p.status for p in predictions] == ["ok", "empty", "ok", "not_text", "ok"]
    assert predictions[0] == predictions[2]
