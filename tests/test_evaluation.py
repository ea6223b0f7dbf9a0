import pytest
from sklearn.base import BaseEstimator

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


class _Spy(BaseEstimator):
    """Records what cross_validate fits on and predicts; predicts no theme."""

    calls: list = []

    def __init__(self, codebook=None):
        self.codebook = codebook

    def fit(self, X, y, target_domain=None, calibration_rows=None):
        _Spy.calls.append({"fit": list(X), "target": target_domain, "tuning": calibration_rows})
        return self

    def predict(self, X):
        _Spy.calls[-1]["predict"] = list(X)
        return [{} for _ in X]


def test_cross_validation_scores_only_the_scored_rows(tiny_corpus):
    from classifier.evaluation import cross_validate

    rows = tiny_corpus[tiny_corpus["split"] == "train"]
    texts, labels = rows["text"].tolist(), rows["labels"].tolist()
    real = (rows["source"] != "authored").tolist()
    scored = [r and i % 2 == 0 for i, r in enumerate(real)]  # half the real rows
    _Spy.calls = []
    cross_validate(_Spy(), texts, labels, folds=3, target_domain=real, scored_rows=scored)
    predicted = [text for call in _Spy.calls for text in call["predict"]]
    expected = [t for t, s in zip(texts, scored, strict=True) if s]
    assert sorted(predicted) == sorted(expected)  # every scored row once, nothing else
    for call in _Spy.calls:
        fitted = set(call["fit"])
        assert {t for t, s in zip(texts, scored, strict=True) if not s} <= fitted
        flags = dict(zip(texts, real, strict=True))
        assert call["target"] == [flags[t] for t in call["fit"]]
        tuning = dict(zip(texts, scored, strict=True))
        assert call["tuning"] == [tuning[t] for t in call["fit"]]
