"""The codebook: which themes exist, what they mean, and which polarities they take.

Themes are never written in code. Everything (training, the CLI, the validator, the docs) reads a
codebook TOML file; the packaged ``codebook.toml`` is the default; researchers pass their own.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

from classifier._errors import ClassifierError

DEFAULT_CODEBOOK_PATH = Path(__file__).with_name("codebook.toml")

_REQUIRED_THEME_KEYS = ("id", "name", "definition")


@dataclass(frozen=True)
class Theme:
    """One theme of the codebook with its definition, indicators and worked examples."""

    id: str
    name: str
    definition: str
    strength: tuple[str, ...] = ()
    concern: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    examples_positive: tuple[str, ...] = ()
    examples_negative: tuple[str, ...] = ()


@dataclass(frozen=True)
class Codebook:
    """A set of themes, each tagged with one of ``polarities`` (positive first, negative second).

    ``polarity_names`` gives the words coders may write for each polarity in a spreadsheet
    (e.g. ``strength`` for ``positive``); ``general_rules`` are the coding rules that apply to
    every theme.
    """

    name: str
    version: str
    themes: tuple[Theme, ...]
    polarities: tuple[str, str] = ("positive", "negative")
    polarity_names: dict[str, str] = field(default_factory=dict)
    general_rules: tuple[str, ...] = ()
    path: str | None = None

    @property
    def theme_ids(self) -> tuple[str, ...]:
        return tuple(theme.id for theme in self.themes)


def load_codebook(path: str | Path | None = None) -> Codebook:
    """Read and check a codebook TOML file (the packaged one when ``path`` is None).

    Examples
    --------
    >>> from classifier.codebook import load_codebook
    >>> load_codebook().theme_ids[:2]
    ('genuineness', 'trust')
    """
    resolved = Path(path) if path is not None else DEFAULT_CODEBOOK_PATH
    return _load_codebook_cached(str(resolved.resolve()))


@lru_cache(maxsize=8)
def _load_codebook_cached(path: str) -> Codebook:
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise ClassifierError(f"{path}: codebook file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ClassifierError(f"{path}: not valid TOML ({exc})") from None

    themes_raw = raw.get("themes")
    if not isinstance(themes_raw, list) or not themes_raw:
        raise ClassifierError(f"{path}: the codebook needs at least one [[themes]] table")
    themes = []
    for position, entry in enumerate(themes_raw, start=1):
        missing = [key for key in _REQUIRED_THEME_KEYS if not entry.get(key)]
        if missing:
            raise ClassifierError(f"{path}: theme #{position} lacks {', '.join(missing)}")
        themes.append(
            Theme(
                id=str(entry["id"]),
                name=str(entry["name"]),
                definition=str(entry["definition"]),
                **{
                    key: tuple(str(item) for item in entry.get(key, ()))
                    for key in (
                        "strength",
                        "concern",
                        "include",
                        "exclude",
                        "examples_positive",
                        "examples_negative",
                    )
                },
            )
        )
    ids = [theme.id for theme in themes]
    duplicated = sorted({theme_id for theme_id in ids if ids.count(theme_id) > 1})
    if duplicated:
        raise ClassifierError(f"{path}: theme ids appear twice: {', '.join(duplicated)}")

    polarities = tuple(raw.get("polarities", ("positive", "negative")))
    if len(polarities) != 2 or len(set(polarities)) != 2:
        raise ClassifierError(f"{path}: 'polarities' must list exactly two distinct names")
    return Codebook(
        name=str(raw.get("name", Path(path).stem)),
        version=str(raw.get("version", "")),
        themes=tuple(themes),
        polarities=polarities,  # type: ignore[arg-type]
        polarity_names=dict(raw.get("polarity_names", {})),
        general_rules=tuple(raw.get("general_rules", ())),
        path=path,
    )
