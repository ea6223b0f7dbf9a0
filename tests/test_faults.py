"""Faults while writing: signals, a full disk, unwritable folders, a concurrent writer.

Whatever happens, no ``.partial`` file stays beside the target, an existing output is never
damaged (nor replaced without ``--force``), the message is one truthful line naming the file and
never quoting the feedback, and the exit code says what happened (1, 130, 143).
Most tests run in-process; the few that need a real signal or a real file-size limit run the
command in a subprocess.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import classifier._errors as errors
import classifier._files as files
import classifier.io as table_io
from classifier._errors import ClassifierError, Interrupted, Terminated
from classifier.cli import app, user_errors
from classifier.io import ChunkWriter
from classifier.tagging import tag_file

runner = CliRunner()
CLASSIFIER = str(Path(sys.executable).with_name("classifier"))


def _export(path: Path, rows: int = 40) -> Path:
    texts = [f"SECRET {i} she listened and I felt heard" for i in range(rows)]
    pd.DataFrame({"id": [str(i) for i in range(rows)], "text": texts}).to_csv(path, index=False)
    return path


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text and "SECRET" not in text
    return lines[0]


def _stop_after(calls: int, exc: BaseException):
    """A progress callback that raises ``exc`` on its ``calls``-th call (after a chunk)."""
    seen = []

    def progress(rows, fraction):
        seen.append(rows)
        if len(seen) == calls:
            raise exc

    return progress


# ------------------------------------------------------------------------------ signals
@pytest.mark.parametrize(
    ("stop", "label", "code"),
    [(KeyboardInterrupt(), "Interrupted", 130), (Terminated(signal.SIGTERM), "SIGTERM", 143)],
)
def test_a_stop_midway_removes_the_partial_and_keeps_the_old_output(
    tmp_path, tiny_model_path, stop, label, code
):
    source = _export(tmp_path / "in.csv")
    target = tmp_path / "out.csv"
    target.write_text("keep me")
    with pytest.raises(Interrupted) as caught:
        tag_file(
            str(source), str(target), model_path=tiny_model_path, chunk_size=10, force=True,
            progress=_stop_after(2, stop),
        )  # fmt: skip
    assert caught.value.exit_code == code
    assert label in str(caught.value) and "out.csv was left as it was" in str(caught.value)
    assert target.read_text() == "keep me"
    assert _names(tmp_path) == ["in.csv", "out.csv"]


def test_an_interrupted_stdout_output_is_reported_as_incomplete(
    tmp_path, tiny_model_path, monkeypatch
):
    # It used to say "no output was written" after thousands of rows had gone out.
    source = _export(tmp_path / "in.csv")
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    with pytest.raises(Interrupted) as caught:
        tag_file(
            str(source), "-", model_path=tiny_model_path, chunk_size=10, output_format="csv",
            progress=_stop_after(3, KeyboardInterrupt()),
        )  # fmt: skip
    assert str(caught.value) == (
        "Interrupted after 30 rows were written to standard output; that output is incomplete."
    )


def test_an_interrupted_parquet_on_stdout_gets_no_footer(monkeypatch):
    # pyarrow writes the footer even when its writer is garbage-collected: a cut-off stream
    # would have looked like a whole, shorter file.
    pytest.importorskip("pyarrow")
    buffer = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", type("Out", (), {"buffer": buffer})())
    with pytest.raises(Interrupted, match="after 2 rows"), ChunkWriter("-", "parquet") as writer:
        writer.write(pd.DataFrame({"id": ["1", "2"], "text": ["a", "b"]}))
        raise KeyboardInterrupt
    del writer
    assert buffer.getvalue().startswith(b"PAR1") and not buffer.getvalue().endswith(b"PAR1")


def test_an_interrupt_between_creating_the_writer_and_using_it_leaves_nothing(tmp_path):
    # The temporary file exists from the writer's creation on; an interrupt before its `with`
    # block (or in any other gap) is cleaned up from the process-wide list of temporaries.
    with pytest.raises(typer.Exit) as caught, user_errors():
        ChunkWriter(str(tmp_path / "out.csv"), "csv")
        raise KeyboardInterrupt
    assert caught.value.exit_code == 130
    assert _names(tmp_path) == []


def test_an_interrupt_after_the_output_is_complete_says_so(tmp_path, capsys):
    target = tmp_path / "summary.json"
    with pytest.raises(typer.Exit) as caught, user_errors():
        files.write_text_atomically(target, "{}")
        raise KeyboardInterrupt
    assert caught.value.exit_code == 130
    message = _one_line(capsys.readouterr().err)
    assert message == (
        f"Interrupted; {target} had been written in full before it; nothing else was written."
    )


def test_a_failure_after_a_stop_signal_is_reported_as_the_stop(monkeypatch, capsys):
    # SIGTERM to the process group kills the workers too; their failure may surface first.
    monkeypatch.setattr(errors, "_signal_seen", None)
    with pytest.raises(typer.Exit) as caught, user_errors():
        errors._signal_seen = signal.SIGTERM  # as the handler records it
        raise RuntimeError("a worker died")
    assert caught.value.exit_code == 143
    assert _one_line(capsys.readouterr().err) == "Stopped by SIGTERM; no output was written."


@pytest.mark.parametrize(
    ("name", "exit_code"),
    [
        ("SIGTERM", 143),
        pytest.param(
            "SIGHUP", 129, marks=pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX")
        ),
    ],
)
def test_the_stop_signal_handler_raises_terminated_and_respects_ignored_signals(
    monkeypatch, name, exit_code
):
    """SIGTERM (kill) and SIGHUP (the terminal closed) would kill the process, leaving files."""
    signum = getattr(signal, name)
    previous = {s: signal.getsignal(s) for s in errors.STOP_SIGNALS}
    monkeypatch.setattr(errors, "_signal_seen", None)
    try:
        signal.signal(signum, signal.SIG_DFL)
        errors.handle_stop_signals()
        with pytest.raises(Terminated) as caught:
            os.kill(os.getpid(), signum)
            time.sleep(1)  # the handler runs at the next bytecode
        assert caught.value.exit_code == exit_code
        assert errors.stop_signal(caught.value) == (f"Stopped by {name}", exit_code)
        signal.signal(signum, signal.SIG_IGN)  # e.g. started under nohup
        errors.handle_stop_signals()
        assert signal.getsignal(signum) is signal.SIG_IGN
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX signals")
@pytest.mark.parametrize("handlers", ["python's", "the command line's"])
def test_deferred_signals_arrive_after_the_block(monkeypatch, handlers):
    # Creating a temporary file and listing it, or moving it into place and noting that, must
    # not be split by Ctrl-C. With the command line's handlers this holds even when the kernel
    # hands the signal to another thread (joblib runs some): the handler waits for the block.
    previous = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(errors, "_signal_seen", None)
    done = []
    try:
        if handlers == "the command line's":
            signal.signal(signal.SIGINT, signal.default_int_handler)
            errors.handle_stop_signals()
        with pytest.raises(KeyboardInterrupt):
            with files.deferred_signals():
                if handlers == "python's":
                    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                else:
                    os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                done.append("block finished")
            time.sleep(1)  # (never reached: the interrupt lands as the block ends)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert done == ["block finished"]


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def _workers(pid: int) -> list[int]:
    """The worker processes of ``pid``: forked copies of it (Linux), or joblib's loky workers.

    (Forked workers run the same command as ``pid``; a loky worker's names LokyProcess.)
    """
    try:
        own = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    found = []
    for child in _children(pid):
        try:
            command = (Path("/proc") / str(child) / "cmdline").read_bytes()
        except OSError:
            continue
        if b"LokyProcess" in command or command == own:
            found.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find worker processes")
def test_sigterm_with_workers_leaves_no_file_and_no_process(tmp_path, tiny_model_path):
    source = _export(tmp_path / "in.csv", rows=30_000)
    target = tmp_path / "out.csv"
    target.write_text("keep me")
    command = [
        CLASSIFIER, "tag", str(source), "-o", str(target), "--force", "--jobs", "2",
        "--chunk-size", "100", "--model", str(tiny_model_path),
    ]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    # Once the temporary file and the worker processes exist (starting up, or tagging already:
    # waiting for tagged rows would take seconds more), every kind of leftover is possible.
    while not (list(tmp_path.glob(".out.csv.*.partial")) and _workers(process.pid)):
        assert process.poll() is None and time.monotonic() < deadline, "finished too soon"
        time.sleep(0.05)
    workers = _children(process.pid)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert _one_line(err.decode()) == f"Stopped by SIGTERM; {target} was left as it was."
    assert target.read_text() == "keep me"
    assert _names(tmp_path) == ["in.csv", "out.csv"]
    assert len(workers) >= 2
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)]


def test_sigint_while_writing_to_stdout_says_how_far_it_got(tmp_path, tiny_model_path):
    # Standard input stays open, so the run cannot finish before the signal arrives.
    command = [
        CLASSIFIER, "tag", "-", "--format", "csv", "-o", "-", "--output-format", "csv",
        "--chunk-size", "50", "--model", str(tiny_model_path),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    rows = "".join(f"{i},SECRET {i} she listened\n" for i in range(2_000))
    process.stdin.write(f"id,text\n{rows}".encode())
    process.stdin.flush()
    # More than the first chunk's output: at least one chunk was written whole.
    assert len(process.stdout.read(20_000)) == 20_000
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    message = _one_line(err.decode())
    assert message.startswith("Interrupted after ")
    assert message.endswith(" rows were written to standard output; that output is incomplete.")


# ----------------------------------------------------------------------------- full disk
class _FullDisk(io.TextIOWrapper):
    """A text file on a disk that fills up after ``room`` characters; closing fails too."""

    room = 0

    def write(self, text):
        if self.room < len(text):
            raise OSError(errno.ENOSPC, "No space left on device")
        type(self).room -= len(text)
        return super().write(text)

    def close(self):
        if not self.closed:
            super().close()  # the descriptor is released, as a real failing close does
            raise OSError(errno.ENOSPC, "No space left on device")


def _full_open(path, mode="r", **options):
    if "w" not in mode:
        return open(path, mode, **options)
    return _FullDisk(open(path, "wb"), **options)


@pytest.mark.parametrize("room", [10**9, 0], ids=["on close", "while writing"])
def test_a_full_disk_is_one_line_naming_the_output_and_leaves_nothing(
    tmp_path, tiny_model_path, monkeypatch, room
):
    source = _export(tmp_path / "in.csv")
    target = tmp_path / "out.csv"
    monkeypatch.setattr(_FullDisk, "room", room)
    monkeypatch.setattr(table_io, "open", _full_open, raising=False)
    result = runner.invoke(app, ["tag", str(source), "-o", str(target), "--model",
                                 str(tiny_model_path), "-q"])  # fmt: skip
    assert result.exit_code == 1
    assert _one_line(result.stderr) == (
        f"Error: {target}: cannot write (No space left on device); it was not created"
    )
    assert _names(tmp_path) == ["in.csv"]


def test_a_full_disk_error_hides_no_cleanup_and_chains_nothing(tmp_path, monkeypatch):
    # stream.close() raising inside abort must not stop the temporary file's removal.
    monkeypatch.setattr(_FullDisk, "room", 0)
    monkeypatch.setattr(table_io, "open", _full_open, raising=False)
    with pytest.raises(ClassifierError) as caught, ChunkWriter(str(tmp_path / "o.csv"), "csv") as w:
        w.write(pd.DataFrame({"text": ["SECRET"]}))
    assert caught.value.__suppress_context__ and caught.value.__cause__ is None
    assert _names(tmp_path) == []


def test_a_full_disk_in_an_atomic_write_is_one_line(tmp_path):
    target = tmp_path / "model.json"
    target.write_text("old")
    with pytest.raises(ClassifierError, match=r"model.json: cannot write \(File too large\)"):
        with files.atomic_path(target):
            raise OSError(errno.EFBIG, "File too large")
    assert target.read_text() == "old" and _names(tmp_path) == ["model.json"]


_LIMITED_RUN = """
import json, resource, signal, sys
from typer.testing import CliRunner
from classifier.cli import app
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
source, folder, model = sys.argv[1:4]
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))
results = {}
for suffix in ("csv", "jsonl", "parquet", "xlsx"):
    result = CliRunner().invoke(app, ["tag", source, "-o", f"{folder}/out.{suffix}", "--model",
                                      model, "-q", "--chunk-size", "100"])
    results[suffix] = [result.exit_code, result.stderr]
