"""Tagging datasets larger than one machine with Dask: what ``classifier tag --dask`` runs.

:func:`tag_dataset` reads a partitioned Parquet or CSV dataset, tags every partition on the
workers of a Dask cluster (``distributed``) and writes a directory of part files, one per input
partition, in order. :func:`tag_dataframe` is the lazy step in the middle, for a Dask DataFrame
you already have. Both need the ``[dask]`` extra::

    pip install 'therapy-themes-classifier[dask]'

Design
------
* Only the model *path* travels through the scheduler. Each worker process loads the model
  itself with :func:`~classifier.persistence.load_model`, which caches it per process, so every
  worker loads it once however many partitions it tags. The model file, the input and the output
  must therefore be on a filesystem that every worker sees under the same path.
* A partition is tagged by :func:`~classifier.tagging.tag_frame` and written as ``classifier
  tag`` writes a file (the same writer code), so the result is the single-machine result: rows
  keep their count and order within a partition, and output part ``i`` holds input partition
  ``i``. Nothing is shuffled or re-indexed. One task per partition reads, tags, writes and
  counts it, so each partition is tagged exactly once and only its counts travel back.
* Memory per worker is bounded by the partition size, not the dataset size: Parquet partitions
  follow the files and row groups (a row group is never split); a CSV file larger than
  ``blocksize`` is cut at record boundaries found by counting quotes, so a text holding a line
  break is never cut in two (Dask's own ``read_csv`` cuts at any line break).
* The output is written into a hidden temporary directory beside the target and renamed into
  place only when every partition is written and the row counts agree: a failed run leaves
  nothing behind.
"""

from __future__ import annotations

import glob
import io
import logging
import multiprocessing
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from classifier._errors import ClassifierError
from classifier.io import detect_format
from classifier.tagging import (
    DEFAULT_CHUNK_SIZE,
    STATUS_COLUMN,
    THEMES_COLUMN,
    TagSummary,
    _check_no_clash,
    columns_hint,
    find_text_column,
    missing_column,
    output_columns,
    tag_frame,
)

DASK_FORMATS = ("parquet", "csv")
INSTALL_HINT = "pip install 'therapy-themes-classifier[dask]'"
LOCAL = "local"
# Seconds to wait for a scheduler to answer (and to have a worker) before giving up.
CONNECT_TIMEOUT = 10.0
# Target bytes of one partition. A worker holds a partition and its tagging columns at once, so
# this bounds memory per worker: 32 MiB of CSV is ~300,000 rows of 100-character feedback.
DEFAULT_BLOCKSIZE = 32 * 2**20
_SCAN_BUFFER = 16 * 2**20  # bytes read at a time when looking for CSV record boundaries
_PART_FILE = re.compile(r"part\.\d+\.(parquet|csv)")
_DATASET_EXTRAS = {"_metadata", "_common_metadata", "_SUCCESS"}

# One tagging at a time per process: a worker started with several threads would otherwise run
# the spaCy pipeline from two threads at once, which it is not written for (and the GIL gives
# threads nothing here: use processes). The lock also makes the first load_model happen once.
_TAG_LOCK = threading.Lock()


