"""spaCy preprocessing: tokens, sentences and negation scope, as a transformer.

The pipeline is built from a config at load time (``spacy.blank("en")`` plus rule-based components),
so nothing is downloaded and nothing spaCy-related is ever pickled or saved with a model: a model
file stores only the transformer's plain settings.

Each text becomes one string of normalised tokens separated by spaces. Tokens inside a negation
scope get the prefix ``NEG_`` so that "never felt judged" and "felt judged" share no feature for
"judged": ``never felt judged`` -> ``never NEG_felt NEG_judged``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

NEGATION_PREFIX = "NEG_"

# Words that open a negation scope, compared with spaCy's token.norm_ (which turns "n't" into
# "not" and lower-cases). "no" and "nothing" matter as much as "not" in feedback ("no change").
NEGATION_CUES = frozenset(
    {
        "not", "no", "never", "nothing", "nobody", "none", "nor", "neither", "cannot", "without",
        "hardly", "barely", "nowhere", "noone", "dont", "didnt", "cant", "wont", "isnt", "wasnt",
        "doesnt", "havent", "hasnt", "couldnt", "wouldnt", "shouldnt", "aint",
    }
)  # fmt: skip
# Words that close a scope: contrast flips the meaning back ("not perfect, but she listens").
SCOPE_TERMINATORS = frozenset({"but", "however", "although", "though", "yet", "except", "whereas"})

_NEGATED = "negated"  # key in doc.user_data

# Texts each process analyses outside spaCy memory zones to fill the tokenizer's cache (see
# SpacyPreprocessor._analyse_batch); bounds how much the vocabulary can grow.
WARM_UP_TEXTS = 20_000


def _register_components() -> None:
    # Imported lazily: importing spaCy costs ~0.5 s and the CLI's --help must stay fast.
    from spacy.language import Language

    if "negation_scope" in Language.factories:
        return

    @Language.factory(
        "negation_scope",
        default_config={"max_scope": 8},
    )
    def make_negation_scope(nlp: Language, name: str, max_scope: int) -> NegationScope:
        return NegationScope(max_scope=max_scope, strings=nlp.vocab.strings)


class NegationScope:
    """spaCy component: marks tokens that follow a negation cue, up to punctuation or contrast.

    Stores a boolean numpy array with one entry per token in ``doc.user_data["negated"]``. The
    rule is the classic one of Das & Chen (2001) / Pang et al. (2002): the scope runs from the cue
    to the next punctuation mark, line break or contrast word, and at most ``max_scope`` tokens.
    ``pipe`` marks a whole batch of docs in one vectorised pass.
    """

    def __init__(self, max_scope: int = 8, strings=None):
        self.max_scope = max_scope
        # Compare integer hashes, not strings: this runs on every token of an export.
        self._cues = np.array(sorted(strings.add(cue) for cue in NEGATION_CUES), dtype=np.uint64)
        self._terminators = np.array(
            sorted(strings.add(word) for word in SCOPE_TERMINATORS), dtype=np.uint64
        )

    def __call__(self, doc):
        return next(iter(self.pipe([doc])))

    def pipe(self, docs: Iterable, batch_size: int = 1000) -> Iterator:
        from spacy.attrs import IS_PUNCT, IS_SPACE, NORM
        from spacy.util import minibatch

        for batch in minibatch(docs, batch_size):
            arrays = [doc.to_array([NORM, IS_PUNCT, IS_SPACE]) for doc in batch]
            lengths = [len(doc) for doc in batch]
            if sum(lengths):
                rows = np.concatenate([a for a in arrays if len(a)])
                stops = (
                    (rows[:, 1] != 0) | (rows[:, 2] != 0) | _is_in(rows[:, 0], self._terminators)
                )
                cues = _is_in(rows[:, 0], self._cues) & ~stops
                negated = negation_mask(cues, stops, lengths, self.max_scope)
            else:
                negated = np.zeros(0, dtype=bool)
            for doc, (start, end) in zip(batch, _bounds(lengths), strict=True):
                doc.user_data[_NEGATED] = negated[start:end]
            yield from batch


def _is_in(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_set)`` for a small sorted array, by binary search.

    np.isin's set-up costs ~50 microseconds a call, a noticeable share of classifying one text.
    """
    position = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[position] == values