print(json.dumps(results))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs POSIX file-size limits")
def test_a_real_file_size_limit_in_every_format(tmp_path, tiny_model_path):
    source = _export(tmp_path / "in.csv", rows=2_000)
    folder = tmp_path / "out"
    folder.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", _LIMITED_RUN, str(source), str(folder), str(tiny_model_path)],
        capture_output=True, timeout=300, check=True,
    )  # fmt: skip
    for suffix, (code, stderr) in json.loads(result.stdout).items():
        assert code == 1, (suffix, stderr)
        assert _one_line(stderr) == (
            f"Error: {folder}/out.{suffix}: cannot write (File too large); it was not created"
        )
    assert _names(folder) == []


# -------------------------------------------------------------------- unwritable folders
def _refuse_tagging(monkeypatch):
    def tagging_started(*args, **kwargs):
        raise AssertionError("tagging started before the output was checked")

    monkeypatch.setattr("classifier.tagging.tag_chunk", tagging_started)


@pytest.mark.parametrize("case", ["missing folder", "a file as folder", "read-only folder"])
def test_an_unwritable_output_folder_is_named_before_tagging(
    tmp_path, tiny_model_path, monkeypatch, case
):
    source = _export(tmp_path / "in.csv")
    folder = tmp_path / "out"
    expected = {
        "missing folder": f"the folder {folder} does not exist",
        "a file as folder": f"{folder} is a file, not a folder",
        "read-only folder": f"cannot write in {folder} (permission denied)",
    }[case]
    if case == "a file as folder":
        folder.write_text("a file")
    elif case == "read-only folder":  # (as root, chmod would not stop the write)
        folder.mkdir()

        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    _refuse_tagging(monkeypatch)
    result = runner.invoke(app, ["tag", str(source), "-o", str(folder / "t.csv"), "--model",
                                 str(tiny_model_path)])  # fmt: skip
    assert result.exit_code == 1
    assert expected in _one_line(result.stderr)