# ------------------------------------------------------------------------------ partitions
def tag_partition(
    frame: pd.DataFrame,
    model_path: str,
    text_column: str,
    explain: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> pd.DataFrame:
    """Tag one partition on a worker: :func:`~classifier.tagging.tag_frame` with a cached model.

    The function to map over partitions: it receives the model's path, not the model, and loads
    it with :func:`~classifier.persistence.load_model` (cached per process), so each worker
    process reads the model file once, and the scheduler never carries the model.

    Parameters
    ----------
    frame : pandas.DataFrame
        One partition.
    model_path : str
        The model file, as the worker sees it (an absolute path on a shared filesystem).
    text_column : str
        The column holding the feedback.
    explain : bool, default False
        Add the evidence columns.
    chunk_size : int, default 2000
        Rows scored at a time within the partition.

    Returns
    -------
    pandas.DataFrame
        ``frame`` with the tagging columns appended; rows, order and index unchanged.
    """
    from classifier.persistence import load_model

    with _TAG_LOCK:
        model = load_model(model_path)
        _freeze_once_in_worker_process()
        if len(frame) == 0:
            # tag_frame would give the score columns of an empty partition the object dtype;
            # every partition must match the meta so that the Parquet parts share one schema.
            added = _added_columns_meta(model.themes_, explain).set_axis(frame.index)
            return pd.concat([frame, added], axis=1)
        return tag_frame(frame, model, text_column, explain=explain, chunk_size=chunk_size)


def _freeze_once_in_worker_process() -> None:
    # Dask's worker processes are children (of a nanny); a worker running in the user's own
    # interpreter (LocalCluster(processes=False), a notebook) is left alone, as tag_file does.
    if multiprocessing.parent_process() is not None:
        from classifier.tagging import _freeze_long_lived_objects

        _freeze_long_lived_objects()


def _text_dtype():
    # What pandas gives a column of Python strings: object in pandas 2, str in pandas 3; the
    # columns tag_frame builds get the same.
    return pd.Series([], dtype=str).dtype


def _added_columns_meta(themes: Sequence[str], explain: bool) -> pd.DataFrame:
    text = _text_dtype()
    dtypes = {THEMES_COLUMN: text}
    dtypes.update(dict.fromkeys(themes, text))
    dtypes.update({f"{theme}_score": "float64" for theme in themes})
    if explain:
        dtypes.update({f"{theme}_evidence": text for theme in themes})
    dtypes[STATUS_COLUMN] = text
    assert list(dtypes) == output_columns(themes, explain)  # one definition of the columns
    return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in dtypes.items()})


def tagged_meta(meta: pd.DataFrame, themes: Sequence[str], explain: bool = False) -> pd.DataFrame:
    """The empty frame that describes tagged partitions: ``meta`` plus the tagging columns.

    Parameters
    ----------
    meta : pandas.DataFrame
        The (empty) meta of the input, e.g. ``ddf._meta``.
    themes : sequence of str
        The model's themes (``model.themes_``), in order.
    explain : bool, default False
        Whether the evidence columns are added.

    Returns
    -------
    pandas.DataFrame
        What ``map_partitions(tag_partition, ...)`` needs as ``meta``.
    """
    added = _added_columns_meta(themes, explain).set_axis(meta.index[:0])
    return pd.concat([meta.iloc[:0], added], axis=1)


def tag_dataframe(
    ddf,
    model_path: str | os.PathLike | None = None,
    text_column: str | None = None,
    explain: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
):
    """Tag a Dask DataFrame lazily: ``map_partitions(tag_partition, ...)`` with an explicit meta.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        The rows to tag; partitions keep their rows, order and index.
    model_path : str or PathLike, optional
        The model file (default: ``$CLASSIFIER_MODEL`` or the shipped model). Every worker must
        see it under this path.
    text_column : str, optional
        The feedback column; detected if there is one obvious candidate.
    explain : bool, default False
        Add the evidence columns.
    chunk_size : int, default 2000
        Rows scored at a time within a partition.

    Returns
    -------
    dask.dataframe.DataFrame
        Not computed yet. Compute it, write it (``to_parquet``) or aggregate it.

    Raises
    ------
    ClassifierError
        If the model cannot be loaded here, the text column is missing or ambiguous, or the
        input already has a column that tagging adds.

    Examples
    --------
    >>> import dask.dataframe as dd                                      # doctest: +SKIP
    >>> from classifier.distributed import tag_dataframe                 # doctest: +SKIP
    >>> tagged = tag_dataframe(dd.read_parquet("export/"), text_column="feedback")  # doctest: +SKIP
    >>> tagged["status"].value_counts().compute()                        # doctest: +SKIP
    """
    from classifier.persistence import default_model_path, load_model

    path = str(Path(model_path or default_model_path()).resolve())
    # Loaded here only for its themes (the meta) and to fail early on a bad model file; the
    # compiled model loads in a fraction of a second without scikit-learn.
    themes = load_model(path).themes_
    meta = ddf._meta
    column = find_text_column(meta.columns, text_column, "input")
    _check_no_clash(meta.columns, output_columns(themes, explain), "input")
    return ddf.map_partitions(
        tag_partition,
        path,
        column,
        explain,
        chunk_size,
        meta=tagged_meta(meta, themes, explain),
    )


