"""Errors the tool reports to users as one line, without a traceback and without feedback text."""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ClassifierError(Exception):
    """A problem with the user's input, files or settings; the message is safe to print.

    Messages name files, rows and columns, never the feedback text itself.
    """


def model_not_found(path: object) -> ClassifierError:
    """The one error for a missing model file, whichever kind of model was asked for."""
    return ClassifierError(
        f"{path}: model file not found (train one with `classifier train`, "
        "or pass --model / set CLASSIFIER_MODEL)"
    )


# ------------------------------------------------------------------------- stopping by signal
# Ctrl-C, `kill`, and the terminal closing (SIGHUP, where there is one): each stops a run cleanly.
STOP_SIGNALS = tuple(
    s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None
)
# The last stop signal that the handlers below turned into an exception.
_signal_seen: int | None = None
_holding = 0  # how many held_stop_signals blocks the main thread is in
_held_signal: int | None = None  # a signal that arrived during one


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or a termination signal, after its partial output was removed.

    A KeyboardInterrupt, so code that handles Ctrl-C handles it too. ``str(exc)`` says truthfully
    what was left behind and is safe to print; ``exit_code`` is what the shell reports for a
    process stopped by that signal: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP (128 + the
    signal number).
    """

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(BaseException):
    """Raised in the main thread by the SIGTERM/SIGHUP handler of :func:`handle_stop_signals`.

    A BaseException like KeyboardInterrupt, so ``except Exception`` does not swallow it and
    every ``finally`` and context manager on the way out runs its cleanup.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _stop_exception(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _on_stop_signal(signum: int, frame) -> None:
    global _signal_seen, _held_signal
    _signal_seen = signum
    if _holding:
        _held_signal = signum  # raised when the held block ends
        return
    raise _stop_exception(signum)


@contextmanager
def held_stop_signals() -> Iterator[None]:
    """Hold the stop signals back during the block; they take effect when it ends.

    Python runs a signal handler in the main thread between two bytecodes, so a KeyboardInterrupt
    can land between creating a file and remembering it. In the main thread the signals are
    blocked in the kernel for the block (which covers Python's own Ctrl-C handler), and the
    handlers of :func:`handle_stop_signals` also wait for its end (which covers a signal that the
    kernel hands to another thread, e.g. one of joblib's). Keep the block short: Ctrl-C does
    nothing until it ends. In other threads it does nothing: no handler raises there.
    """
    global _holding, _held_signal
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    mask = getattr(signal, "pthread_sigmask", None)
    previous = mask(signal.SIG_BLOCK, set(STOP_SIGNALS)) if mask else None
    _holding += 1
    try:
        yield
    finally:
        _holding -= 1
        if mask:
            mask(signal.SIG_SETMASK, previous)  # a blocked signal is handled right here
        if not _holding and _held_signal is not None:
            signum, _held_signal = _held_signal, None
            raise _stop_exception(signum)


def handle_stop_signals() -> None:
    """Turn SIGINT, SIGTERM and SIGHUP into exceptions in the main thread, so cleanup code runs.

    The default action of SIGTERM and SIGHUP (the terminal closed) kills the process on the
    spot: temporary files stay behind. A signal that the parent set to be ignored (``nohup``, a
    background job) stays ignored. Call it from the main thread of a command-line entry point,
    not from library code.
    """
    for signum in STOP_SIGNALS:
        current = signal.getsignal(signum)
        if current in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(signum, _on_stop_signal)


def forget_stop_signals() -> None:
    """Forget a signal seen earlier (each command reports only its own)."""
    global _signal_seen
    _signal_seen = None


def stop_signal(exc: BaseException) -> tuple[str, int] | None:
    """How to report ``exc`` if it means the run was stopped by a signal: (label, exit code).

    Besides Ctrl-C and :class:`Terminated`, any exception raised after a stop signal arrived counts:
    a signal sent to the whole process group also kills worker processes, and their failure may
    surface first.
    """
    if isinstance(exc, Terminated):
        signum = exc.signum
    elif _signal_seen is not None:
        signum = _signal_seen
    elif isinstance(exc, KeyboardInterrupt):
        signum = signal.SIGINT
    else:
        return None
    if signum == signal.SIGINT:
        return "Interrupted", 130
    return f"Stopped by {signal.Signals(signum).name}", 128 + signum