def _bounds(lengths: Sequence[int]) -> list[tuple[int, int]]:
    """(start, end) of each doc's tokens in a concatenation (np.split is slow on 5,000 pieces)."""
    ends = np.cumsum(lengths).tolist()
    return list(zip([0, *ends[:-1]], ends, strict=True))


def negation_mask(
    cues: np.ndarray, stops: np.ndarray, lengths: Sequence[int], max_scope: int
) -> np.ndarray:
    """Which tokens of a batch of docs (concatenated) lie in a negation scope.

    A token is negated when the last cue or stop before it is a cue, in the same doc, at most
    ``max_scope`` tokens back. Equivalent to walking each doc token by token, without the loop.

    Examples
    --------
    >>> cues = np.array([True, False, False, False]); stops = np.array([False, False, True, False])
    >>> negation_mask(cues, stops, [4], max_scope=8).tolist()
    [False, True, False, False]
    """
    if not len(cues):
        return np.zeros(0, dtype=bool)
    position = np.arange(len(cues))
    events = cues | stops
    last_event = np.maximum.accumulate(np.where(events, position, -1))
    doc_start = np.repeat(np.cumsum([0, *lengths[:-1]]), lengths)
    in_doc = last_event >= doc_start
    return ~events & in_doc & cues[np.maximum(last_event, 0)] & (position - last_event <= max_scope)


@lru_cache(maxsize=4)
def build_nlp(negation: bool = True, max_scope: int = 8):
    """Build the spaCy pipeline from config: blank English tokenizer, sentencizer, negation scope.

    Cached per settings, so each process builds it once. Nothing is downloaded.
    """
    import spacy

    _register_components()
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    if negation:
        nlp.add_pipe("negation_scope", config={"max_scope": max_scope})
    # Very long texts are truncated before they reach spaCy (see SpacyPreprocessor.max_chars).
    nlp.max_length = 10_000_000
    return nlp


def as_text(value: object) -> str:
    """Return ``value`` if it is a usable string, else "" (None, NaN, numbers, bytes...).

    A lone surrogate (invalid Unicode, e.g. from a JSON escape) becomes "?", one character for
    one, so that evidence spans still index the original text; spaCy cannot store it.
    """
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, float) and math.isnan(value):
        return ""
    return ""


@dataclass(frozen=True)
class Sentence:
    """A sentence of an analysed text: its character span and its feature string."""

    start: int
    end: int
    features: str