# ----------------------------------------------------------------------------------- counts
def _partition_counts(
    frame: pd.DataFrame, themes: Sequence[str], polarities: Sequence[str]
) -> pd.DataFrame:
    """One row of counts for a tagged partition (what TagSummary.add counts from a batch)."""
    status = frame[STATUS_COLUMN]
    ok = status.isin(("ok", "truncated"))  # a truncated text was tagged (on its start)
    counts = {
        "rows": len(frame),
        "ok": int(ok.sum()),
        "empty": int((status == "empty").sum()),
        "not_text": int((status == "not_text").sum()),
        "truncated": int((status == "truncated").sum()),
        "with_theme": int((ok & (frame[THEMES_COLUMN] != "")).sum()),
    }
    for i, theme in enumerate(themes):
        for j, polarity in enumerate(polarities):
            counts[f"theme{i}_{j}"] = int((frame[theme] == polarity).sum())
    return pd.DataFrame({name: [value] for name, value in counts.items()}, dtype="int64")


def _counts_meta(themes: Sequence[str], polarities: Sequence[str]) -> pd.DataFrame:
    empty = pd.DataFrame({STATUS_COLUMN: [], THEMES_COLUMN: []}, dtype=object)
    for theme in themes:
        empty[theme] = pd.Series([], dtype=object)
    return _partition_counts(empty, themes, polarities).iloc[:0]


@dataclass
class DatasetSummary(TagSummary):
    """:class:`~classifier.tagging.TagSummary` of a Dask run, with its partitions and workers."""

    partitions: int = 0
    workers: int = 0
    rows_written: int = 0

    def render(self) -> str:
        lines = super().render().split("\n")
        at = next(i for i, line in enumerate(lines) if line.startswith("  time")) + 1
        lines[at:at] = [
            f"  rows written         {self.rows_written:>10,}",
            f"  partitions           {self.partitions:>10,}   (on {self.workers} Dask workers)",
        ]
        return "\n".join(lines)


def _summary_from_counts(
    counts: pd.DataFrame,
    summary: DatasetSummary,
    themes: Sequence[str],
    polarities: Sequence[str],
) -> None:
    totals = counts.sum()
    summary.rows_read = int(totals["rows"])
    summary.rows_tagged = int(totals["ok"])
    summary.rows_empty_text = int(totals["empty"])
    summary.rows_not_text = int(totals["not_text"])
    summary.rows_truncated = int(totals["truncated"])
    summary.rows_with_theme = int(totals["with_theme"])
    summary.rows_no_theme = summary.rows_tagged - summary.rows_with_theme
    summary.theme_counts = {
        theme: {polarity: int(totals[f"theme{i}_{j}"]) for j, polarity in enumerate(polarities)}
        for i, theme in enumerate(themes)
    }


# ------------------------------------------------------------------------------------ input
def _natural_key(path: Path) -> list:
    # part.2 before part.10, as Dask orders a directory's files.
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def resolve_inputs(source: str, input_format: str | None = None) -> tuple[list[Path], str]:
    """The files of a dataset, in order, and their format.

    ``source`` is a file, a directory (its Parquet or CSV files, not its subdirectories; hidden
    files and names starting with ``_`` are skipped, as Spark and Dask write such) or a glob
    pattern. Files are ordered naturally: ``part.2`` before ``part.10``.
    """
    if source == "-":
        raise ClassifierError("tagging with Dask reads files, not standard input")
    if glob.has_magic(source):
        files = [Path(p) for p in glob.glob(source) if Path(p).is_file()]
        if not files:
            raise ClassifierError(f"{source}: no file matches the pattern")
    elif Path(source).is_dir():
        files = [
            p
            for p in Path(source).iterdir()
            if p.is_file()
            and not p.name.startswith((".", "_"))
            and (input_format is not None or _known_format(p) is not None)
        ]
        if not files:
            raise ClassifierError(f"{source}: the folder holds no .parquet or .csv files")
    elif Path(source).is_file():
        files = [Path(source)]
    else:
        raise ClassifierError(f"{source}: no such file or folder")
    files.sort(key=_natural_key)
    formats = {detect_format(str(p), input_format) for p in files}
    if len(formats) > 1:
        raise ClassifierError(
            f"{source}: mixes {' and '.join(sorted(formats))} files; pass a pattern that "
            "matches one format"
        )
    fmt = formats.pop()
    _check_dask_format(source, fmt)
    return [p.absolute() for p in files], fmt


def _known_format(path: Path) -> str | None:
    try:
        return detect_format(str(path))
    except ClassifierError:
        return None


