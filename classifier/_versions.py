"""Installed versions of the libraries that shape a model's numbers."""

from __future__ import annotations

# Libraries whose version changes can change a model's numbers.
VERSIONED_LIBRARIES = ("scikit-learn", "spacy", "numpy")


def library_versions() -> dict[str, str]:
    """Installed versions of this package and of the libraries that shape a model's numbers."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("therapy-themes-classifier", *VERSIONED_LIBRARIES, "skops"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions
