import pytest

from classifier.evaluation import KeywordBaseline, TfidfSvcBaseline, theme_metrics

THEMES = ("trust", "progress")


def test_theme_metrics_count_presence_and_polarity_separately():
    truth = [{"trust": "positive"}, {"progress": "negative"}, {}, {}]
    guess = [{"trust": "negative"}, {"progress": "negative"}, {"trust": "positive"}, {}]
    m = theme_metrics(truth, guess, THEMES)
    assert m["per_theme"]["trust"]["precision"] == pytest.approx(0.5)
    assert m["per_theme"]["trust"]["recall"] == pytest.approx(1.0)
    assert m["per_theme"]["progress"]["f1"] == pytest.approx(1.0)
    assert m["polarity_accuracy"] == pytest.approx(0.5)  # one of two detected themes right
    assert m["untagged_share_of_no_theme"] == pytest.approx(0.5)


def test_perfect_predictions_score_one():
    truth = [{"trust": "positive"}, {"progress": "negative"}, {}]
    m = theme_metrics(truth, truth, THEMES)
    assert m["macro_f1"] == m["micro_f1"] == m["polarity_accuracy"] == 1.0


def test_keyword_baseline_uses_codebook_words():
    baseline = KeywordBaseline().fit([], [])
    (labels,) = baseline.predict(["The session was scripted and she was distracted."])
    assert labels.get("genuineness") == "negative"


def test_svc_baseline_fits_and_predicts(tiny_corpus):
    train = tiny_corpus[tiny_corpus["split"] == "train"]
    baseline = TfidfSvcBaseline().fit(train["text"].tolist(), train["labels"].tolist())
    predictions = baseline.predict(["She cancelled again.", None])
    assert len(predictions) == 2 and predictions[1] == {}