def _check_dask_format(path: str, fmt: str) -> None:
    if fmt not in DASK_FORMATS:
        raise ClassifierError(
            f"{path}: --dask reads and writes Parquet or CSV, not {fmt}; convert it first, or "
            "tag it without --dask"
        )


def read_dataset(
    files: Sequence[Path],
    fmt: str,
    blocksize: int | str | None = DEFAULT_BLOCKSIZE,
    encoding: str = "utf-8",
):
    """A Dask DataFrame over ``files`` (Parquet or CSV), partitions in file order.

    Parameters
    ----------
    files : sequence of Path
        The files, in order (see :func:`resolve_inputs`).
    fmt : {"parquet", "csv"}
        Their format.
    blocksize : int or str or None, default 32 MiB
        Target size of a partition. Parquet: passed to ``dask.dataframe.read_parquet`` (row
        groups are never split). CSV: a file larger than this is cut at record boundaries;
        None keeps one partition per file.
    encoding : str, default "utf-8"
        Text encoding of CSV files.

    Returns
    -------
    dask.dataframe.DataFrame
        CSV values are read as strings, empty cells as ``""``, as ``classifier tag`` reads them.
    """
    import dask.dataframe as dd

    from classifier.io import table_format

    for path in files:
        if path.stat().st_size == 0:
            raise ClassifierError(f"{path}: the file is empty")
    if fmt == "parquet":
        table_format("parquet").require()
        try:
            return dd.read_parquet(
                [str(p) for p in files],
                blocksize=blocksize if blocksize is not None else "default",
            )
        except Exception as exc:  # pyarrow and fsspec raise many types for an unreadable file
            where = files[0] if len(files) == 1 else files[0].parent
            raise ClassifierError(
                f"{where}: not a readable Parquet dataset ({type(exc).__name__})"
            ) from None
    return _read_csv_dataset(files, blocksize, encoding)


# CSV ------------------------------------------------------------------------------------
def _csv_options(encoding: str) -> dict:
    # Exactly how classifier.io.TableReader reads CSV, so a row comes out the same either way.
    return {
        "dtype": str,
        "keep_default_na": False,
        "na_filter": False,
        "encoding": encoding,
        "engine": "c",
    }


def csv_record_starts(path: Path, blocksize: int | None) -> list[int]:
    """Byte offsets where CSV pieces of about ``blocksize`` bytes start, the header excluded.

    The first offset is the end of the header row. A piece boundary is a line break outside
    quotes: with RFC 4180 quoting (what spreadsheets, pandas and ``csv`` write: a quote inside a
    quoted field is doubled) a line break is outside quotes exactly when an even number of
    quote characters precede it. Counting them is a fast scan, done only for files larger than
    ``blocksize``, and ``"`` and line breaks are single bytes in UTF-8, Latin-1 and cp1252 alike.
    """
    size = path.stat().st_size
    starts: list[int] = []
    target = 0  # the header ends at the first record boundary
    offset, odd = 0, 0  # offset of buf[0]; parity of the quotes before it
    with open(path, "rb") as handle:
        while True:
            buf = handle.read(_SCAN_BUFFER if starts or blocksize else 1 << 16)
            if not buf:
                break
            pos = 0
            while True:
                local = max(target - offset, pos)
                if local >= len(buf):  # the next boundary to look for is beyond this buffer
                    odd = (odd + buf.count(b'"', pos)) & 1
                    break
                newline = buf.find(b"\n", local)
                if newline < 0:
                    odd = (odd + buf.count(b'"', pos)) & 1
                    break
                odd = (odd + buf.count(b'"', pos, newline)) & 1
                pos = newline + 1
                if odd:  # a line break inside a quoted field: try the next one
                    continue
                starts.append(offset + pos)
                if blocksize is None or offset + pos + blocksize >= size:
                    return starts
                target = offset + pos + blocksize
            offset += len(buf)
    return starts or [size]  # a header without a line break: no rows


def _read_csv_header(path: Path, header_end: int, encoding: str) -> pd.DataFrame:
    with open(path, "rb") as handle:
        head = handle.read(header_end)
    try:
        return pd.read_csv(io.BytesIO(head), **_csv_options(encoding))
    except UnicodeDecodeError as exc:
        raise ClassifierError(_decode_message(path, exc, encoding)) from None
    except pd.errors.EmptyDataError:
        raise ClassifierError(f"{path}: the file has no header row") from None
    except pd.errors.ParserError:
        raise ClassifierError(f"{path}: malformed CSV header row") from None


