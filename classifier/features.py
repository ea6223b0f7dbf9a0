"""TF-IDF features of preprocessed texts, fast enough for million-row exports.

:class:`TfidfFeatures` is scikit-learn's :class:`~sklearn.feature_extraction.text.TfidfVectorizer`
with two changes that leave every number the same:

* its vocabulary is saved as one string (small, fast-loading model files);
* ``transform`` skips scikit-learn's per-call validation (1 ms a call, which mattered for one
  text at a time), and with ``analyzer="char_wb"`` counts character n-grams per distinct *word*
  rather than per occurrence: each word's n-gram columns are worked out once and cached, and a
  text's counts are the concatenation of its words' columns. Feedback reuses a small vocabulary,
  so this is many times faster than n-gramming every text.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

# Up to this many texts per call, character n-gram counts are built without a matrix product.
SMALL_BATCH = 16
# Distinct words whose n-gram rows are kept between calls; the cache is emptied when it would
# grow past this, so a stream of typos cannot grow memory without bound.
WORD_CACHE_SIZE = 200_000


def char_wb_ngrams(word: str, min_n: int, max_n: int) -> list[str]:
    """The n-grams scikit-learn's ``char_wb`` analyzer takes from one word (padded by spaces).

    Examples
    --------
    >>> char_wb_ngrams("hi", 3, 4)
    [' hi', 'hi ', ' hi ']
    """
    padded = f" {word} "
    grams = []
    for n in range(min_n, max_n + 1):
        if len(padded) <= n:  # a short word is counted once, whole
            grams.append(padded)
            break
        grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


class TfidfFeatures(TfidfVectorizer):
    """A :class:`TfidfVectorizer` with a compact saved vocabulary and fast ``char_wb`` transform.

    Takes the same parameters and gives the same matrices as ``TfidfVectorizer``.

    Examples
    --------
    >>> from classifier.features import TfidfFeatures
    >>> features = TfidfFeatures(analyzer="char_wb", ngram_range=(3, 4)).fit(["felt heard"])
    >>> features.transform(["heard"]).shape
    (1, 15)
    """

    def transform(self, raw_documents: Iterable[str]):
        """TF-IDF matrix of the documents: the numbers of ``TfidfVectorizer.transform``."""
        if not self._has_fast_path():
            return super().transform(raw_documents)
        check_is_fitted(self, "vocabulary_")
        if isinstance(raw_documents, str):
            raise ValueError("Iterable over raw text documents expected, string object received.")
        if self.analyzer == "char_wb":
            return self._weight(*self._char_counts(raw_documents))
        return self._weight(self._word_counts(raw_documents))

    def _has_fast_path(self) -> bool:
        # Only the settings the fast path reproduces exactly; anything else is scikit-learn's.
        plain = (
            self.preprocessor is None
            and not self.lowercase
            and self.strip_accents is None
            and self.stop_words is None
            and not self.binary
            and self.norm in ("l2", None)
        )
        if self.analyzer == "char_wb":
            return plain
        return (
            plain
            and self.analyzer == "word"
            and self.tokenizer is None
            and (self.token_pattern == r"\S+")
        )

    def _word_counts(self, documents: Iterable[str]):
        """Counts of word n-grams; with ``token_pattern=r"\\S+"`` a token is a split() item."""
        vocabulary = self.vocabulary_
        min_n, max_n = self.ngram_range
        indices: list[int] = []
        indptr = [0]
        for document in documents:
            tokens = document.split()
            grams = tokens if min_n == 1 else []
            for n in range(max(min_n, 2), min(max_n, len(tokens)) + 1):
                grams = grams + [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
            indices.extend(vocabulary[g] for g in grams if g in vocabulary)
            indptr.append(len(indices))
        return sparse.csr_matrix(
            (np.ones(len(indices), dtype=self.dtype), indices, indptr),
            shape=(len(indptr) - 1, len(vocabulary)),
        )

    def _char_counts(self, documents: Iterable[str]):
        """Counts of character n-grams, each distinct word's n-grams looked up once and cached.

        Two ways to the same matrix: a few texts list their words' n-gram columns directly
        (no matrix product: what one-text latency needs); a batch multiplies a (texts x distinct
        words) count matrix by a (words x n-grams) one, so each n-gram list is copied once per
        distinct word instead of once per occurrence.

        Returns the counts and whether their entries are already summed (a product's are).
        """
        documents = list(documents)
        words: dict[str, int] = {}
        indices: list[int] = []
        indptr = [0]
        for document in documents:
            indices.extend(words.setdefault(word, len(words)) for word in document.split())
            indptr.append(len(indices))
        columns = self._word_columns(list(words))
        if len(documents) <= SMALL_BATCH:
            by_word = [columns[i] for i in indices]
            starts = np.cumsum([0, *map(len, by_word)]).tolist()
            grams = list(itertools.chain.from_iterable(by_word))
            counts = sparse.csr_matrix(
                (np.ones(len(grams), dtype=self.dtype), grams, [starts[i] for i in indptr]),
                shape=(len(documents), len(self.vocabulary_)),
            )
            return counts, False
        occurrences = sparse.csr_matrix(
            (np.ones(len(indices), dtype=self.dtype), indices, indptr),
            shape=(len(documents), len(words)),
        )
        lengths = [len(ids) for ids in columns]
        by_word = sparse.csr_matrix(
            (
                np.ones(sum(lengths), dtype=self.dtype),
                np.fromiter(itertools.chain.from_iterable(columns), np.int64, sum(lengths)),
                np.cumsum([0, *lengths]),
            ),
            shape=(len(words), len(self.vocabulary_)),
        )
        return occurrences @ by_word, True  # a product has no duplicate entries

    def _word_columns(self, words: list[str]) -> list[list[int]]:
        """Vocabulary columns of each word's n-grams (a gram twice in a word is listed twice)."""
        cache = self.__dict__.setdefault("_word_rows", {})
        if len(cache) + len(words) > WORD_CACHE_SIZE:
            cache.clear()
        min_n, max_n = self.ngram_range
        vocabulary = self.vocabulary_
        columns = []
        for word in words:
            ids = cache.get(word)
            if ids is None:
                grams = char_wb_ngrams(word, min_n, max_n)
                ids = cache[word] = [vocabulary[g] for g in grams if g in vocabulary]
            columns.append(ids)
        return columns

    def _weight(self, counts, summed: bool = False):
        """Sublinear tf, idf and l2 norm, as ``TfidfTransformer.transform`` applies them.

        Written out because the transformer's input validation costs ~1 ms per call, which was
        half the latency of classifying one text.
        """
        if not summed:  # add up repeated (row, column) entries; sorting them is not needed
            counts.sum_duplicates()
        data = counts.data
        tfidf = self._tfidf
        if tfidf.sublinear_tf:
            np.log(data, out=data)
            data += 1
        if tfidf.use_idf:
            data *= tfidf.idf_[counts.indices]
        if tfidf.norm == "l2":
            rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
            norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=counts.shape[0]))
            data /= norms[rows].astype(data.dtype)
        return counts

    # skops writes a dict as one JSON node per entry: a 26,000-term vocabulary became 20 MB of
    # schema and two seconds of loading. Saved as a newline-joined string (terms sorted by column
    # index; features never contain a newline) it is a few hundred kB and loads in milliseconds.
    def __getstate__(self):
        # A copy: on Python >= 3.11 object.__getstate__ may return the live __dict__.
        state = dict(super().__getstate__())
        state.pop("_word_rows", None)  # a cache, rebuilt on use
        vocabulary = state.pop("vocabulary_", None)
        if vocabulary is not None:
            terms = sorted(vocabulary, key=vocabulary.__getitem__)
            state["vocabulary_terms_"] = "\n".join(terms)
        return state

    def __setstate__(self, state):
        state = dict(state)
        terms = state.pop("vocabulary_terms_", None)
        if terms is not None:
            state["vocabulary_"] = {term: i for i, term in enumerate(terms.split("\n"))}
        super().__setstate__(state)
