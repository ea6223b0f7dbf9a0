"""What the classifier returns for one text."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np

# Why a text could not be tagged; "ok" means it was analysed (it may still carry no theme).
STATUS_OK = "ok"
# Analysed and tagged, but on its first ``max_chars`` characters only (MAX_CHARS by default).
STATUS_TRUNCATED = "truncated"
MAX_CHARS = 100_000  # the default analysed length (SpacyPreprocessor's max_chars)
ANALYSED = (STATUS_OK, STATUS_TRUNCATED)
STATUS_EMPTY = "empty"  # empty or whitespace-only string
STATUS_NOT_TEXT = "not_text"  # missing value, number or other non-string


@dataclass(frozen=True)
class ThemeResult:
    """One detected theme.

    ``score`` is the calibrated probability that the theme is present; ``polarity_score`` the
    probability of the reported polarity given that it is present. ``evidence`` is the sentence
    (or sentences, joined by " … ") of the text that carry the theme, empty when not requested.
    """

    theme: str
    polarity: str
    score: float
    polarity_score: float
    evidence: str = ""


_RESULT_FIELDS = tuple(f.name for f in fields(ThemeResult))


@dataclass(frozen=True)
class Prediction:
    """Themes, polarities, calibrated scores and evidence for one text."""

    themes: list[ThemeResult] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    status: str = STATUS_OK

    @property
    def labels(self) -> dict[str, str]:
        """Detected themes only: ``{theme: polarity}``, in codebook order."""
        return {result.theme: result.polarity for result in self.themes}

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (the shape of the CLI's JSON Lines output)."""
        return {
            "labels": self.labels,
            # What dataclasses.asdict gives (the fields hold str and float), without its
            # recursive copying: the JSON Lines output builds one of these per detected theme.
            "themes": [
                {name: getattr(result, name) for name in _RESULT_FIELDS} for result in self.themes
            ],
            "scores": dict(self.scores),
            "status": self.status,
        }


@dataclass(frozen=True)
class BatchScores:
    """The classification of a batch of texts as arrays, before any per-text objects are built.

    The batch CLI writes its columns straight from these arrays (building a
    :class:`Prediction` per row cost ~15% of tagging a file); :meth:`predictions` gives the
    objects the library returns. Texts that could not be analysed have ``row == -1``;
    identical texts share one analysed row.

    Attributes
    ----------
    themes, polarities : tuple of str
        Theme ids (the columns of the arrays) and the (positive, negative) polarity names.
    status : list of str
        One per text: ``ok``, ``empty`` or ``not_text``.
    row : numpy.ndarray of int, shape (n_texts,)
        The analysed row of each text, or -1.
    presence : numpy.ndarray, shape (n_analysed, n_themes)
        Calibrated probability that each theme is present.
    positive : numpy.ndarray, shape (n_analysed, n_themes)
        Probability of the positive polarity, given the theme is present.
    detected : numpy.ndarray of bool, shape (n_analysed, n_themes)
        Presence at or above the theme's threshold.
    evidence : dict of (analysed row, theme column) to str
        Evidence of detected themes; empty unless asked for.
    """

    themes: tuple[str, ...]
    polarities: tuple[str, ...]
    status: list[str]
    row: np.ndarray
    presence: np.ndarray
    positive: np.ndarray
    detected: np.ndarray
    evidence: dict[tuple[int, int], str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.status)

    def per_text(self, values: np.ndarray, fill: object = np.nan) -> np.ndarray:
        """Expand an (analysed rows x themes) array to one row per text; ``fill`` elsewhere.

        >>> batch.per_text(batch.presence)  # doctest: +SKIP
        array of shape (n_texts, n_themes), NaN for empty or non-text rows
        """
        out = np.full((len(self), len(self.themes)), fill, dtype=values.dtype)
        analysed = self.row >= 0
        out[analysed] = values[self.row[analysed]]
        return out

    def is_positive(self) -> np.ndarray:
        """Whether each (analysed row, theme) would be reported as a strength."""
        return self.positive >= 0.5

    def labels_per_text(self) -> tuple[np.ndarray, np.ndarray]:
        """Per text and theme: (detected, reported as a strength); False where not analysed."""
        return self.per_text(self.detected, False), self.per_text(self.is_positive(), False)

    def predictions(self) -> list[Prediction]:
        """One :class:`Prediction` per text, in order (identical texts share one object)."""
        pos_name, neg_name = self.polarities
        # Plain Python values, converted once, rather than numpy scalars per cell.
        presence_rows, positive_rows = self.presence.tolist(), self.positive.tolist()
        detected_cols: list[list[int]] = [[] for _ in presence_rows]
        for row, col in zip(*(index.tolist() for index in np.nonzero(self.detected)), strict=True):
            detected_cols[row].append(col)
        analysed = []
        for row, cols in enumerate(detected_cols):
            results = []
            for col in cols:
                p_pos = positive_rows[row][col]
                is_pos = p_pos >= 0.5
                results.append(
                    ThemeResult(
                        theme=self.themes[col],
                        polarity=pos_name if is_pos else neg_name,
                        score=presence_rows[row][col],
                        polarity_score=p_pos if is_pos else 1.0 - p_pos,
                        evidence=self.evidence.get((row, col), ""),
                    )
                )
            scores = dict(zip(self.themes, presence_rows[row], strict=True))
            analysed.append(Prediction(themes=results, scores=scores, status=STATUS_OK))
        return [
            Prediction(status=status)
            if row < 0
            else analysed[row]
            if status == STATUS_OK
            else replace(analysed[row], status=status)  # e.g. truncated
            for row, status in zip(self.row.tolist(), self.status, strict=True)
        ]


def round_scores(values: np.ndarray, ndigits: int = 3) -> np.ndarray:
    """Python's ``round(value, ndigits)`` of each value, bit for bit, without a call per value.

    ``rint(value * 10**ndigits) / 10**ndigits`` is the same float whenever the scaled value is
    not within a hair of a tie: rounding to the nearest integer is then unambiguous despite the
    product's rounding error, and the division, like ``round``, gives the float nearest to the
    decimal. The few values near a tie (and NaN) go through ``round`` itself.

    >>> round_scores(np.array([0.12345, 0.0625, 0.9996])).tolist()
    [0.123, 0.062, 1.0]
    """
    scale = 10.0**ndigits
    scaled = values * scale
    nearest = np.rint(scaled)
    rounded = nearest / scale
    doubtful = ~(np.abs(np.abs(scaled - nearest) - 0.5) > 1e-6)  # (True for NaN)
    for i in np.flatnonzero(doubtful).tolist():
        rounded[i] = round(float(values[i]), ndigits)
    return rounded