def read_csv_piece(
    piece: tuple[str, int, int], names: list[str], encoding: str = "utf-8"
) -> pd.DataFrame:
    """Read bytes ``start:stop`` of a CSV file (whole records, no header) into a DataFrame."""
    path, start, stop = piece
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(stop - start)
    if not data.strip():  # the placeholder piece of a header-only dataset, or blank lines
        return pd.DataFrame({name: pd.Series([], dtype=_text_dtype()) for name in names})
    try:
        return pd.read_csv(io.BytesIO(data), header=None, names=names, **_csv_options(encoding))
    except UnicodeDecodeError as exc:
        raise ClassifierError(_decode_message(Path(path), exc, encoding)) from None
    except pd.errors.ParserError:
        raise ClassifierError(
            f"{path}, somewhere in bytes {start:,}-{stop:,}: malformed CSV row (wrong number of "
            "fields or an unclosed quote)"
        ) from None


def _decode_message(path: Path, exc: UnicodeDecodeError, encoding: str) -> str:
    return (
        f"{path}: cannot decode a byte as {encoding}; pass --encoding (e.g. --encoding cp1252 "
        f"or latin-1) ({exc.reason})"
    )


def _read_csv_dataset(files: Sequence[Path], blocksize: int | str | None, encoding: str):
    import dask.dataframe as dd
    from dask.utils import parse_bytes

    size = parse_bytes(blocksize) if isinstance(blocksize, str) else blocksize
    pieces: list[tuple[str, int, int]] = []
    meta = None
    for path in files:
        starts = csv_record_starts(path, size)
        header = _read_csv_header(path, starts[0], encoding)
        if meta is None:
            meta, first = header, path
        elif list(header.columns) != list(meta.columns):
            raise ClassifierError(
                f"{path}: its columns differ from those of {first.name} ({columns_hint(str(path))})"
            )
        stops = [*starts[1:], path.stat().st_size]
        pieces += [(str(path), a, b) for a, b in zip(starts, stops, strict=True) if a < b]
    if not pieces:  # header rows only: one empty partition, so the output has the columns
        pieces = [(str(files[0]), 0, 0)]
    return dd.from_map(
        read_csv_piece,
        pieces,
        args=[list(meta.columns), encoding],
        meta=meta,
        label="read-csv-pieces",
        enforce_metadata=False,
    )


# ----------------------------------------------------------------------------------- output
def _output_format(output: Path, explicit: str | None, input_format: str) -> str:
    if explicit:
        fmt = detect_format(str(output), explicit)
    elif output.suffix:
        fmt = detect_format(str(output))
    else:
        fmt = input_format
    _check_dask_format(str(output), fmt)
    return fmt


def _is_replaceable(path: Path) -> bool:
    """Whether ``path`` looks like an earlier output: part files only (or empty)."""
    if not path.is_dir() or path.is_symlink():
        return path.is_file()
    return all(
        child.is_file() and (_PART_FILE.fullmatch(child.name) or child.name in _DATASET_EXTRAS)
        for child in path.iterdir()
    )


def _check_output(output: Path, inputs: Sequence[Path], source: str, force: bool) -> None:
    if not output.parent.is_dir():
        raise ClassifierError(f"{output}: the folder {output.parent} does not exist")
    resolved = output.resolve()
    if any(resolved == p.resolve() or resolved == p.resolve().parent for p in inputs):
        raise ClassifierError(f"{output}: the output would overwrite the input")
    if Path(source).is_dir() and resolved == Path(source).resolve():
        raise ClassifierError(f"{output}: the output would overwrite the input")
    if output.exists() or output.is_symlink():
        if not force:
            raise ClassifierError(f"{output}: already exists; pass --force to overwrite it")
        if not _is_replaceable(output):
            raise ClassifierError(
                f"{output}: holds files other than an earlier output's part files; not "
                "replacing it (choose another output folder)"
            )


def _temporary_directory(output: Path) -> Path:
    temporary = Path(
        tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
    )
    # mkdtemp makes it private to us; workers may run as another user of a shared filesystem,
    # and the renamed result should have the permissions of any folder the user makes.
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(temporary, 0o777 & ~mask)
    return temporary.absolute()  # the workers' working directory is not ours