class SpacyPreprocessor:
    """Turn raw texts into strings of normalised, negation-marked tokens with spaCy.

    Follows scikit-learn's transformer conventions (``fit``/``transform``, ``get_params``) without
    inheriting from it: inference builds one too, and must not import scikit-learn.

    Parameters
    ----------
    negation : bool, default=True
        Prefix tokens inside a negation scope with ``NEG_``.
    max_scope : int, default=8
        Longest negation scope, in tokens.
    keep_punct : bool, default=False
        Keep punctuation tokens ("!" and "?" as features).
    batch_size : int, default=5000
        Texts per ``nlp.pipe`` batch and per spaCy memory zone (bigger batches reuse the
        tokenizer's cache longer; smaller ones bound memory more tightly).
    max_chars : int, default=100_000
        Texts longer than this are cut to this length before analysis, so one pasted document
        cannot stall a batch; feedback is almost always far shorter.

    Examples
    --------
    >>> from classifier.preprocessing import SpacyPreprocessor
    >>> SpacyPreprocessor().transform(["I never felt judged."])
    ['i never NEG_felt NEG_judged']
    """

    def __init__(
        self,
        negation: bool = True,
        max_scope: int = 8,
        keep_punct: bool = False,
        batch_size: int = 5000,
        max_chars: int = 100_000,
    ):
        self.negation = negation
        self.max_scope = max_scope
        self.keep_punct = keep_punct
        self.batch_size = batch_size
        self.max_chars = max_chars

    _PARAMS = ("negation", "max_scope", "keep_punct", "batch_size", "max_chars")

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's arguments (scikit-learn's ``clone`` uses this)."""
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params) -> SpacyPreprocessor:
        for name, value in params.items():
            if name not in self._PARAMS:
                raise ValueError(f"SpacyPreprocessor has no parameter {name!r}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if v != _DEFAULTS[k]]
        return f"SpacyPreprocessor({', '.join(changed)})"

    def fit(self, X: Iterable[object], y: object = None) -> SpacyPreprocessor:
        """Stateless: nothing is learned. Returns ``self``."""
        return self

    def fit_transform(self, X: Iterable[object], y: object = None) -> list[str]:
        return self.transform(X)

    def transform(self, X: Iterable[object]) -> list[str]:
        """Return one feature string per text, in order. Never raises on odd input."""
        return [features for features, _ in self._analyse(X, with_sentences=False)]

    def analyse(
        self, X: Iterable[object], sentences: bool = True
    ) -> Iterator[tuple[str, list[Sentence]]]:
        """Yield ``(features, sentences)`` per text; ``sentences`` is empty unless asked for."""
        return self._analyse(X, with_sentences=sentences)

    def _analyse(self, X: Iterable[object], with_sentences: bool):
        nlp = build_nlp(negation=self.negation, max_scope=self.max_scope)
        # Sentence boundaries are only needed for evidence; skipping the sentencizer saves ~20%.
        disable = [] if with_sentences else ["sentencizer"]
        batch: list[str] = []
        for value in X:
            batch.append(as_text(value)[: self.max_chars])
            if len(batch) == self.batch_size:
                yield from self._analyse_batch(nlp, batch, disable, with_sentences)
                batch = []
        if batch:
            yield from self._analyse_batch(nlp, batch, disable, with_sentences)

    def _analyse_batch(self, nlp, texts: list[str], disable: list[str], with_sentences: bool):
        # A memory zone frees the strings and lexemes that new words (typos, names) add to the
        # vocabulary, so memory stays flat over a million-row stream. Docs must not outlive it,
        # hence everything is turned into plain strings inside.
        #
        # But spaCy's tokenizer caches nothing inside a memory zone, and without its cache every
        # word goes through the prefix/suffix/infix regexes again: 5-10x slower. So each process
        # analyses its first WARM_UP_TEXTS texts outside a zone. The words they leave in the
        # cache and vocabulary are the frequent ones, and their number is bounded.
        warmed = getattr(nlp, "_classifier_warmed", 0)
        if warmed < WARM_UP_TEXTS:
            nlp._classifier_warmed = warmed + len(texts)
            zone = contextlib.nullcontext()
        else:
            zone = nlp.memory_zone()
        with zone:
            # The pipeline's own steps, run here rather than through nlp.pipe, whose per-text
            # bookkeeping cost as much as the negation component on short feedback.
            docs = nlp.tokenizer.pipe(texts, batch_size=self.batch_size)
            for name, component in nlp.pipeline:
                if name not in disable:  # (all our components have a batch `pipe`)
                    docs = component.pipe(docs, batch_size=self.batch_size)
            docs = list(docs)
            tokens = self._token_features(docs, nlp.vocab.strings)
            results = []
            for doc, doc_tokens in zip(docs, tokens, strict=True):
                features = " ".join(token for token in doc_tokens if token)
                sentences = []
                if with_sentences:
                    for sent in doc.sents:
                        sent_features = " ".join(t for t in doc_tokens[sent.start : sent.end] if t)
                        if sent_features:
                            sentences.append(
                                Sentence(sent.start_char, sent.end_char, sent_features)
                            )
                results.append((features, sentences))
        return results

    def _token_features(self, docs: list, strings) -> list[list[str]]:
        """Per doc, one feature per token ("" for tokens that carry none), aligned with the doc.

        Works on the whole batch at once: each distinct word is looked up in spaCy's string store
        once per batch rather than once per occurrence.
        """
        from spacy.attrs import IS_PUNCT, IS_SPACE, LIKE_NUM, NORM

        lengths = [len(doc) for doc in docs]
        if not sum(lengths):
            return [[] for _ in docs]
        rows = np.concatenate(
            [doc.to_array([NORM, IS_PUNCT, IS_SPACE, LIKE_NUM]) for doc in docs if len(doc)]
        )
        distinct, which = np.unique(rows[:, 0], return_inverse=True)
        words = np.array([strings[int(h)].replace(" ", "_") for h in distinct], dtype=object)
        features = words[which.ravel()]
        features[rows[:, 3] != 0] = "<num>"
        if self.negation:
            negated = np.concatenate([doc.user_data[_NEGATED] for doc in docs if len(doc)])
            features[negated] = NEGATION_PREFIX + features[negated]
        dropped = rows[:, 2] != 0
        if not self.keep_punct:
            dropped |= rows[:, 1] != 0
        features[dropped] = ""
        flat = features.tolist()
        return [flat[start:end] for start, end in _bounds(lengths)]


_DEFAULTS = SpacyPreprocessor().get_params()
