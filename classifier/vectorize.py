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

from classifier.preprocessing import FEATURE_LOCK, _Column

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

    def transform_ids(self, features) -> sparse.csr_matrix:
        """The matrix of :meth:`transform` for ``features.strings()``, from feature ids.

        ``features`` is a :class:`~classifier.preprocessing.FeatureIds`. What each id means
        here (its vocabulary column, its character n-grams' columns) is worked out once per
        process and kept in arrays, so a batch costs a few numpy gathers and one sparse product
        instead of a dict lookup per token. The entries come out in the same order as
        :meth:`transform`'s, so the floating-point sums, and the scores, are identical.
        """
        word_ngrams_too_long = self.analyzer == "word" and self.ngram_range[1] > 2
        with FEATURE_LOCK:
            if word_ngrams_too_long or not features.splittable or not features.current:
                return self.transform(features.strings())
            state = self._id_state(features)
            if self.analyzer == "char_wb":
                counts = self._char_counts_ids(features, state)
            else:
                counts = self._word_counts_ids(features, state)
        return self._weight(counts, summed=True)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_ids", None)  # a per-process cache over a per-process table: not worth copying
        return state

    def _id_state(self, features) -> dict:
        """What this vectoriser keeps per feature id of ``features.table``, up to date."""
        table = features.table
        state = getattr(self, "_ids", None)
        if state is None or state["epoch"] is not table.epoch:
            state = self._ids = {"epoch": table.epoch, "size": 0}
            if self.analyzer == "word":
                state["unigram"] = _Column(np.int32)  # column of each feature, or -1
                state["bigrams"] = self._bigram_keys(table)
            else:
                state["row"] = _Column(np.int32)  # row of each feature in "grams", or -1
                state["gram_ptr"] = _Column(np.int64, [0])  # n-gram columns of each row ...
                state["grams"] = _Column(np.int32)  # ... in gram order, concatenated
                state["ones"] = np.ones(0, dtype=self.dtype)
        new = table.strings[state["size"] :]
        if new:
            if self.analyzer == "word":
                vocabulary = self.vocabulary
                state["unigram"].extend([vocabulary.get(word, -1) for word in new])
            else:  # n-grams are worked out when a feature first turns up in a text
                state["row"].extend(np.full(len(new), -1))
            state["size"] = len(table.strings)
        return state

    def _bigram_keys(self, table) -> tuple[np.ndarray, np.ndarray]:
        """The vocabulary's two-word terms as sorted keys ``id(first) << 32 | id(second)``.

        Both words are given ids in ``table`` now, so a pair of ids in a text is in the
        vocabulary exactly when its key is here: no string is built per pair.
        """
        keys, columns = [], []
        for term, column in self.vocabulary.items():
            words = term.split(" ")
            if len(words) == 2 and all(word.split() == [word] for word in words):
                keys.append(table.id(words[0]) << 32 | table.id(words[1]))
                columns.append(column)
        keys_array = np.array(keys, dtype=np.int64)
        order = np.argsort(keys_array)
        return keys_array[order], np.array(columns, dtype=np.int64)[order]

    def _word_counts_ids(self, features, state):
        """Counts of unigrams and bigrams, summed and sorted like ``sum_duplicates`` leaves them."""
        ids, indptr = features.ids, features.indptr
        n_docs = len(indptr) - 1
        doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), np.diff(indptr))
        min_n, max_n = self.ngram_range
        rows, columns = [], []
        if min_n <= 1 <= max_n:
            unigram = state["unigram"].array[ids]
            found = unigram >= 0
            rows.append(doc_of[found])
            columns.append(unigram[found])
        known, known_columns = state["bigrams"]
        if min_n <= 2 <= max_n and len(ids) > 1 and len(known):
            pairs = doc_of[1:] == doc_of[:-1]
            keys = (ids[:-1][pairs].astype(np.int64) << 32) | ids[1:][pairs].astype(np.int64)
            where = np.minimum(np.searchsorted(known, keys), len(known) - 1)
            found = known[where] == keys
            rows.append(doc_of[1:][pairs][found])
            columns.append(known_columns[where[found]])
        rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        columns = np.concatenate(columns) if columns else np.zeros(0, np.int64)
        counts = sparse.csr_matrix(
            (np.ones(len(rows), dtype=self.dtype), (rows, columns)),
            shape=(n_docs, len(self.vocabulary)),
        )
        counts.sum_duplicates()  # (a COO conversion already sums; this sorts if it did not)
        return counts

    def _char_counts_ids(self, features, state):
        """``_char_counts``'s product, with one ``by_word`` row per feature seen in this process.

        The product lists each text's n-gram columns in the order it meets them (its tokens in
        order, each token's n-grams in order), as ``_char_counts`` does, whatever the rows are.
        """
        ids, indptr = features.ids, features.indptr
        row_of = state["row"].array
        rows = row_of[ids]
        unseen = rows < 0
        if unseen.any():
            new = np.unique(ids[unseen])
            min_n, max_n = self.ngram_range
            vocabulary, words = self.vocabulary, features.words
            columns = [
                [vocabulary[g] for g in char_wb_ngrams(words[i], min_n, max_n) if g in vocabulary]
                for i in new.tolist()
            ]
            row_of[new] = np.arange(len(new)) + state["gram_ptr"].size - 1
            state["grams"].extend(list(itertools.chain.from_iterable(columns)))
            ends = state["gram_ptr"].array[-1] + np.cumsum([len(c) for c in columns])
            state["gram_ptr"].extend(ends)
            if len(state["ones"]) < state["grams"].size:
                state["ones"] = np.ones(2 * state["grams"].size, dtype=self.dtype)
            rows = row_of[ids]
        n_docs, n_rows, n_grams = len(indptr) - 1, state["gram_ptr"].size - 1, state["grams"].size
        occurrences = sparse.csr_matrix(
            (np.ones(len(ids), dtype=self.dtype), rows, indptr), shape=(n_docs, n_rows)
        )
        by_word = sparse.csr_matrix(
            (state["ones"][:n_grams], state["grams"].array, state["gram_ptr"].array),
            shape=(n_rows, len(self.vocabulary)),
        )
        counts = occurrences @ by_word
        if n_docs <= SMALL_BATCH:  # _char_counts lists these directly: summed and sorted
            counts.sort_indices()
        return counts

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
