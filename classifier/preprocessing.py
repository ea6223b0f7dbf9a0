"""spaCy preprocessing: tokens, sentences and negation scope, as a transformer.

The pipeline is rebuilt from a spaCy config at load time (:data:`PIPELINE_CONFIG`: English
tokenizer rules plus rule-based components), so nothing is downloaded and nothing spaCy-related
is ever pickled or saved with a model: a model file stores only the transformer's plain
settings.

Each text becomes one string of normalised tokens separated by spaces. Tokens inside a negation
scope get the prefix ``NEG_`` so that "never felt judged" and "felt judged" share no feature for
"judged": ``never felt judged`` -> ``never NEG_felt NEG_judged``.

Tagging takes a faster road to exactly the same features: :meth:`SpacyPreprocessor.analyse_ids`
gives them as integer ids, tokenizing each distinct whitespace-delimited piece of text once per
process (see the "fast path" section below). ``transform`` and ``analyse`` (with sentences, for
evidence) run the spaCy pipeline itself.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from classifier.prediction import MAX_CHARS

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

# Texts each process analyses outside spaCy memory zones to fill the tokenizer's cache and the
# vocabulary with frequent words (see SpacyPreprocessor._analyse_batch and _SpanAnalyser._zone);
# bounds how much the vocabulary can grow.
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


# The pipeline as a spaCy config: English tokenizer rules, a sentencizer and the negation
# scope. No component has weights, so nothing is downloaded and nothing is ever saved.
PIPELINE_CONFIG = """
[nlp]
lang = "en"
pipeline = {pipeline}

[components]

[components.sentencizer]
factory = "sentencizer"

