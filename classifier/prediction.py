"""What the classifier returns for one text."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Why a text could not be tagged; "ok" means it was analysed (it may still carry no theme).
STATUS_OK = "ok"
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
            "themes": [asdict(result) for result in self.themes],
            "scores": dict(self.scores),
            "status": self.status,
        }