def test_an_atomic_write_names_the_unwritable_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(
        files.tempfile, "mkstemp", lambda **k: (_ for _ in ()).throw(OSError(errno.EROFS, "x"))
    )
    with pytest.raises(ClassifierError, match="cannot create a file in .*Read-only file system"):
        files.write_text_atomically(tmp_path / "summary.json", "{}")


# --------------------------------------------------------------------- concurrent writer
def _appears_during_the_run(target: Path):
    def progress(rows, fraction):
        if not target.exists():
            target.write_text("written by someone else")

    return progress


@pytest.mark.parametrize("hard_links", [True, False], ids=["link", "no hard links"])
def test_an_output_that_appears_during_the_run_is_kept_without_force(
    tmp_path, tiny_model_path, monkeypatch, hard_links
):
    # "Exists?" was asked only at the start; a file created meanwhile was silently replaced.
    if not hard_links:

        def no_links(*args, **kwargs):
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(files.os, "link", no_links)
    source = _export(tmp_path / "in.csv")
    target = tmp_path / "out.csv"
    with pytest.raises(ClassifierError, match="another program created this file") as caught:
        tag_file(str(source), str(target), model_path=tiny_model_path, chunk_size=10,
                 progress=_appears_during_the_run(target))  # fmt: skip
    assert "--force" in str(caught.value) and "SECRET" not in str(caught.value)
    assert target.read_text() == "written by someone else"
    assert _names(tmp_path) == ["in.csv", "out.csv"]
    target.unlink()
    tag_file(str(source), str(target), model_path=tiny_model_path)  # no race: written
    assert len(pd.read_csv(target)) == 40


def test_with_force_an_output_that_appears_during_the_run_is_replaced(tmp_path, tiny_model_path):
    source = _export(tmp_path / "in.csv")
    target = tmp_path / "out.csv"
    tag_file(str(source), str(target), model_path=tiny_model_path, chunk_size=10, force=True,
             progress=_appears_during_the_run(target))  # fmt: skip
    assert len(pd.read_csv(target)) == 40
    assert _names(tmp_path) == ["in.csv", "out.csv"]
