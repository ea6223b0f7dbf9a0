import pickle

import numpy as np
import pytest
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from classifier import vectorize as vectorize_module
from classifier.features import TfidfFeatures, as_ngram_tfidf, char_wb_ngrams
from classifier.preprocessing import SpacyPreprocessor
from classifier.vectorize import NgramTfidf

SETTINGS = dict(
    analyzer="char_wb", lowercase=False, ngram_range=(3, 5), min_df=2, sublinear_tf=True,
    dtype=np.float32,
)  # fmt: skip


@pytest.fixture(scope="module")
def documents(corpus):
    docs = SpacyPreprocessor().transform(corpus["text"].head(1500))
    # Words the vocabulary never saw, repeated words, an empty text, odd whitespace, one letter.
    return docs + ["", "zzqx zzqx unseenword", "a", "  heard\t\theard  ", "NEG_judged 😀"]


WORDS = dict(
    token_pattern=r"\S+", lowercase=False, ngram_range=(1, 2), min_df=2, sublinear_tf=True,
    dtype=np.float32,
)  # fmt: skip


@pytest.mark.parametrize("settings", [SETTINGS, WORDS, {**WORDS, "ngram_range": (2, 3)}])
@pytest.mark.parametrize("small_batch", [0, 10**9], ids=["matrix-product", "direct"])
def test_features_equal_scikit_learns(documents, settings, small_batch, monkeypatch):
    monkeypatch.setattr(vectorize_module, "SMALL_BATCH", small_batch)
    ours = TfidfFeatures(**settings).fit(documents[:1000])
    reference = TfidfVectorizer(**settings).fit(documents[:1000])
    assert ours.vocabulary_ == reference.vocabulary_
    for _ in range(2):  # the second call runs on the word cache
        mine, theirs = ours.transform(documents), reference.transform(documents)
        assert (mine != 0).toarray().tolist() == (theirs != 0).toarray().tolist()
        np.testing.assert_allclose(mine.toarray(), theirs.toarray(), rtol=1e-5, atol=1e-7)


def test_settings_without_a_fast_path_use_scikit_learns_transform(documents):
    settings = {**WORDS, "lowercase": True}
    ours = TfidfFeatures(**settings).fit(documents[:1000])
    assert not ours._has_fast_path()
    reference = TfidfVectorizer(**settings).fit(documents[:1000])
    assert abs(ours.transform(documents) - reference.transform(documents)).max() == 0


def test_the_word_cache_is_bounded(documents, monkeypatch):
    monkeypatch.setattr(vectorize_module, "WORD_CACHE_SIZE", 50)
    ours = TfidfFeatures(**SETTINGS).fit(documents[:1000])
    expected = TfidfVectorizer(**SETTINGS).fit(documents[:1000]).transform(documents[:40])
    for start in range(0, 40, 10):
        mine = ours.transform(documents[start : start + 10]).toarray()
        np.testing.assert_allclose(mine, expected[start : start + 10].toarray(), rtol=1e-5)
        batch_words = {w for doc in documents[start : start + 10] for w in doc.split()}
        assert len(ours.to_ngram_tfidf()._word_rows) <= max(50, len(batch_words))


def test_saved_state_holds_the_vocabulary_as_one_string_and_no_cache(documents):
    ours = TfidfFeatures(**SETTINGS).fit(documents[:1000])
    ours.transform(documents[:10])
    state = ours.__getstate__()
    assert "_ngram_tfidf" not in state and "vocabulary_" not in state
    assert isinstance(state["vocabulary_terms_"], str)
    restored = pickle.loads(pickle.dumps(ours))
    assert restored.vocabulary_ == ours.vocabulary_
    assert abs(restored.transform(documents) - ours.transform(documents)).max() == 0


def test_char_wb_ngrams_counts_a_short_word_once():
    assert char_wb_ngrams("a", 3, 5) == [" a "]
    assert char_wb_ngrams("abc", 3, 3) == [" ab", "abc", "bc "]


def test_a_union_of_tfidf_features_compiles_to_the_same_numbers(documents):
    union = FeatureUnion([("words", TfidfFeatures(**WORDS)), ("chars", TfidfFeatures(**SETTINGS))])
    union.fit(documents[:1000])
    parts = as_ngram_tfidf(union)
    assert [type(part) for part in parts] == [NgramTfidf, NgramTfidf]
    stacked = sparse.hstack([part.transform(documents) for part in parts]).toarray()
    np.testing.assert_allclose(stacked, union.transform(documents).toarray(), rtol=1e-6)


class _Shifted(TfidfFeatures):
    def transform(self, raw_documents):
        return super().transform(raw_documents) * 2


@pytest.mark.parametrize(
    "make",
    [
        lambda: CountVectorizer(token_pattern=r"\S+"),
        lambda: TfidfFeatures(**{**WORDS, "lowercase": True}),  # no fast path
        lambda: TfidfFeatures(**{**WORDS, "input": "filename"}),  # would read files
        lambda: _Shifted(**WORDS),  # a subclass may transform differently
        lambda: FeatureUnion(
            [("words", TfidfFeatures(**WORDS)), ("chars", TfidfFeatures(**SETTINGS))],
            transformer_weights={"words": 2.0},
        ),
        lambda: FeatureUnion(
            [("words", TfidfFeatures(**WORDS)), ("counts", CountVectorizer(token_pattern=r"\S+"))]
        ),
    ],
    ids=["count", "lowercase", "filename", "subclass", "weighted-union", "mixed-union"],
)
def test_other_feature_steps_are_not_compiled_to_arrays(documents, make):
    step = make()
    if getattr(step, "input", "content") == "content":
        step.fit(documents[:200])
    assert as_ngram_tfidf(step) is None
