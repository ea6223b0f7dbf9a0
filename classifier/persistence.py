"""Saving and loading models safely with skops.

A model file is loaded only if every type it contains is on :data:`ALLOWED_TYPES`: our own two
classes and the handful of scikit-learn internals they are built from. Anything else (a crafted
file carrying ``os.system``, say) is refused before a single object is created. Bare pickle or
joblib files are never loaded.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from pathlib import Path

from classifier._errors import ClassifierError
from classifier._files import atomic_path

# The package root's sibling `models/` holds the shipped model (editable/source installs);
# CLASSIFIER_MODEL points elsewhere, e.g. in a container.
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "models" / "theme-classifier.skops"

# Types skops does not trust by default but our model legitimately contains. Keep this list
# explicit and short: a new entry is a security decision and belongs in code review.
ALLOWED_TYPES = frozenset(
    {
        "classifier.model.ThemeClassifier",
        "classifier.features.TfidfFeatures",
        "classifier.preprocessing.SpacyPreprocessor",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.isotonic.IsotonicRegression",
        "sklearn.metrics._classification.f1_score",
        "sklearn.metrics._scorer._CurveScorer",
        "sklearn.metrics._scorer._Scorer",
        "sklearn.model_selection._split.StratifiedKFold",
        "sklearn.utils._metadata_requests.MetadataRequest",
        "sklearn.utils._metadata_requests.MethodMetadataRequest",
    }
)

# Libraries whose version changes can change a model's numbers.
VERSIONED_LIBRARIES = ("scikit-learn", "spacy", "numpy")


class ModelVersionWarning(UserWarning):
    """The model was trained under other library versions than the ones installed."""


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape a model's numbers."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("therapy-themes-classifier", *VERSIONED_LIBRARIES, "skops"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def default_model_path() -> Path:
    """The model ``classify()`` uses: ``$CLASSIFIER_MODEL`` or the shipped ``models/`` file."""
    return Path(os.environ.get("CLASSIFIER_MODEL") or DEFAULT_MODEL_PATH)


def save_model(model, path: str | Path) -> Path:
    """Write a fitted model to ``path`` with skops, atomically (temp file, then rename)."""
    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        sio.dump(model, temporary)
    return path


def load_model(path: str | Path | None = None):
    """Load a :class:`~classifier.model.ThemeClassifier` from a skops file, safely.

    Parameters
    ----------
    path : str or Path, optional
        The model file; the default model when None.

    Raises
    ------
    ClassifierError
        If the file is missing, not a skops file, or contains a type outside the allow-list.

    Examples
    --------
    >>> from classifier import load_model
    >>> model = load_model("models/theme-classifier.skops")          # doctest: +SKIP
    >>> model.classify("She never once cancelled.").labels            # doctest: +SKIP
    {'boundaries': 'positive'}
    """
    resolved = Path(path) if path is not None else default_model_path()
    return _load_cached(
        str(resolved.resolve()), resolved.stat().st_mtime_ns if resolved.exists() else 0
    )


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int):
    # mtime is part of the cache key so that a retrained file is picked up in a long session.
    import skops.io as sio

    from classifier.model import ThemeClassifier

    if not Path(path).is_file():
        raise ClassifierError(
            f"{path}: model file not found (train one with `classifier train`, "
            "or pass --model / set CLASSIFIER_MODEL)"
        )
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises several types for a file that is not its format
        raise ClassifierError(
            f"{path}: not a readable skops model file ({type(exc).__name__})"
        ) from None
    refused = sorted(set(untrusted) - ALLOWED_TYPES)
    if refused:
        raise ClassifierError(
            f"{path}: refused to load: the file contains types outside the allow-list: "
            + ", ".join(refused)
        )
    with warnings.catch_warnings():
        # scikit-learn's own InconsistentVersionWarning is replaced by ours, which says what to do.
        warnings.filterwarnings("ignore", message=".*Trying to unpickle estimator.*")
        model = sio.load(path, trusted=list(untrusted))
    if not isinstance(model, ThemeClassifier):
        raise ClassifierError(f"{path}: holds a {type(model).__name__}, not a ThemeClassifier")
    _warn_on_version_mismatch(path, getattr(model, "versions_", {}))
    return model


def _warn_on_version_mismatch(path: str, trained_with: dict[str, str]) -> None:
    installed = library_versions()
    differing = [
        f"{name} {trained_with.get(name, '?')} (installed: {installed[name]})"
        for name in VERSIONED_LIBRARIES
        if trained_with.get(name) != installed[name]
    ]
    if differing:
        warnings.warn(
            f"{path} was trained with {', '.join(differing)}; its scores may differ. "
            "Retrain with `classifier train` to match the installed libraries.",
            ModelVersionWarning,
            stacklevel=3,
        )
