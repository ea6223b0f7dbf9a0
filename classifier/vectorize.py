"""TF-IDF of preprocessed texts with fitted vocabularies, without scikit-learn.

:class:`NgramTfidf` applies a fitted vocabulary and idf weights the way scikit-learn's
``TfidfVectorizer.transform`` does (``analyzer="word"`` with whitespace tokens, or ``"char_wb"``;
sublinear tf; l2 norm) and gives the same matrix. It is what inference runs: scoring needs only
these arrays, so tagging and ``classify()`` never import scikit-learn (over a second of start-up
per process). Training fits a :class:`~classifier.features.TfidfFeatures` and hands its fitted
state to this class.

Feedback reuses a small vocabulary, so with ``char_wb`` each distinct *word*'s n-gram columns are
worked out once and cached, and a text's counts are the concatenation of its words' columns.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import sparse

# Up to this many texts per call, character n-gram counts are built without a matrix product.
SMALL_BATCH = 16
# Distinct words whose n-gram rows are kept between calls; the cache is emptied when it would
# grow past this, so a stream of typos cannot grow memory without bound.
WORD_CACHE_SIZE = 200_000
ANALYZERS = ("word", "char_wb")


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


class NgramTfidf:
    """A fitted TF-IDF transform of word or ``char_wb`` n-grams.

    Parameters
    ----------
    analyzer : {"word", "char_wb"}
        Word n-grams of whitespace-separated tokens, or character n-grams within words.
    ngram_range : tuple of int
        Smallest and largest n.
    terms : sequence of str
        The vocabulary, in column order.
    idf : numpy.ndarray
        Inverse document frequency per column.
    sublinear_tf : bool, default=True
        Use 1 + log(tf).
    dtype : numpy dtype, default=numpy.float32

    Examples
    --------
    >>> import numpy as np
    >>> tfidf = NgramTfidf("word", (1, 1), ["heard", "felt"], np.ones(2))
    >>> tfidf.transform(["felt heard"]).toarray().round(3).tolist()
    [[0.707, 0.707]]
    """

    def __init__(
        self,
        analyzer: str,
        ngram_range: tuple[int, int],
        terms: Sequence[str],
        idf: np.ndarray,
        sublinear_tf: bool = True,
        dtype=np.float32,
    ):
        if analyzer not in ANALYZERS:
            raise ValueError(f"analyzer must be one of {ANALYZERS}, not {analyzer!r}")
        if len(terms) != len(idf):
            raise ValueError(f"{len(terms)} terms but {len(idf)} idf weights")
        self.analyzer = analyzer
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        self.terms = list(terms)
        self.idf = np.asarray(idf, dtype=dtype)
        self.sublinear_tf = sublinear_tf
        self.dtype = dtype
        self.vocabulary = {term: i for i, term in enumerate(self.terms)}
        self._word_rows: dict[str, list[int]] = {}

    @property
    def n_features(self) -> int:
        return len(self.terms)

    def transform(self, documents: Iterable[str]) -> sparse.csr_matrix:
        """TF-IDF matrix (texts x terms), l2-normalised rows."""
        if isinstance(documents, str):
            raise ValueError("Iterable over raw text documents expected, string object received.")
        if self.analyzer == "char_wb":
            return self._weight(*self._char_counts(documents))
        return self._weight(self._word_counts(documents))

    def _word_counts(self, documents: Iterable[str]):
        """Counts of word n-grams; a token is a ``str.split()`` item."""
        vocabulary = self.vocabulary
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
        n_terms = len(self.vocabulary)
        if len(documents) <= SMALL_BATCH:
            by_word = [columns[i] for i in indices]
            starts = np.cumsum([0, *map(len, by_word)]).tolist()
            grams = list(itertools.chain.from_iterable(by_word))
            counts = sparse.csr_matrix(
                (np.ones(len(grams), dtype=self.dtype), grams, [starts[i] for i in indptr]),
                shape=(len(documents), n_terms),
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
            shape=(len(words), n_terms),
        )
        return occurrences @ by_word, True  # a product has no duplicate entries

    def _word_columns(self, words: list[str]) -> list[list[int]]:
        """Vocabulary columns of each word's n-grams (a gram twice in a word is listed twice)."""
        cache = self._word_rows
        if len(cache) + len(words) > WORD_CACHE_SIZE:
            cache.clear()
        min_n, max_n = self.ngram_range
        vocabulary = self.vocabulary
        columns = []
        for word in words:
            ids = cache.get(word)
            if ids is None:
                grams = char_wb_ngrams(word, min_n, max_n)
                ids = cache[word] = [vocabulary[g] for g in grams if g in vocabulary]
            columns.append(ids)
        return columns

    def _weight(self, counts, summed: bool = False):
        """Sublinear tf, idf and l2 norm, as scikit-learn's ``TfidfTransformer`` applies them."""
        if not summed:  # add up repeated (row, column) entries; sorting them is not needed
            counts.sum_duplicates()
        data = counts.data
        if self.sublinear_tf:
            np.log(data, out=data)
            data += 1
        data *= self.idf[counts.indices]
        rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=counts.shape[0]))
        norms[norms == 0] = 1.0
        data /= norms[rows].astype(data.dtype)
        return counts
