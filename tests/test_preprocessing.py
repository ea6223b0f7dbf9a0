import math
import pickle

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import clone

from classifier.preprocessing import SpacyPreprocessor, negation_mask


def test_negation_separates_opposite_statements():
    negated, plain = SpacyPreprocessor().transform(["I never felt judged", "I felt judged"])
    assert "NEG_judged" in negated.split() and "judged" not in negated.split()
    assert "judged" in plain.split()
    dont, do = SpacyPreprocessor().transform(["I don't feel heard", "I feel heard"])
    assert "NEG_heard" in dont.split() and "heard" in do.split()


def test_contrast_and_punctuation_close_the_negation_scope():
    (features,) = SpacyPreprocessor().transform(["Not perfect, but she listens."])
    assert "listens" in features.split()
    (features,) = SpacyPreprocessor().transform(["No change. She listens."])
    assert "listens" in features.split()


def test_negation_can_be_switched_off():
    (features,) = SpacyPreprocessor(negation=False).transform(["never felt judged"])
    assert "NEG_" not in features


def test_odd_inputs_never_raise_and_keep_length():
    odd = [
        None,
        math.nan,
        42,
        b"bytes",
        "",
        "   ",
        "🙂🙂🙂",
        "x" * 100_000,
        "Je me suis senti écouté.",
        "她很好",
        "\x00\x01",
    ]
    out = SpacyPreprocessor().transform(odd)
    assert len(out) == len(odd)
    assert out[0] == out[1] == out[2] == out[4] == ""


def test_sentences_carry_character_spans():
    text = "Felt heard. But she cancelled twice!"
    ((_, sentences),) = SpacyPreprocessor().analyse([text])
    assert [text[s.start : s.end].strip() for s in sentences] == [
        "Felt heard.",
        "But she cancelled twice!",
    ]


def test_only_plain_settings_are_stored_and_pickled():
    pre = SpacyPreprocessor(max_scope=4)
    pre.transform(["warm up the pipeline"])
    assert clone(pre).get_params()["max_scope"] == 4
    state = pickle.loads(pickle.dumps(pre)).__dict__
    assert all(
        isinstance(v, (bool, int, str, float)) or k.startswith("_sklearn") for k, v in state.items()
    )


def _negation_by_walking(cues, stops, lengths, max_scope):
    """The rule as the docs state it, one token at a time: the reference for the fast version."""
    negated, start = [], 0
    for length in lengths:
        remaining = 0
        for i in range(start, start + length):
            if stops[i]:
                remaining = 0
                negated.append(False)
            elif cues[i]:
                remaining = max_scope
                negated.append(False)
            else:
                negated.append(remaining > 0)
                remaining = max(remaining - 1, 0)
        start += length
    return negated


@given(
    st.lists(st.lists(st.sampled_from("cs.."), max_size=15), max_size=6),
    st.integers(min_value=1, max_value=4),
)
def test_vectorised_negation_scope_equals_the_token_walk(docs, max_scope):
    tokens = [token for doc in docs for token in doc]
    cues = np.array([t == "c" for t in tokens], dtype=bool)
    stops = np.array([t == "s" for t in tokens], dtype=bool)
    lengths = [len(doc) for doc in docs]
    expected = _negation_by_walking(cues, stops, lengths, max_scope)
    assert negation_mask(cues, stops, lengths, max_scope).tolist() == expected


def test_scope_does_not_run_into_the_next_text():
    first, second = SpacyPreprocessor().transform(["I was not", "heard at all"])
    assert first == "i was not" and "NEG_" not in second


def test_membership_by_binary_search_matches_numpy():
    from classifier.preprocessing import _is_in

    rng = np.random.default_rng(0)
    sorted_set = np.unique(rng.integers(0, 2**63, 30, dtype=np.uint64))
    values = np.concatenate([sorted_set[::3], rng.integers(0, 2**63, 200, dtype=np.uint64)])
    rng.shuffle(values)
    assert _is_in(values, sorted_set).tolist() == np.isin(values, sorted_set).tolist()
    assert _is_in(values[:0], sorted_set).tolist() == []


# Hostile spans for the id path: contractions and special cases that spaCy joins or splits
# ("don't", "can't", ":)", "e.g."), punctuation glued to words, URLs, emoji, odd spacing.
PIECES = st.sampled_from(
    ["don't", "can't", "won't", "Dr.", "e.g.", ":)", "<3", "never", "not", "felt", "judged",
     "heard,", "(really)", "U.K.", "'s", "n't", "https://x.org/a?b", "😀", "x😀y", "ok!!", "--",
     "no.", "Mr", "a/b", "5pm", "£20", "\u0301", "\u202e", "ſ", "İ", "\t", "\n", "  "]
)  # fmt: skip


@given(st.lists(st.lists(PIECES, max_size=12).map(" ".join), max_size=8))
def test_the_id_path_gives_exactly_the_features_of_the_string_path(texts):
    # score_batch analyses texts into feature ids (no strings) for speed; they must stand for
    # exactly the features transform() gives, or tagging would silently change.
    preprocessor = SpacyPreprocessor()
    assert preprocessor.analyse_ids(texts).strings() == preprocessor.transform(texts)


def test_the_id_path_matches_on_real_feedback(corpus):
    texts = corpus["text"].head(1500).tolist()
    preprocessor = SpacyPreprocessor()
    assert preprocessor.analyse_ids(texts).strings() == preprocessor.transform(texts)


def test_long_runs_of_punctuation_are_cut_so_one_row_cannot_stall_a_run():
    # spaCy's tokenizer is quadratic in a run of punctuation (100,000 "!" took an hour): runs
    # longer than MAX_RUN characters are analysed on their first MAX_RUN characters only.
    from classifier.preprocessing import MAX_RUN

    preprocessor = SpacyPreprocessor()
    hostile = "felt heard " + "!" * 50_000 + " never judged"
    cut = "felt heard " + "!" * MAX_RUN + " never judged"
    assert preprocessor.transform([hostile]) == preprocessor.transform([cut])
    assert preprocessor.analyse_ids([hostile]).strings() == preprocessor.transform([cut])
    assert preprocessor.analysed_text("a " + "x" * MAX_RUN + " b") == "a " + "x" * MAX_RUN + " b"