def _move_into_place(temporary: Path, output: Path) -> None:
    old = None
    if output.exists() or output.is_symlink():
        old = output.with_name(f".{output.name}.{uuid.uuid4().hex[:8]}.old")
        os.rename(output, old)
    os.rename(temporary, output)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def part_name(index: int, fmt: str) -> str:
    """The file of output partition ``index``: zero-padded, so name order is row order."""
    return f"part.{index:05d}.{fmt}"


def parquet_schema(meta: pd.DataFrame):
    """The Arrow schema of tagged partitions, from their meta.

    Parts are written one by one, so a column that is empty in one partition (every value
    missing, in an object column) would get Arrow's null type there and a string type elsewhere,
    and a reader would find the parts disagree. Such columns are cast to this schema's type.
    """
    import pyarrow as pa
    from dask.dataframe.utils import meta_nonempty

    return pa.Schema.from_pandas(meta_nonempty(meta), preserve_index=False)


def write_part(frame: pd.DataFrame, path: Path, fmt: str, schema=None) -> None:
    """Write one tagged partition to ``path`` atomically, as ``classifier tag`` writes a file.

    CSV goes through the same :class:`~classifier.io.ChunkWriter` (formula guard, quoting,
    CRLF); Parquet through the same ``pyarrow.Table.from_pandas``, without the index.
    """
    if fmt == "csv":
        from classifier.io import ChunkWriter

        writer = ChunkWriter(str(path), "csv", force=True)
        try:
            writer.write(frame)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    from classifier._files import atomic_path

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if schema is not None:
        for i, field in enumerate(table.schema):
            wanted = schema.field(field.name) if field.name in schema.names else None
            if pa.types.is_null(field.type) and wanted is not None:
                table = table.set_column(i, wanted, table.column(i).cast(wanted.type))
    with atomic_path(path) as temporary:
        pq.write_table(table, temporary)


def tag_and_write_partition(
    frame: pd.DataFrame,
    model_path: str,
    text_column: str,
    explain: bool,
    chunk_size: int,
    directory: str,
    fmt: str,
    themes: Sequence[str],
    polarities: Sequence[str],
    schema=None,
    partition_info: dict | None = None,
) -> pd.DataFrame:
    """One task of :func:`tag_dataset`: tag a partition, write its part file, return its counts.

    Doing all three in one task means each partition is read and tagged exactly once and only
    its one-row counts travel back (Dask computes ``to_csv`` apart from any other result, so
    writing with it and counting separately tagged every partition twice).
    """
    tagged = tag_partition(frame, model_path, text_column, explain, chunk_size)
    if len(tagged) != len(frame):  # tag_frame's promise, checked where it is cheap
        raise ClassifierError(
            f"partition {partition_info['number']}: {len(frame):,} rows in, {len(tagged):,} out"
        )
    write_part(tagged, Path(directory) / part_name(partition_info["number"], fmt), fmt, schema)
    return _partition_counts(tagged, themes, polarities)


def _parquet_rows(files: Sequence[Path]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(path).metadata.num_rows for path in files)


# ---------------------------------------------------------------------------------- cluster
def _require_dask() -> None:
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        raise ClassifierError(
            f"tagging with Dask needs dask[dataframe] and distributed: {INSTALL_HINT}"
        ) from None


@contextmanager
def dask_client(
    scheduler="local", n_workers: int | None = None, timeout: float | None = None
) -> Iterator:
    """A ``distributed.Client``: a local cluster, a scheduler's address, or a client you pass.

    ``"local"`` starts a ``LocalCluster`` of ``n_workers`` single-threaded worker processes (one
    per core by default) and closes it on exit. An address (``tcp://host:8786``) connects to a
    running scheduler, waiting at most ``timeout`` seconds for it and for one worker. A Client
    passed in is used as it is and left open.
    """
    from distributed import Client, LocalCluster

    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler == LOCAL:
        with (
            LocalCluster(
                n_workers=n_workers or os.cpu_count() or 1,
                threads_per_worker=1,  # tagging is CPU-bound Python: processes, not threads
                processes=True,
                dashboard_address=":0",  # any free port: 8787 may be another cluster's
                # A failed task is reported once, as a one-line error; the workers' own log of
                # it (a block per failure) would bury that line.
                silence_logs=logging.CRITICAL,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    if n_workers is not None:
        raise ClassifierError(
            "the number of workers applies to a local cluster; a scheduler's cluster has its own"
        )
    try:
        client = Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError):
        raise ClassifierError(
            f"cannot reach the Dask scheduler at {scheduler} (no answer within {timeout:g} s); "
            "check the address and that the scheduler is running"
        ) from None
    except ValueError:
        raise ClassifierError(
            f"{scheduler!r} is not a Dask scheduler address (e.g. tcp://host:8786) or 'local'"
        ) from None
    try:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError):
            raise ClassifierError(
                f"the Dask scheduler at {scheduler} has no workers (none joined within "
                f"{timeout:g} s)"
            ) from None
        yield client
    finally:
        client.close()


