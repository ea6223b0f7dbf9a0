"""TF-IDF features of preprocessed texts for training: scikit-learn's vectorizer, fast transform.

:class:`TfidfFeatures` is scikit-learn's :class:`~sklearn.feature_extraction.text.TfidfVectorizer`
with two changes that leave every number the same:

* its vocabulary is saved as one string (small, fast-loading model files);
* ``transform`` hands the fitted vocabulary and idf to :class:`~classifier.vectorize.NgramTfidf`,
  the transform that inference runs without scikit-learn, so training, the estimators and the
  compiled model all see one implementation.

:func:`as_ngram_tfidf` tells whether a fitted feature step can be compiled to those arrays.
"""

from __future__ import annotations

from collections.abc import Iterable

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion
from sklearn.utils.validation import check_is_fitted

from classifier.vectorize import NgramTfidf, char_wb_ngrams

__all__ = ["TfidfFeatures", "as_ngram_tfidf", "char_wb_ngrams"]


class TfidfFeatures(TfidfVectorizer):
    """A :class:`TfidfVectorizer` with a compact saved vocabulary and a fast ``transform``.

    Takes the same parameters and gives the same matrices as ``TfidfVectorizer``.

    Examples
    --------
    >>> from classifier.features import TfidfFeatures
    >>> features = TfidfFeatures(analyzer="char_wb", ngram_range=(3, 4)).fit(["felt heard"])
    >>> features.transform(["heard"]).shape
    (1, 16)
    """

    def transform(self, raw_documents: Iterable[str]):
        """TF-IDF matrix of the documents: the numbers of ``TfidfVectorizer.transform``."""
        if not self._has_fast_path():
            return super().transform(raw_documents)
        return self.to_ngram_tfidf().transform(raw_documents)

    def to_ngram_tfidf(self) -> NgramTfidf:
        """The fitted transform as a :class:`NgramTfidf` (built once, then reused)."""
        check_is_fitted(self, "vocabulary_")
        if not self._has_fast_path():
            raise ValueError("these settings have no scikit-learn-free transform")
        fast = self.__dict__.get("_ngram_tfidf")
        if fast is None:
            terms = sorted(self.vocabulary_, key=self.vocabulary_.__getitem__)
            fast = self._ngram_tfidf = NgramTfidf(
                "char_wb" if self.analyzer == "char_wb" else "word",
                self.ngram_range,
                terms,
                self.idf_,
                sublinear_tf=self.sublinear_tf,
                dtype=self.dtype,
            )
        return fast

    def _has_fast_path(self) -> bool:
        # Only the settings NgramTfidf reproduces exactly; anything else is scikit-learn's.
        plain = (
            self.input == "content"  # "filename"/"file" would read the documents from disk
            and self.preprocessor is None
            and not self.lowercase
            and self.strip_accents is None
            and self.stop_words is None
            and not self.binary
            and self.use_idf
            and self.norm == "l2"
        )
        if self.analyzer == "char_wb":
            return plain
        return (
            plain
            and self.analyzer == "word"
            and self.tokenizer is None
            and (self.token_pattern == r"\S+")
        )

    # skops writes a dict as one JSON node per entry: a 26,000-term vocabulary became 20 MB of
    # schema and two seconds of loading. Saved as a newline-joined string (terms sorted by column
    # index; features never contain a newline) it is a few hundred kB and loads in milliseconds.
    def __getstate__(self):
        # A copy: on Python >= 3.11 object.__getstate__ may return the live __dict__.
        state = dict(super().__getstate__())
        state.pop("_ngram_tfidf", None)  # rebuilt on use
        state.pop("_word_rows", None)  # a cache of older versions
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


def as_ngram_tfidf(vectorizer: object) -> list[NgramTfidf] | None:
    """A fitted feature step as :class:`NgramTfidf` blocks, or None if it is anything else.

    Only a :class:`TfidfFeatures`, or an unweighted :class:`~sklearn.pipeline.FeatureUnion` of
    them, with settings that ``NgramTfidf`` reproduces exactly, is converted: those numbers are
    the step's own. Exact types only, since a subclass may transform differently.

    Examples
    --------
    >>> from sklearn.feature_extraction.text import CountVectorizer
    >>> words = TfidfFeatures(token_pattern=r"\\S+", lowercase=False).fit(["felt heard"])
    >>> [part.n_features for part in as_ngram_tfidf(words)]
    [2]
    >>> as_ngram_tfidf(CountVectorizer().fit(["felt heard"])) is None
    True
    """
    if type(vectorizer) is FeatureUnion:
        if vectorizer.transformer_weights:
            return None
        parts = [part for _, part in vectorizer.transformer_list]
    else:
        parts = [vectorizer]
    if not parts or not all(
        type(part) is TfidfFeatures and part._has_fast_path() for part in parts
    ):
        return None
    return [part.to_ngram_tfidf() for part in parts]
