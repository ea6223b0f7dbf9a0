"""Atomic file writes: a reader sees the old file or the whole new one, never half of either.

Every writer in the package (tagged output, model files, model cards, summaries, the corpus
rewritten by ``data split``) goes through here, so the rule lives in one place:

- the data goes to a temporary file beside the target (``.NAME.XXXX.partial``), moved into place
  only when complete; on any error, Ctrl-C or SIGTERM the temporary file is removed;
- every temporary file is also on a process-wide list, removed by :func:`remove_temporaries`
  (which the command line calls on every failure, and which runs at exit), so a signal that lands
  between two statements cannot leave one behind either;
- the moments where the file system changes (creating a temporary file and putting it on the
  list, moving it into place) run with SIGINT and SIGTERM held back (:func:`deferred_signals`),
  so a signal never splits them.
"""

from __future__ import annotations

import atexit
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from classifier._errors import ClassifierError
from classifier._errors import held_stop_signals as deferred_signals

# Temporary files made here and not yet moved into place or removed, each with the process that
# made it: a child forked meanwhile inherits the list but must not remove its parent's files.
_temporaries: dict[Path, int] = {}
# What this process finished writing, in order, for a truthful message after an interruption.
_written: list[str] = []
STDOUT_NAME = "standard output"  # how messages name standard output
# errno values that mean "the disk cannot take more": reported as one line naming the file.
DISK_FULL = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if code
)
# A hard link is refused by file systems that do not have them (FAT, exFAT, some network and
# FUSE file systems); then the no-replace move falls back to a check just before the rename.
_NO_HARD_LINKS = frozenset(
    code
    for code in (
        errno.EPERM, errno.EACCES, errno.EMLINK, errno.EXDEV, getattr(errno, "ENOTSUP", None),
        getattr(errno, "EOPNOTSUPP", None), getattr(errno, "ENOSYS", None),
    )
    if code
)  # fmt: skip


def _umask() -> int:
    # os.umask can only be read by setting it; put it straight back.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def reason(exc: OSError) -> str:
    """The operating system's words for an OSError, e.g. "No space left on device".

    Only the error number's standard text: the exception's own message may quote more.
    """
    code = exc.errno
    if code is None:  # pyarrow puts the number in its message only
        found = re.search(r"\[errno (\d+)\]", str(exc), re.IGNORECASE)
        code = int(found.group(1)) if found else None
    return os.strerror(code) if code else type(exc).__name__


def _folder_name(folder: Path) -> str:
    return f"the current folder ({Path.cwd()})" if str(folder) in ("", ".") else str(folder)


def check_folder(target: Path) -> None:
    """Refuse, in one line, a file target whose folder is missing or is not a folder."""
    folder = Path(target).parent
    if not folder.exists():
        raise ClassifierError(f"{target}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise ClassifierError(f"{target}: {folder} is a file, not a folder")


def temporary_beside(target: Path, suffix: str = ".partial") -> Path:
    """Create an empty temporary file in ``target``'s folder (so the rename stays atomic).

    Raises
    ------
    ClassifierError
        One line naming the folder, when it is missing, is a file, or cannot be written.
    """
    target = Path(target)
    folder = target.parent
    check_folder(target)
    with deferred_signals():
        try:
            handle, name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=suffix)
        except PermissionError:
            raise ClassifierError(
                f"{target}: cannot write in {_folder_name(folder)} (permission denied); "
                "choose another folder"
            ) from None
        except OSError as exc:
            raise ClassifierError(
                f"{target}: cannot create a file in {_folder_name(folder)} ({reason(exc)})"
            ) from None
        os.close(handle)
        temporary = Path(name)
        _temporaries[temporary] = os.getpid()
    return temporary


def discard(temporary: Path) -> None:
    """Remove a temporary file made by :func:`temporary_beside`; never raises an OSError."""
    with deferred_signals():
        try:
            Path(temporary).unlink(missing_ok=True)
        except OSError:  # e.g. the folder vanished: nothing left to clean
            pass
        _temporaries.pop(Path(temporary), None)


def remove_temporaries() -> None:
    """Remove every temporary file of this process not yet moved into place or removed."""
    for temporary, pid in list(_temporaries.items()):
        if pid == os.getpid():
            discard(temporary)


atexit.register(remove_temporaries)


def publish(temporary: Path, target: Path, replace: bool = True) -> None:
    """Move ``temporary`` into place at ``target``, with ordinary permissions.

    mkstemp creates files readable by their owner only; a model or an output file is meant to be
    shared like any other file the user writes, so give it the mode their umask asks for.

    Parameters
    ----------
    replace : bool, default True
        Replace an existing ``target``. If False, a ``target`` that exists now (another program
        may have created it since the run started) is kept and FileExistsError is raised: the
        check and the move are one atomic step (a hard link, which fails if the name is taken),
        except on file systems without hard links, where a check comes just before the rename.

    Raises
    ------
    FileExistsError
        ``replace`` is False and ``target`` exists; ``temporary`` is left for the caller.
    """
    temporary, target = Path(temporary), Path(target)
    os.chmod(temporary, 0o666 & ~_umask())
    with deferred_signals():
        if replace:
            os.replace(temporary, target)
        else:
            try:
                os.link(temporary, target)
            except FileExistsError:
                raise
            except OSError as exc:
                if exc.errno not in _NO_HARD_LINKS:
                    raise
                if target.exists() or target.is_symlink():
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST)) from None
                os.replace(temporary, target)
            else:
                temporary.unlink()
        _temporaries.pop(temporary, None)
        note_written(str(target))


def note_written(name: str) -> None:
    """Record that ``name`` (a file, or :data:`STDOUT_NAME`) was written in full."""
    _written.append(name)


def written_mark() -> int:
    """A bookmark for :func:`describe_stop`: how much was written so far."""
    return len(_written)


def describe_stop(label: str, since: int) -> str:
    """The one-line message after a stop by signal: what was finished before it, if anything.

    Parameters
    ----------
    label : str
        How the run stopped, e.g. "Interrupted".
    since : int
        A :func:`written_mark` taken when the command started.
    """
    done = [name for name in _written[since:] if name == STDOUT_NAME or Path(name).exists()]
    if not done:
        return f"{label}; no output was written."
    shown = ", ".join(done[:3]) + (f" and {len(done) - 3} more" if len(done) > 3 else "")
    return f"{label}; {shown} had been written in full before it; nothing else was written."


@contextmanager
def atomic_path(target: str | Path, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target``, on error it vanishes.

    A full disk while writing is reported as one line naming ``target``.

    Examples
    --------
    >>> with atomic_path("card.json") as path:  # doctest: +SKIP
    ...     path.write_text("{}")
    """
    target = Path(target)
    temporary = temporary_beside(target)
    try:
        yield temporary
        publish(temporary, target, replace=replace)
    except OSError as exc:
        discard(temporary)
        if exc.errno in DISK_FULL:
            raise ClassifierError(f"{target}: cannot write ({reason(exc)})") from None
        raise
    except BaseException:
        discard(temporary)
        raise


def write_text_atomically(target: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(target)