def _translate(exc: Exception, source: str) -> ClassifierError | None:
    """A one-line error for failures that come back from the workers; None for other bugs."""
    if isinstance(exc, ClassifierError):
        return exc
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith("classifier"):
        return ClassifierError(
            "the Dask workers cannot import classifier: install therapy-themes-classifier (the "
            "same version) on every worker"
        )
    if isinstance(exc, FileNotFoundError):
        return ClassifierError(
            f"{source}: a worker cannot see {exc.filename or 'a file'}; the model, input and "
            "output must be on a filesystem every worker sees under the same path"
        )
    if type(exc).__name__ == "KilledWorker":
        return ClassifierError(
            f"{source}: a Dask worker died while tagging (out of memory?); try smaller "
            "partitions (blocksize, or smaller input files)"
        )
    if isinstance(exc, UnicodeDecodeError):
        return ClassifierError(_decode_message(Path(source), exc, exc.encoding))
    if type(exc).__module__.startswith("pyarrow"):
        return ClassifierError(f"{source}: not a readable Parquet dataset ({type(exc).__name__})")
    return None


# ------------------------------------------------------------------------------------- main
def tag_dataset(
    input: str | os.PathLike,
    output: str | os.PathLike,
    model_path: str | os.PathLike | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
    explain: bool = False,
    scheduler="local",
    n_workers: int | None = None,
    input_format: str | None = None,
    output_format: str | None = None,
    blocksize: int | str | None = DEFAULT_BLOCKSIZE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    encoding: str = "utf-8",
    force: bool = False,
    timeout: float | None = None,
) -> DatasetSummary:
    """Tag a Parquet or CSV dataset on a Dask cluster; write a directory of part files.

    Every input column is kept unchanged and in order, the tagging columns follow (as with
    ``classifier tag``). Output part ``i`` holds input partition ``i`` with its rows in order, so
    reading the part files in name order gives the rows of the input in order, each tagged as
    :func:`~classifier.tagging.tag_frame` tags it on one machine.

    Parameters
    ----------
    input : str or PathLike
        A Parquet or CSV file, a folder of them, or a glob pattern (``"export/*.csv"``).
    output : str or PathLike
        The output folder. It is created by renaming a temporary folder into place when the
        whole run succeeded; an existing one is replaced only with ``force``.
    model_path : str or PathLike, optional
        The model file (default: ``$CLASSIFIER_MODEL`` or the shipped model).
    text_column, id_column : str, optional
        The feedback column (detected if obvious); a column that must exist.
    explain : bool, default False
        Add the evidence columns.
    scheduler : str or distributed.Client, default "local"
        ``"local"`` for a local cluster of ``n_workers`` processes, a scheduler address such as
        ``"tcp://10.0.0.5:8786"``, or a Client.
    n_workers : int, optional
        Worker processes of the local cluster (default: one per core).
    input_format, output_format : {"parquet", "csv"}, optional
        When the file extensions do not say. The output format defaults to the output folder's
        extension (``tagged.parquet/``), else the input's.
    blocksize : int or str or None, default 32 MiB
        Target partition size, which bounds each worker's memory (see :func:`read_dataset`).
    chunk_size : int, default 2000
        Rows scored at a time within a partition.
    encoding : str, default "utf-8"
        Text encoding of CSV input (the output is UTF-8).
    force : bool, default False
        Replace an existing output folder (only one holding part files).
    timeout : float, optional
        Seconds to wait for a scheduler (default :data:`CONNECT_TIMEOUT`).

    Returns
    -------
    DatasetSummary
        Rows read, tagged and written, counts per theme and polarity, partitions, workers, time.

    Raises
    ------
    ClassifierError
        For a missing ``[dask]`` extra, an unreachable scheduler, an unsupported format, an
        unreadable input, an existing output, or row counts that do not add up. Messages name
        files, columns and addresses, never feedback text.

    Examples
    --------
    >>> from classifier.distributed import tag_dataset
    >>> summary = tag_dataset("export/", "tagged.parquet", scheduler="local", n_workers=2)
    ... # doctest: +SKIP
    >>> summary.rows_read == summary.rows_written                        # doctest: +SKIP
    True
    """
    started = time.perf_counter()
    _require_dask()
    import dask

    from classifier.persistence import default_model_path, load_model

    source = os.fspath(input)
    files, in_fmt = resolve_inputs(source, input_format)
    target = Path(output)
    out_fmt = _output_format(target, output_format, in_fmt)
    _check_output(target, files, source, force)
    path = str(Path(model_path or default_model_path()).resolve())
    model = load_model(path)
    themes, polarities = model.themes_, model.polarities_

    # Dask would turn text columns into pyarrow strings with pd.NA for a missing value; keep
    # the dtypes pandas gives, as classifier tag reads files, so the output is the same file,
    # its pandas metadata included. (Dask reads the setting when it plans, here.)
    with dask.config.set({"dataframe.convert-string": False}):
        # Planning reads only headers and footers: input errors show before a cluster starts.
        ddf = read_dataset(files, in_fmt, blocksize=blocksize, encoding=encoding)
        column = find_text_column(ddf.columns, text_column, source)
        if id_column is not None and id_column not in ddf.columns:
            raise missing_column(source, id_column, "id")
        meta = tagged_meta(ddf._meta, themes, explain)
        _check_no_clash(ddf.columns, output_columns(themes, explain), source)
        summary = DatasetSummary(
            input=source, output=str(output), text_column=column, partitions=ddf.npartitions
        )
        with dask_client(scheduler, n_workers, timeout) as client:
            summary.workers = len(client.nthreads())
            temporary = _temporary_directory(target)
            try:
                counts = ddf.map_partitions(
                    tag_and_write_partition,
                    path,
                    column,
                    explain,
                    chunk_size,
                    str(temporary),
                    out_fmt,
                    themes,
                    polarities,
                    parquet_schema(meta) if out_fmt == "parquet" else None,
                    meta=_counts_meta(themes, polarities),
                )
                try:
                    per_partition = counts.compute(scheduler=client)
                except Exception as exc:
                    error = _translate(exc, source)
                    if error is None:
                        raise
                    raise error from None
                _summary_from_counts(per_partition, summary, themes, polarities)
                _check_rows(summary, per_partition, files, in_fmt, temporary, out_fmt)
                _move_into_place(temporary, target)
            except BaseException:
                shutil.rmtree(temporary, ignore_errors=True)
                raise
    summary.seconds = time.perf_counter() - started
    return summary


