"""Tag client feedback about therapy with therapeutic-relationship themes.

>>> from classifier import classify
>>> p = classify("I never felt judged, but honestly we aren't getting anywhere.")  # doctest: +SKIP
>>> p.labels                                                                      # doctest: +SKIP
{'trust': 'positive', 'progress': 'negative'}

Heavy modules (spaCy, scikit-learn) are imported on first use, so ``import classifier`` and the
CLI's ``--help`` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

try:
    __version__ = version("therapy-themes-classifier")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "THEMES",
    "BatchScores",
    "ClassifierError",
    "Prediction",
    "ThemeClassifier",
    "ThemeResult",
    "classify",
    "classify_many",
    "load_codebook",
    "load_model",
    "save_model",
]

# name -> module that defines it; resolved lazily by __getattr__ below (PEP 562).
_LAZY = {
    "BatchScores": "classifier.prediction",
    "ClassifierError": "classifier._errors",
    "Prediction": "classifier.prediction",
    "ThemeResult": "classifier.prediction",
    "ThemeClassifier": "classifier.model",
    "load_codebook": "classifier.codebook",
    "load_model": "classifier.persistence",
    "save_model": "classifier.persistence",
}

if TYPE_CHECKING:  # pragma: no cover
    from classifier._errors import ClassifierError
    from classifier.codebook import load_codebook
    from classifier.model import ThemeClassifier
    from classifier.persistence import load_model, save_model
    from classifier.prediction import BatchScores, Prediction, ThemeResult


def __getattr__(name: str):
    if name == "THEMES":
        from classifier.codebook import load_codebook

        return load_codebook().theme_ids
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'classifier' has no attribute {name!r}")


def classify(text: str, explain: bool = True) -> Prediction:
    """Classify one text with the default model (loaded once, then cached).

    Returns a :class:`Prediction` with ``labels``, ``themes`` (with evidence), ``scores``.
    """
    from classifier.persistence import load_model

    return load_model().classify(text, explain=explain)


def classify_many(texts, explain: bool = False, batch_size: int = 5000) -> list[Prediction]:
    """Classify many texts with the default model; same length and order as ``texts``."""
    from classifier.persistence import load_model

    return load_model().classify_many(texts, explain=explain, batch_size=batch_size)
