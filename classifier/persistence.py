"""Saving and loading models safely.

Two files per trained model, both safe to load from anywhere:

* ``theme-classifier.npz``: the :class:`~classifier.inference.CompiledModel`, arrays and JSON read
  with ``allow_pickle=False``. Tagging and ``classify()`` use it; loading it imports neither
  scikit-learn nor skops.
* ``theme-classifier.skops``: the fitted scikit-learn estimators, for researchers. It is loaded
  only if every type it contains is on :data:`ALLOWED_TYPES` (our own three classes) or is one
  that skops trusts by default (the scikit-learn estimators inside them). Anything else (a crafted
  file carrying ``os.system``, say) is refused before a single object is created.

Bare pickle or joblib files are never loaded.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from pathlib import Path

from classifier._errors import ClassifierError, model_not_found
from classifier._files import atomic_path
from classifier._versions import VERSIONED_LIBRARIES, library_versions

MODEL_STEM = "theme-classifier"
COMPILED_SUFFIX = ".npz"
ESTIMATOR_SUFFIX = ".skops"
MODEL_FILE = MODEL_STEM + COMPILED_SUFFIX  # what tagging loads
ESTIMATOR_FILE = MODEL_STEM + ESTIMATOR_SUFFIX  # the fitted estimators, for researchers
CARD_JSON = "model-card.json"
CARD_MARKDOWN = "MODEL_CARD.md"


def _packaged_models_dir() -> Path:
    # The top-level models/ folder is installed as the package data of `classifier.models`
    # (see pyproject.toml), so wheels and plain installs carry the shipped model too.
    try:
        from importlib.resources import files

        return Path(str(files("classifier.models")))
    except ModuleNotFoundError:  # a source tree on sys.path without installing
        return Path(__file__).resolve().parent.parent / "models"


DEFAULT_MODEL_PATH = _packaged_models_dir() / MODEL_FILE

# Types skops does not trust by default but our model legitimately contains. Keep this list
# explicit and short: a new entry is a security decision and belongs in code review.
ALLOWED_TYPES = frozenset(
    {
        "classifier.model.ThemeClassifier",
        "classifier.features.TfidfFeatures",
        "classifier.preprocessing.SpacyPreprocessor",
    }
)


class ModelVersionWarning(UserWarning):
    """The model was trained under other library versions than the ones installed."""


def default_model_path() -> Path:
    """The model ``classify()`` uses: ``$CLASSIFIER_MODEL`` or the shipped ``models/`` file."""
    return Path(os.environ.get("CLASSIFIER_MODEL") or DEFAULT_MODEL_PATH)


def save_model(model, path: str | Path) -> Path:
    """Write a fitted model to ``path``, atomically (temp file, then rename).

    A ``.npz`` path gets the compiled model (what tagging loads); any other path the fitted
    estimators, with skops. ``model`` is a fitted ThemeClassifier (or, for ``.npz``, a
    CompiledModel).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == COMPILED_SUFFIX:
        compiled = model.compile() if hasattr(model, "compile") else model
        return compiled.save(path)
    import skops.io as sio

    with atomic_path(path) as temporary:
        sio.dump(model, temporary)
    return path


def load_model(path: str | Path | None = None):
    """Load a model safely: a compiled ``.npz`` file, or estimators from a ``.skops`` file.

    Parameters
    ----------
    path : str or Path, optional
        The model file; the default (shipped) compiled model when None.

    Returns
    -------
    CompiledModel or ThemeClassifier
        Both classify, score batches and predict the same way.

    Raises
    ------
    ClassifierError
        If the file is missing, unreadable, inconsistent, or (skops) contains a type outside the
        allow-list.

    Examples
    --------
    >>> from classifier import load_model
    >>> model = load_model()                                          # doctest: +SKIP
    >>> model.classify("She never once cancelled.").labels            # doctest: +SKIP
    {'boundaries': 'positive'}
    """
    resolved = Path(path) if path is not None else default_model_path()
    key = (str(resolved.resolve()), resolved.stat().st_mtime_ns if resolved.exists() else 0)
    if resolved.suffix == COMPILED_SUFFIX:
        return _load_compiled_cached(*key)
    return _load_cached(*key)


@lru_cache(maxsize=4)
def _load_compiled_cached(path: str, mtime_ns: int):
    from classifier.inference import CompiledModel

    return CompiledModel.load(path)


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int):
    # mtime is part of the cache key so that a retrained file is picked up in a long session.
    import skops.io as sio

    from classifier.model import ThemeClassifier

    if not Path(path).is_file():
        raise model_not_found(path)
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
        try:
            model = sio.load(path, trusted=list(untrusted))
        except Exception as exc:
            # A crafted file can pass the type check and still fail while skops rebuilds it
            # (e.g. a node naming a function with the wrong arguments): refuse it in one line.
            raise ClassifierError(
                f"{path}: not a loadable skops model file ({type(exc).__name__})"
            ) from None
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