def _check_rows(
    summary: DatasetSummary,
    per_partition: pd.DataFrame,
    inputs: Sequence[Path],
    in_fmt: str,
    directory: Path,
    out_fmt: str,
) -> None:
    """Refuse to publish an output whose row counts do not add up."""
    parts = sorted(directory.glob(f"part.*.{out_fmt}"), key=_natural_key)
    if len(parts) != summary.partitions or len(per_partition) != summary.partitions:
        raise ClassifierError(
            f"{summary.output}: {len(parts)} part files written for {summary.partitions} "
            "partitions; nothing was written"
        )
    if in_fmt == "parquet":
        expected = _parquet_rows(inputs)  # from the files' footers, independently of Dask
        if expected != summary.rows_read:
            raise ClassifierError(
                f"{summary.input}: {expected:,} rows in the files but {summary.rows_read:,} "
                "tagged; nothing was written"
            )
    # A CSV part holds exactly its partition's rows; a Parquet part's footer says so itself.
    summary.rows_written = _parquet_rows(parts) if out_fmt == "parquet" else summary.rows_read
    if summary.rows_written != summary.rows_read:
        raise ClassifierError(
            f"{summary.output}: {summary.rows_written:,} rows written for "
            f"{summary.rows_read:,} read; nothing was written"
        )
