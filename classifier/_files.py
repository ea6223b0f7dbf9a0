"""Atomic file writes: a reader sees the old file or the whole new one, never half of either.

Every writer in the package (tagged output, model files, model cards, summaries, the corpus
rewritten by ``data split``) goes through here, so the rule lives in one place.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from classifier._errors import ClassifierError


def _umask() -> int:
    # os.umask can only be read by setting it; put it straight back.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_beside(target: Path, suffix: str = ".partial") -> Path:
    """Create an empty temporary file in ``target``'s folder (so the rename stays atomic)."""
    if not target.parent.exists():
        raise ClassifierError(f"{target}: the folder {target.parent} does not exist")
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(handle)
    return Path(name)


def move_into_place(temporary: Path, target: Path) -> None:
    """Rename ``temporary`` over ``target`` with ordinary permissions.

    mkstemp creates files readable by their owner only; a model or an output file is meant to be
    shared like any other file the user writes, so give it the mode their umask asks for.
    """
    os.chmod(temporary, 0o666 & ~_umask())
    os.replace(temporary, target)


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target``, on error it vanishes.

    Examples
    --------
    >>> with atomic_path("card.json") as path:  # doctest: +SKIP
    ...     path.write_text("{}")
    """
    target = Path(target)
    temporary = temporary_beside(target)
    try:
        yield temporary
        move_into_place(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomically(target: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(target)
