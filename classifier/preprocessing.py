"""spaCy preprocessing: tokens, sentences and negation scope, as a scikit-learn transformer.

The pipeline is built from a config at load time (``spacy.blank("en")`` plus rule-based components),
so nothing is downloaded and nothing spaCy-related is ever pickled or saved with a model: a model
file stores only the transformer's plain settings.

Each text becomes one string of normalised tokens separated by spaces. Tokens inside a negation
scope get the prefix ``NEG_`` so that "never felt judged" and "felt judged" share no feature for
"judged": ``never felt judged`` -> ``never NEG_felt NEG_judged``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

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
    """

    def __init__(self, max_scope: int = 8, strings=None):
        self.max_scope = max_scope
        # Compare integer hashes, not strings: this runs on every token of an export.
        self._cues = {strings.add(cue) for cue in NEGATION_CUES}
        self._terminators = {strings.add(word) for word in SCOPE_TERMINATORS}

    def __call__(self, doc):
        from spacy.attrs import IS_PUNCT, IS_SPACE, NORM

        negated = np.zeros(len(doc), dtype=bool)
        remaining = 0
        rows = doc.to_array([NORM, IS_PUNCT, IS_SPACE]).tolist() if len(doc) else []
        for i, (norm, punct, space) in enumerate(rows):
            if punct or space or norm in self._terminators:
                remaining = 0
            elif norm in self._cues:
                remaining = self.max_scope
            elif remaining:
                negated[i] = True
                remaining -= 1
        doc.user_data[_NEGATED] = negated
        return doc


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
    """Return ``value`` if it is a usable string, else "" (None, NaN, numbers, bytes...)."""
    if isinstance(value, str):
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


class SpacyPreprocessor(TransformerMixin, BaseEstimator):
    """Turn raw texts into strings of normalised, negation-marked tokens with spaCy.

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

    def fit(self, X: Iterable[object], y: object = None) -> SpacyPreprocessor:
        """Stateless: nothing is learned. Returns ``self``."""
        return self

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
        results = []
        with nlp.memory_zone():
            for doc in nlp.pipe(texts, batch_size=self.batch_size, disable=disable):
                tokens = self._token_features(doc)
                features = " ".join(token for token in tokens if token)
                sentences = []
                if with_sentences:
                    for sent in doc.sents:
                        sent_features = " ".join(t for t in tokens[sent.start : sent.end] if t)
                        if sent_features:
                            sentences.append(
                                Sentence(sent.start_char, sent.end_char, sent_features)
                            )
                results.append((features, sentences))
        return results

    def _token_features(self, doc) -> list[str]:
        """One feature per token ("" for tokens that carry none), aligned with the doc."""
        from spacy.attrs import IS_PUNCT, IS_SPACE, LIKE_NUM, NORM

        if not len(doc):
            return []
        negated = doc.user_data.get(_NEGATED) if self.negation else None
        strings = doc.vocab.strings
        features = []
        rows = doc.to_array([NORM, IS_PUNCT, IS_SPACE, LIKE_NUM]).tolist()
        for i, (norm, punct, space, number) in enumerate(rows):
            if space or (punct and not self.keep_punct):
                features.append("")
                continue
            feature = "<num>" if number else strings[norm].replace(" ", "_")
            if negated is not None and negated[i]:
                feature = NEGATION_PREFIX + feature
            features.append(feature)
        return features