[components.negation_scope]
factory = "negation_scope"
max_scope = {max_scope}
"""


def pipeline_config(negation: bool = True, max_scope: int = 8):
    """The spaCy :class:`~thinc.api.Config` of the preprocessing pipeline for these settings."""
    from spacy.util import load_config_from_str

    names = ["sentencizer", "negation_scope"] if negation else ["sentencizer"]
    text = PIPELINE_CONFIG.format(pipeline=json.dumps(names), max_scope=int(max_scope))
    config = load_config_from_str(text)
    if not negation:
        del config["components"]["negation_scope"]
    return config


@lru_cache(maxsize=4)
def build_nlp(negation: bool = True, max_scope: int = 8):
    """Build the spaCy pipeline from its config (:func:`pipeline_config`).

    Cached per settings, so each process builds it once. Nothing is downloaded.
    """
    from spacy.util import load_model_from_config

    _register_components()
    nlp = load_model_from_config(pipeline_config(negation, max_scope), auto_fill=True)
    # Very long texts are truncated before they reach spaCy (see SpacyPreprocessor.max_chars).
    nlp.max_length = 10_000_000
    return nlp


# Longest run of non-space characters analysed as it is. spaCy's tokenizer takes time quadratic
# in the length of a run of punctuation or emoji (it strips one prefix or suffix at a time):
# 4,500 "!" took 3 s and 100,000 an hour, so one hostile row could stall a whole export. No
# word, URL or e-mail address comes near; a longer run is cut to its first 200 characters.
MAX_RUN = 200
_LONG_RUN = re.compile(rf"\S{{{MAX_RUN + 1},}}")


def _bounded(text: str) -> str:
    """``text`` with every run of non-space characters cut to :data:`MAX_RUN` characters."""
    if len(text) <= MAX_RUN:
        return text
    return _LONG_RUN.sub(lambda match: match.group(0)[:MAX_RUN], text)


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
        max_chars: int = MAX_CHARS,
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

    def analysed_text(self, value: object) -> str:
        """What is analysed of ``value``: its first ``max_chars`` characters, long runs of
        non-space characters cut (see :data:`MAX_RUN`); sentence offsets index this string."""
        return _bounded(as_text(value)[: self.max_chars])

    def analyse(
        self, X: Iterable[object], sentences: bool = True
    ) -> Iterator[tuple[str, list[Sentence]]]:
        """Yield ``(features, sentences)`` per text; ``sentences`` is empty unless asked for."""
        return self._analyse(X, with_sentences=sentences)

    def analyse_ids(self, X: Iterable[object]) -> FeatureIds:
        """The features of :meth:`transform` as ids into a per-process :class:`FeatureTable`.

        What tagging runs: the same tokens, negation scopes and features, without building a
        spaCy Doc per text or a string per feature (see ``_SpanAnalyser``).
        """
        texts = [self.analysed_text(value) for value in X]
        return _span_analyser(self.negation, self.max_scope, self.keep_punct).analyse(texts)

    def _analyse(self, X: Iterable[object], with_sentences: bool):
        nlp = build_nlp(negation=self.negation, max_scope=self.max_scope)
        # Sentence boundaries are only needed for evidence; skipping the sentencizer saves ~20%.
        disable = [] if with_sentences else ["sentencizer"]
        batch: list[str] = []
        for value in X:
            batch.append(self.analysed_text(value))
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


# ----------------------------------------------------------------------------- fast path
# Tagging runs on feature ids rather than strings: what `SpacyPreprocessor.analyse_ids` returns.
#
# spaCy's tokenizer splits a text at whitespace and tokenizes each piece (a "span") on its own;
# within a memory zone it caches no span, so every word of every text went through its regexes
# and Python-level Doc machinery again. Here each distinct span is tokenized by spaCy once, its
# tokens are kept as small integer records, and a text's tokens are its spans' records, gathered
# with numpy. Negation scopes and the feature of each token are then array operations.

# Distinct spans remembered per process; past this many everything is forgotten and rebuilt as
# texts come, so a stream of typos cannot grow memory without bound (~60 MB at the limit,
# measured over a million generated rows).
SPAN_CACHE_SIZE = 200_000
# Put between the unseen spans of a batch so that spaCy tokenizes them in one Doc: spaCy gives a
# run of whitespace that starts with a newline its own token, which no special case can cross.
_SPAN_SEPARATOR = " \n "


class _Column:
    """A 1-d numpy array that grows by appending (capacity doubles)."""

    __slots__ = ("_data", "size")

    def __init__(self, dtype, initial: Sequence = ()):
        self._data = np.empty(max(1024, len(initial)), dtype=dtype)
        self.size = 0
        self.extend(initial)

    def extend(self, values) -> None:
        values = np.asarray(values, dtype=self._data.dtype)
        end = self.size + len(values)
        if end > len(self._data):
            grown = np.empty(max(end, 2 * len(self._data)), dtype=self._data.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : end] = values
        self.size = end

    @property
    def array(self) -> np.ndarray:
        return self._data[: self.size]


class FeatureTable:
    """Feature strings ("felt", "NEG_judged", "<num>") by integer id, for one process.

    Shared by the analyser that hands out the ids and the vectorisers that cache what each id
    means for them (its vocabulary column, its character n-grams). ``epoch`` changes whenever the
    table is emptied, which tells them to forget their own caches too.
    """

    def __init__(self):
        self.strings: list[str] = []
        self._ids: dict[str, int] = {}
        # Ids of features that are not exactly one whitespace-separated token (``str.split``
        # would not give back the feature itself); the id path cannot use those.
        self.unsplittable: set[int] = set()
        self.epoch = object()

    def __len__(self) -> int:
        return len(self.strings)

    def id(self, feature: str) -> int:
        found = self._ids.get(feature)
        if found is None:
            found = self._ids[feature] = len(self.strings)
            self.strings.append(feature)
            if feature.split() != [feature]:
                self.unsplittable.add(found)
        return found

    def clear(self) -> None:
        self.strings = []
        self._ids = {}
        self.unsplittable = set()
        self.epoch = object()


@dataclass(frozen=True)
class FeatureIds:
    """Analysed texts as feature ids: text ``i``'s features are ``ids[indptr[i]:indptr[i + 1]]``.

    ``strings()`` gives exactly what :meth:`SpacyPreprocessor.transform` returns for the texts,
    even once the table has been emptied (``words`` is the list the ids index; emptying the
    table replaces that list rather than clearing it).
    """

    table: FeatureTable
    epoch: object  # the table's epoch when the ids were handed out
    words: list[str]
    ids: np.ndarray  # int32
    indptr: np.ndarray  # int64, one more than there are texts
    splittable: bool  # every feature is one ``str.split`` token (what the id path needs)

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def current(self) -> bool:
        """Whether the ids still index the table (it has not been emptied since)."""
        return self.epoch is self.table.epoch

    def strings(self) -> list[str]:
        words = self.words
        flat = [words[i] for i in self.ids.tolist()]
        bounds = self.indptr.tolist()
        return [
            " ".join(word for word in flat[start:end] if word)
            for start, end in zip(bounds[:-1], bounds[1:], strict=True)
        ]


# Held while a process's feature tables are read or extended (by the analyser or a vectoriser),
# so that threads sharing a model cannot interleave their updates.
FEATURE_LOCK = threading.RLock()


def spacy_spans(text: str) -> list[str]:
    """The pieces spaCy's tokenizer splits ``text`` into before tokenizing each on its own.

    Runs of whitespace and of other characters alternate; a whitespace run that follows a word
    and starts with a single space loses that space (it becomes the word's trailing whitespace),
    and what is left of it, if anything, is a piece of its own (spaCy's ``_tokenize_affixes``).

    >>> spacy_spans("Felt  heard.\\nThanks ")
    ['Felt', ' ', 'heard.', '\\n', 'Thanks']
    """
    pieces = text.split()
    joined = " ".join(pieces)
    if text == joined or (pieces and text == joined + " "):
        return pieces  # the usual case: words separated by single spaces
    spans = []
    for run in _RUNS(text):
        if spans and run[0] == " ":  # (only a whitespace run can start with a space)
            run = run[1:]
        if run:
            spans.append(run)
    return spans


def _runs():
    import re

    # \s is exactly str.isspace (checked over all of Unicode), the test spaCy's loop uses.
    return re.compile(r"\s+|\S+").findall


_RUNS = _runs()


class _SpanAnalyser:
    """Features of texts as ids, each distinct whitespace-delimited span tokenized by spaCy once.

    Gives exactly the tokens of ``nlp.tokenizer(text)``: spaCy tokenizes the spans of a text
    independently, except that its special-case matcher runs over the whole Doc and could match
    tokens on both sides of a space. A text where two neighbouring spans could start such a
    match (rare: "it 's", ": )") is tokenized whole by spaCy instead.
    """

    def __init__(self, nlp, negation: bool, max_scope: int, keep_punct: bool):
        self.nlp = nlp
        self.negation = negation
        self.max_scope = max_scope
        self.keep_punct = keep_punct
        self.table = FeatureTable()
        self._joints = _Joints(nlp.tokenizer)
        from spacy.attrs import IS_PUNCT, IS_SPACE, LIKE_NUM, NORM

        getters = nlp.vocab.lex_attr_getters or {}
        attrs = (NORM, IS_PUNCT, IS_SPACE, LIKE_NUM)
        self._getters = (
            tuple(getters[a] for a in attrs) if all(a in getters for a in attrs) else None
        )
        self._analysed = 0  # texts so far, for the warm-up (see _zone)
        self._clear()

    def _clear(self) -> None:
        self.table.clear()
        self.spans: dict[str, int] = {}
        # Span s has the token records span_records[span_ptr[s]:span_ptr[s + 1]].
        self._span_ptr = _Column(np.int64, [0])
        self._span_records = _Column(np.int32)
        self._span_last = _Column(np.int32)  # its last token's number in _Joints.last ...
        self._span_first = _Column(np.int32)  # ... and its first token's in _Joints.first
        self._n_spans = self._n_records = 0
        self._pending: dict[str, list] = {
            "ends": [], "records": [], "last": [], "first": [], "record": []
        }  # fmt: skip
        # A record is what tagging needs of a token: (feature, dropped, stop, cue).
        self._records: dict[tuple[str, bool, bool, bool], int] = {}
        self._plain = _Column(np.int32)  # feature id
        self._negated = _Column(np.int32)  # feature id with the negation prefix
        self._dropped = _Column(bool)
        self._stop = _Column(bool)
        self._cue = _Column(bool)

    def _zone(self):
        """A spaCy memory zone, except for a process's first WARM_UP_TEXTS texts.

        New spans are tokenized in a zone, so that the lexemes and strings of typos and names
        are freed. But the first texts' words are the frequent ones, and as permanent lexemes
        they need not be built again each time they turn up in an unseen span ("felt," after
        "felt"): their number is bounded, as in SpacyPreprocessor._analyse_batch.
        """
        if self._analysed < WARM_UP_TEXTS:
            return contextlib.nullcontext()
        return self.nlp.memory_zone()

    def analyse(self, texts: Sequence[str]) -> FeatureIds:
        """The features of ``texts`` (strings, already cut to length) as ids."""
        spans, per_text = self.split(texts)
        with FEATURE_LOCK:
            if len(self.spans) > SPAN_CACHE_SIZE or self._n_records > 4 * SPAN_CACHE_SIZE:
                self._clear()
            try:
                span_ids, per_text = self.span_ids(texts, spans, per_text)
                records, lengths = self.tokens(span_ids, per_text)
                negated = self.negation_scopes(records, lengths)
            except BaseException:  # (a half-stored span must not outlive a failed batch)
                self._clear()
                raise
            self._analysed += len(texts)
            return self.features(records, lengths, negated)

    # The steps of `analyse`, separately callable for benchmarks/stages.py.
    @staticmethod
    def split(texts: Sequence[str]) -> tuple[list[str], list[int]]:
        """All texts' spans in order, and how many each text has."""
        per_text: list[int] = []
        flat: list[str] = []
        for text in texts:
            spans = spacy_spans(text)
            per_text.append(len(spans))
            flat.extend(spans)
        return flat, per_text

    def span_ids(self, texts, spans: list[str], per_text: list[int]):
        """The id of each span, spaCy tokenizing those not seen before.

        Returns the ids and the number of spans per text, which is 1 for a text that is
        tokenized whole (see the class docstring).
        """
        span_ids = np.fromiter(
            map(self.spans.get, spans, itertools.repeat(-1)), dtype=np.int64, count=len(spans)
        )
        unseen = np.flatnonzero(span_ids < 0).tolist()
        if unseen:
            self._add_spans(list(dict.fromkeys(spans[i] for i in unseen)))
            span_ids[unseen] = [self.spans[spans[i]] for i in unseen]
        if len(span_ids) > 1:
            text_of_span = np.repeat(np.arange(len(per_text)), per_text)
            joint = self._joints.risky[
                self._span_last.array[span_ids[:-1]], self._span_first.array[span_ids[1:]]
            ] & (text_of_span[:-1] == text_of_span[1:])
            if joint.any():
                whole = np.unique(text_of_span[:-1][joint]).tolist()
                span_ids, per_text = self._tokenize_whole(texts, span_ids, per_text, whole)
        return span_ids, per_text

    def tokens(self, span_ids: np.ndarray, per_text: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The token records of all texts, concatenated, and each text's number of tokens."""
        ptr = self._span_ptr.array
        starts = ptr[span_ids]
        counts = ptr[span_ids + 1] - starts
        ends = np.cumsum(counts)
        positions = np.repeat(starts - (ends - counts), counts)
        positions += np.arange(len(positions))
        # Where each text's tokens end: after its last span's (np.cumsum keeps texts without
        # spans at the bound before them).
        text_ends = np.concatenate([[0], ends])[np.cumsum(per_text, dtype=np.int64)]
        return self._span_records.array[positions], np.diff(text_ends, prepend=0)

    def negation_scopes(self, records: np.ndarray, lengths: np.ndarray) -> np.ndarray | None:
        """Which tokens lie in a negation scope (None without negation)."""
        if not self.negation:
            return None
        return negation_mask(
            self._cue.array[records], self._stop.array[records], lengths, self.max_scope
        )

    def features(self, records, lengths, negated) -> FeatureIds:
        """Each kept token's feature id, as SpacyPreprocessor._token_features gives them."""
        if negated is None:
            ids = self._plain.array[records]
        else:
            ids = np.where(negated, self._negated.array[records], self._plain.array[records])
        kept = ~self._dropped.array[records]
        kept_before = np.concatenate([[0], np.cumsum(kept)])
        token_bounds = np.concatenate([[0], np.cumsum(lengths)])
        ids = ids[kept]
        odd = self.table.unsplittable
        return FeatureIds(
            table=self.table,
            epoch=self.table.epoch,
            words=self.table.strings,
            ids=ids,
            indptr=kept_before[token_bounds],
            splittable=not odd or not _is_in(ids, np.array(sorted(odd), dtype=ids.dtype)).any(),
        )

    def _add_spans(self, spans: list[str]) -> None:
        """Tokenize spans not seen before and remember their tokens.

        A span that no prefix, suffix or infix rule splits and that is no special case is one
        token, the span itself: its attributes are worked out here with the vocabulary's own
        functions, as spaCy would when making its lexeme (most unseen spans are such words:
        typos, names). The others go through spaCy's tokenizer, all in one Doc.
        """
        words, blanks = [], []
        for span in spans:
            if span.isspace():  # would merge with the separator: " ", "\n\n" go one by one
                blanks.append(span)
            elif (record := self._one_token(span)) is not None:
                self._store(span, [record], span, span)
            else:
                words.append(span)
        with self._zone():
            if words:
                doc = self.nlp.tokenizer(_SPAN_SEPARATOR.join(words))
                starts = np.cumsum([0] + [len(w) + len(_SPAN_SEPARATOR) for w in words[:-1]])
                rows = self._rows(doc)
                # Each token belongs to the span its first character is in; the separators'
                # tokens fall outside every span.
                idx = rows[:, 0].astype(np.int64)
                span_of = np.searchsorted(starts, idx, side="right") - 1
                inside = idx < starts[span_of] + np.array([len(w) for w in words])[span_of]
                bounds = np.searchsorted(span_of[inside], np.arange(len(words) + 1)).tolist()
                inside_rows = rows[inside]
                for k, word in enumerate(words):
                    self._store_rows(word, inside_rows[bounds[k] : bounds[k + 1]])
            for blank in blanks:
                self._store_rows(blank, self._rows(self.nlp.tokenizer(blank)))
        self._flush()

    def _one_token(self, span: str) -> int | None:
        """The record of ``span`` if spaCy makes it one plain token (see _add_spans), else None.

        spaCy's Tokenizer._tokenize leaves a string whole when no prefix or suffix is found and
        the infix finder finds nothing (its special-case matcher then has nothing to match: a
        one-token pattern is a special case itself). The token's NORM, IS_PUNCT, IS_SPACE and
        LIKE_NUM are those of its lexeme, which Vocab._new_lexeme sets from lex_attr_getters.
        """
        tokenizer, getters = self.nlp.tokenizer, self._getters
        if (
            getters is None
            or span in tokenizer.rules
            or tokenizer.find_prefix(span)
            or tokenizer.find_suffix(span)
            or tokenizer.find_infix(span)
        ):
            return None
        norm, punct, space, like_num = (getter(span) for getter in getters)
        if not isinstance(norm, str) or None in (punct, space, like_num):
            return None
        return self._record(norm, bool(punct), bool(space), bool(like_num))

    def _tokenize_whole(self, texts, span_ids, per_text, whole: list[int]):
        """Replace the spans of texts ``whole`` by one pseudo-span: spaCy's tokens of the text."""
        ids = span_ids.tolist()
        starts = np.concatenate([[0], np.cumsum(per_text)]).tolist()
        per_text = list(per_text)
        with self._zone():
            for t in reversed(whole):
                pseudo = self._store_rows(None, self._rows(self.nlp.tokenizer(texts[t])))
                ids[starts[t] : starts[t + 1]] = [pseudo]
                per_text[t] = 1
        self._flush()
        return np.array(ids, dtype=np.int64), per_text

    @staticmethod
    def _rows(doc) -> np.ndarray:
        from spacy.attrs import IDX, IS_PUNCT, IS_SPACE, LIKE_NUM, NORM, ORTH

        return doc.to_array([IDX, ORTH, NORM, IS_PUNCT, IS_SPACE, LIKE_NUM]).reshape(-1, 6)

    def _store_rows(self, span: str | None, rows: np.ndarray) -> int:
        """Store a span's tokens given as rows of ``_rows`` (read while the Doc is alive)."""
        strings = self.nlp.vocab.strings
        records = [
            self._record(strings[norm], bool(punct), bool(space), bool(like_num))
            for _, _, norm, punct, space, like_num in rows.tolist()
        ]
        if not records:
            return self._store(span, records, None, None)
        return self._store(span, records, strings[int(rows[0, 1])], strings[int(rows[-1, 1])])

    def _store(self, span: str | None, records: list[int], first, last) -> int:
        """Queue a span's token records (``None``: a whole text, not cached); see _flush."""
        span_id = self._n_spans
        self._n_spans += 1
        self._n_records += len(records)
        pending = self._pending
        pending["ends"].append(self._n_records)
        pending["records"].extend(records)
        pending["last"].append(self._joints.last.get(last, 0))
        pending["first"].append(self._joints.first.get(first, 0))
        if span is not None:
            self.spans[span] = span_id
        return span_id

    def _flush(self) -> None:
        """Append the queued spans to the arrays (once per batch: numpy appends are not free)."""
        pending = self._pending
        if pending["record"]:
            plain, negated, dropped, stop, cue = zip(*pending["record"], strict=True)
            self._plain.extend(plain)
            self._negated.extend(negated)
            self._dropped.extend(dropped)
            self._stop.extend(stop)
            self._cue.extend(cue)
        self._span_ptr.extend(pending["ends"])
        self._span_records.extend(pending["records"])
        self._span_last.extend(pending["last"])
        self._span_first.extend(pending["first"])
        for values in pending.values():
            values.clear()

    def _record(self, norm: str, punct: bool, space: bool, like_num: bool) -> int:
        stop = punct or space or norm in SCOPE_TERMINATORS
        dropped = space or (punct and not self.keep_punct)
        if dropped:  # a dropped token is a stop, never a cue, and has no feature
            key = ("", True, True, False)
        else:
            feature = "<num>" if like_num else norm.replace(" ", "_")
            key = (feature, False, stop, norm in NEGATION_CUES and not stop)
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = len(self._records)
            feature = key[0]
            self._pending["record"].append(
                (self.table.id(feature), self.table.id(NEGATION_PREFIX + feature), *key[1:])
            )
        return record


class _Joints:
    """Which neighbouring spans spaCy's special-case matcher could join, by their edge tokens.

    After tokenizing, spaCy runs a PhraseMatcher of its special cases ("a.", ":)", "it's"), each
    as the tokens it is split into without special cases, over the whole Doc; a match that
    crosses a space changes nothing itself but can hide a match inside one of the spans. Such a
    match puts two neighbouring tokens of its pattern on either side of the space. So spans X, Y
    (Y right after X, a space between) are a risk only when (last token of X, first token of Y)
    is a neighbouring pair in some pattern: the tokens as they were before the matcher ran, and
    the matcher may have rewritten them inside the span already, into the last (first) token of
    the special case whose pattern ends (starts) with them; those forms count too.

    ``last[token]`` and ``first[token]`` number the tokens that take part (0: none);
    ``risky[last, first]`` says whether the pair is a risk. Worked out from every rule, a
    superset of the ones in the matcher: erring this way only sends a few texts to spaCy whole.
    """

    def __init__(self, tokenizer):
        from spacy.tokenizer import Tokenizer

        bare = Tokenizer(
            tokenizer.vocab,
            rules={},
            prefix_search=tokenizer.prefix_search,
            suffix_search=tokenizer.suffix_search,
            infix_finditer=tokenizer.infix_finditer,
            token_match=tokenizer.token_match,
            url_match=tokenizer.url_match,
        )
        with tokenizer.vocab.memory_zone():
            rules = list(tokenizer.rules)
            patterns = [[token.text for token in bare(rule)] for rule in rules]
            specials = [[token.text for token in tokenizer(rule)] for rule in rules]
        # The forms a pattern's last (first) token can have once the matcher has run.
        as_last: dict[str, set[str]] = {}
        as_first: dict[str, set[str]] = {}
        for pattern, special in zip(patterns, specials, strict=True):
            if pattern and special:
                as_last.setdefault(pattern[-1], set()).add(special[-1])
                as_first.setdefault(pattern[0], set()).add(special[0])
        pairs = set()
        for pattern in patterns:
            for before, after in zip(pattern[:-1], pattern[1:], strict=True):
                for last in {before} | as_last.get(before, set()):
                    for first in {after} | as_first.get(after, set()):
                        pairs.add((last, first))
        self.last = {token: i + 1 for i, token in enumerate(sorted({a for a, _ in pairs}))}
        self.first = {token: i + 1 for i, token in enumerate(sorted({b for _, b in pairs}))}
        self.risky = np.zeros((len(self.last) + 1, len(self.first) + 1), dtype=bool)
        for last, first in pairs:
            self.risky[self.last[last], self.first[first]] = True


@lru_cache(maxsize=4)
def _span_analyser(negation: bool, max_scope: int, keep_punct: bool) -> _SpanAnalyser:
    return _SpanAnalyser(build_nlp(negation, max_scope), negation, max_scope, keep_punct)
