"""Batch tagging of tables: the engine behind ``classifier tag``.

:func:`tag_frame` tags one pandas DataFrame and is what a Dask user maps over partitions::

    ddf.map_partitions(tag_frame, model=model, text_column="text", meta=...)

:func:`tag_file` streams a file through it chunk by chunk, optionally over several processes,
keeping every row, in order, and writes the result atomically.
"""

from __future__ import annotations

import functools
import shlex
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from classifier._errors import ClassifierError
from classifier.io import (
    STDIO,
    ChunkWriter,
    TableReader,
    describe_column,
    detect_format,
)
from classifier.prediction import (
    MAX_CHARS,
    STATUS_EMPTY,
    STATUS_NOT_TEXT,
    STATUS_OK,
    STATUS_TRUNCATED,
    BatchScores,
)

TEXT_COLUMN_CANDIDATES = (
    "text", "feedback", "comment", "comments", "response", "free_text", "freetext", "answer",
    "review", "feedback_text", "comment_text",
)  # fmt: skip
THEMES_COLUMN = "themes"
STATUS_COLUMN = "status"
# With --pii: the kinds of personal data found in the text, and how many redaction markers it
# already had ("[Name Redacted]", "XXX"). See classifier.pii.
PII_COLUMNS = ("pii", "pii_redacted")
NESTED_KEY = "classification"  # JSON Lines output: the tagging of a record, under this key
POLARITY_MARKS = {0: "+", 1: "-"}  # index in the codebook's polarities -> mark in `themes`
# Rows per chunk: 2,000 keeps peak memory ~60 MB lower than 10,000 at the same speed (measured
# with benchmarks/run.py) and gives --jobs enough chunks to share out.
DEFAULT_CHUNK_SIZE = 2_000


def output_columns(themes: Sequence[str], explain: bool = False, pii: bool = False) -> list[str]:
    """Columns that tagging adds, in order."""
    columns = [THEMES_COLUMN]
    columns += list(themes)
    columns += [f"{theme}_score" for theme in themes]
    if explain:
        columns += [f"{theme}_evidence" for theme in themes]
    columns.append(STATUS_COLUMN)
    if pii:
        columns += list(PII_COLUMNS)
    return columns


def find_text_column(columns: Sequence[str], requested: str | None, source: str) -> str:
    """The text column: ``requested`` if given, else the one obvious candidate.

    Errors do not list the columns: in a file without a header row the "names" are the first
    row's feedback. They point to ``classifier columns``, which shows them on request.
    """
    names = [str(column) for column in columns]
    if requested is not None:
        if requested not in names:
            raise missing_column(source, requested)
        return requested
    found = [name for name in names if name.strip().lower() in TEXT_COLUMN_CANDIDATES]
    if len(found) == 1:
        return found[0]
    reason = "several candidate text columns" if found else "no obvious text column"
    raise ClassifierError(f"{source}: {reason}; pass --text-column ({columns_hint(source)})")


def columns_hint(source: str) -> str:
    """Where to see a file's columns (error messages do not list them: see find_text_column)."""
    shown = "-" if source == STDIO else shlex.quote(source)
    return f"`classifier columns {shown}` lists the columns"


def missing_column(source: str, name: str, what: str = "") -> ClassifierError:
    """The error for a column that ``source`` does not have, e.g. ``what="id"``."""
    kind = f"{what} column" if what else "column"
    return ClassifierError(f"{source}: no {kind} {describe_column(name)}; {columns_hint(source)}")


def _column_position(names: Sequence[str], name: str, what: str, source: str) -> int:
    """Where the column ``name`` is; an error if no column or several columns are named so."""
    positions = [k for k, candidate in enumerate(names) if candidate == name]
    if not positions:
        raise missing_column(source, name, what)
    if len(positions) > 1:
        raise ClassifierError(
            f"{source}: columns {_numbers(positions)} are all named {describe_column(name)}; "
            f"which is the {what} column? Rename them"
        )
    return positions[0]


def _numbers(positions: Sequence[int]) -> str:
    """Column positions for a message, counted from 1: "2 and 5", "1, 3 and 4"."""
    shown = [str(k + 1) for k in positions]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _input_names(header: list[str] | None, columns: Sequence, out_fmt: str, source: str):
    """The input's column names as the file has them, and whether each is used once.

    Output keeps them: an empty or repeated name is written as it was, not as pandas renames it
    ("Unnamed: 2", "x.1"). JSON Lines keys and Parquet fields must be unique, though.
    """
    names = [str(c) for c in columns]
    if header is not None and len(header) == len(names):
        names = list(header)
    unique = len(set(names)) == len(names)
    if not unique and out_fmt in ("jsonl", "parquet"):
        repeated = next(name for name in names if names.count(name) > 1)
        where = _numbers([k for k, name in enumerate(names) if name == repeated])
        raise ClassifierError(
            f"{source}: columns {where} are all named {describe_column(repeated)}; "
            f"{'JSON Lines' if out_fmt == 'jsonl' else 'Parquet'} output needs one name per "
            "column: rename them, or write .csv, .tsv or .xlsx"
        )
    return names, unique


def scores_frame(
    batch: BatchScores, explain: bool = False, index: pd.Index | None = None
) -> pd.DataFrame:
    """Flat, spreadsheet-friendly columns (see :func:`output_columns`) for a batch of texts.

    Built column by column from the arrays: no per-text Python objects.
    """
    from classifier.prediction import round_scores

    detected, is_positive = batch.labels_per_text()
    presence = batch.per_text(batch.presence, np.nan)
    # A row's `themes` cell depends only on its themes' states (absent, +, -): each distinct
    # combination's text is built once, not a string concatenation per row and theme.
    states = np.where(detected, np.where(is_positive, 1, 2), 0).astype(np.int8)
    if states.shape[1] <= 39:  # one integer per row (base 3) sorts far faster than rows
        keys = states.astype(np.int64) @ 3 ** np.arange(states.shape[1], dtype=np.int64)
        _, first, which = np.unique(keys, return_index=True, return_inverse=True)
    else:
        _, first, which = np.unique(states, axis=0, return_index=True, return_inverse=True)
    combinations = states[first]
    texts = [
        "; ".join(
            f"{theme}{POLARITY_MARKS[state - 1]}"
            for theme, state in zip(batch.themes, combination, strict=True)
            if state
        )
        for combination in combinations.tolist()
    ]
    labels = np.array(texts, dtype=object)[which.ravel()]
    polarity_columns, score_columns, evidence_columns = {}, {}, {}
    for col, theme in enumerate(batch.themes):
        found = detected[:, col]
        polarity = np.where(is_positive[:, col], 0, 1)
        names = np.array(batch.polarities, dtype=object)[polarity]
        polarity_columns[theme] = np.where(found, names, "")
        # Python's round (correctly rounded decimals), as the JSON output shows the full score.
        score_columns[f"{theme}_score"] = round_scores(presence[:, col])
        if explain:
            evidence_columns[f"{theme}_evidence"] = [
                batch.evidence.get((row, col), "") for row in batch.row.tolist()
            ]
    columns = {
        THEMES_COLUMN: labels,
        **polarity_columns,
        **score_columns,
        **evidence_columns,
        STATUS_COLUMN: batch.status,
    }
    return pd.DataFrame(columns, index=index, columns=output_columns(batch.themes, explain))


def _check_no_clash(columns: Iterable[str], added: Sequence[str], source: str) -> None:
    clash = sorted(set(map(str, columns)) & set(added))
    if clash:
        raise ClassifierError(
            f"{source}: input already has column(s) {', '.join(clash)}, which tagging adds; "
            "rename them first"
        )


def tag_frame(
    frame: pd.DataFrame,
    model,
    text_column: str,
    explain: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    pii: bool = False,
    redact: bool = False,
) -> pd.DataFrame:
    """Return ``frame`` with the tagging columns appended; rows, order and index unchanged.

    ``pii`` adds the :data:`PII_COLUMNS`; ``redact`` writes ``text_column`` with the personal
    data it holds replaced by its kind (the only input column that changes).

    Examples
    --------
    >>> from classifier.persistence import load_model
    >>> frame = pd.DataFrame({"feedback": ["I felt heard.", None, 3]})
    >>> tag_frame(frame, load_model(), "feedback")["status"].tolist()
    ['ok', 'empty', 'not_text']
    """
    _check_no_clash(frame.columns, output_columns(model.themes_, explain, pii), "input")
    texts = frame[text_column].tolist()
    # range(..., max(n, 1)): an empty frame still gets its (empty) tagging columns. The input
    # columns are joined once, whole: slicing and re-joining them could change their dtypes.
    chunks = [
        tag_chunk(model, texts[start : start + chunk_size], explain, pii=pii, redact=redact)
        for start in range(0, max(len(texts), 1), chunk_size)
    ]
    added = pd.concat([chunk.added for chunk in chunks], ignore_index=True)
    found = None
    if pii or redact:
        found = {name: [v for c in chunks for v in c.pii[name]] for name in chunks[0].pii}
    whole = TaggedChunk(chunks[0].themes, chunks[0].counts, added=added, pii=found)
    return output_rows(frame, whole, text_column)


@dataclass
class TagSummary:
    """What ``classifier tag`` did, printed at the end and written by ``--summary``."""

    input: str
    output: str
    text_column: str = ""
    rows_read: int = 0
    rows_tagged: int = 0
    rows_with_theme: int = 0
    rows_no_theme: int = 0
    rows_empty_text: int = 0
    rows_not_text: int = 0
    rows_truncated: int = 0  # tagged on their first MAX_CHARS characters (counted as tagged too)
    theme_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    # With --pii: rows in which each kind of personal data was found (None: not looked for).
    pii_counts: dict[str, int] | None = None
    # CSV/TSV rows with fewer fields than the header (their missing cells are read as empty).
    short_rows: int = 0
    first_short_row_line: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def add(self, batch: BatchScores) -> None:
        """Count one batch's rows, statuses and detected themes."""
        self.rows_read += len(batch)
        statuses = Counter(batch.status)
        self.rows_tagged += statuses[STATUS_OK] + statuses[STATUS_TRUNCATED]
        self.rows_truncated += statuses[STATUS_TRUNCATED]
        self.rows_empty_text += statuses[STATUS_EMPTY]
        self.rows_not_text += statuses[STATUS_NOT_TEXT]
        # Per text, not per distinct text: a repeated comment counts every time.
        detected, is_positive = batch.labels_per_text()
        with_theme = int(detected.any(axis=1).sum())
        self.rows_with_theme += with_theme
        self.rows_no_theme += statuses[STATUS_OK] + statuses[STATUS_TRUNCATED] - with_theme
        positive, negative = batch.polarities
        for col, theme in enumerate(batch.themes):
            counts = self.theme_counts.setdefault(theme, dict.fromkeys(batch.polarities, 0))
            counts[positive] += int((detected[:, col] & is_positive[:, col]).sum())
            counts[negative] += int((detected[:, col] & ~is_positive[:, col]).sum())

    def add_pii(self, found: Sequence[str]) -> None:
        """Count one batch's ``pii`` column: kinds found per row, joined by "; "."""
        from classifier.pii import KINDS

        counts = self.pii_counts = self.pii_counts or dict.fromkeys(KINDS, 0)
        for kinds in found:
            for kind in kinds.split("; ") if kinds else ():
                counts[kind] += 1

    def merge(self, other: TagSummary) -> None:
        """Add the counts of another (partial) summary, e.g. one chunk's."""
        for name in (
            "rows_read", "rows_tagged", "rows_with_theme", "rows_no_theme", "rows_empty_text",
            "rows_not_text", "rows_truncated",
        ):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for theme, counts in other.theme_counts.items():
            mine = self.theme_counts.setdefault(theme, dict.fromkeys(counts, 0))
            for polarity, count in counts.items():
                mine[polarity] += count
        if other.pii_counts is not None:
            mine_pii = self.pii_counts = self.pii_counts or dict.fromkeys(other.pii_counts, 0)
            for kind, count in other.pii_counts.items():
                mine_pii[kind] = mine_pii.get(kind, 0) + count

    def warnings(self) -> list[str]:
        """What the user should know about the input, one line each (never its text)."""
        found = []
        if self.short_rows:
            found.append(
                f"Warning: {self.input}: {self.short_rows:,} row(s) had fewer fields than the "
                f"header (first at line {self.first_short_row_line:,}); their missing cells are "
                "empty"
            )
        if self.rows_truncated:
            found.append(
                f"Warning: {self.input}: {self.rows_truncated:,} text(s) over {MAX_CHARS:,} "
                f"characters were tagged on their first {MAX_CHARS:,} (status 'truncated')"
            )
        return found

    def render(self) -> str:
        rate = self.rows_read / self.seconds if self.seconds else 0.0
        lines = [
            f"Tagged {self.input} -> {self.output} (text column: {self.text_column})",
            f"  rows read            {self.rows_read:>10,}",
            f"  rows tagged          {self.rows_tagged:>10,}",
            f"    with a theme       {self.rows_with_theme:>10,}",
            f"    with no theme      {self.rows_no_theme:>10,}",
            f"  rows not tagged      {self.rows_empty_text + self.rows_not_text:>10,}"
            f"   (empty text {self.rows_empty_text:,}, not text {self.rows_not_text:,})",
            f"  time                 {self.seconds:>10.1f} s   ({rate:,.0f} rows/s)",
            "  theme            strength    concern",
        ]
        for theme, counts in self.theme_counts.items():
            values = list(counts.values())
            lines.append(f"  {theme:<15}{values[0]:>10,} {values[1]:>10,}")
        if self.pii_counts is not None:
            lines.append("  personal data found (rows)")
            lines += [f"    {kind:<18}{n:>10,}" for kind, n in self.pii_counts.items()]
        return "\n".join(lines)


@dataclass
class TaggedChunk:
    """One chunk's tagging in the form a worker hands back: plain columns, cheap to pickle.

    ``added`` holds the flat output columns (``nested`` is None), or, for JSON Lines output,
    ``nested`` holds one ``Prediction.to_dict()`` per row (``added`` is None).
    :func:`output_rows` joins it to the input chunk.
    """

    themes: tuple[str, ...]
    counts: TagSummary
    added: pd.DataFrame | None = None
    nested: list[dict] | None = None
    # With --pii: the PII_COLUMNS; with --redact: "redacted_text", the text to write instead.
    pii: dict[str, list] | None = None


def tag_chunk(
    model,
    texts: list,
    explain: bool = False,
    nested: bool = False,
    pii: bool = False,
    redact: bool = False,
) -> TaggedChunk:
    """Classify one chunk of texts and turn the result into output columns and counts.

    ``pii`` also looks for personal data (the :data:`PII_COLUMNS`); ``redact`` gives the texts
    with what was found replaced by its kind (``[EMAIL]``).
    """
    batch = model.score_batch(texts, explain=explain)
    counts = TagSummary(input="", output="")
    counts.add(batch)
    found = None
    if pii or redact:
        from classifier.pii import pii_columns

        columns = pii_columns(texts, redact=redact, finder=_pii_finder())
        found = {name: columns[name] for name in PII_COLUMNS} if pii else {}
        if redact:
            found["redacted_text"] = columns["redacted_text"]
        if pii:
            counts.add_pii(found["pii"])
    if nested:
        nested_rows = [p.to_dict() for p in batch.predictions()]
        return TaggedChunk(batch.themes, counts, nested=nested_rows, pii=found)
    return TaggedChunk(batch.themes, counts, added=scores_frame(batch, explain), pii=found)


@functools.cache  # one finder per process: its spaCy pipeline is built once
def _pii_finder():
    from classifier.pii import PiiFinder

    return PiiFinder()


def output_rows(
    chunk: pd.DataFrame, tagged: TaggedChunk, text_column: str | None = None
) -> pd.DataFrame | list[dict]:
    """The output rows of one input chunk: the one place where input and tagging are joined.

    Flat formats get the chunk's columns followed by the tagging columns, index unchanged;
    JSON Lines gets one record per row with the tagging nested under ``classification``. With
    PII columns, they follow (top-level keys in JSON Lines); with redaction, ``text_column``
    holds the redacted texts.
    """
    found = tagged.pii or {}
    if "redacted_text" in found:
        chunk = chunk.assign(**{text_column: found["redacted_text"]})
    extra = {name: found[name] for name in PII_COLUMNS if name in found}
    if tagged.nested is not None:
        records = [
            {**row, NESTED_KEY: classification}
            for row, classification in zip(chunk.to_dict("records"), tagged.nested, strict=True)
        ]
        for name, values in extra.items():
            for record, value in zip(records, values, strict=True):
                record[name] = value
        return records
    added = tagged.added
    if extra:
        added = added.assign(**extra)
    return pd.concat([chunk, added.set_axis(chunk.index)], axis=1)


def _tag_chunk_in_worker(
    model_path: str, texts: list, explain: bool, nested: bool, pii: bool, redact: bool
) -> TaggedChunk:
    # Runs in a joblib worker: load_model is cached per process, so each loads the model once,
    # and the worker, not the main process, builds the output rows.
    from classifier.persistence import load_model

    model = load_model(model_path)
    _freeze_long_lived_objects()
    return tag_chunk(model, texts, explain, nested, pii, redact)


# The model of a forked worker: set in the main process just before forking, inherited.
_FORKED_MODEL = None


def _can_fork() -> bool:
    # Linux only: macOS may crash in forked children of a process that used some system
    # libraries, and Windows has no fork; those keep joblib's (loky) workers.
    import multiprocessing

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def _forked_pool(model, jobs: int):
    """A pool of ``jobs`` processes forked from this one, which has the model loaded."""
    import multiprocessing

    global _FORKED_MODEL
    _FORKED_MODEL = model
    return multiprocessing.get_context("fork").Pool(jobs, initializer=_quiet_worker)


def _quiet_worker() -> None:
    # The main process handles Ctrl-C and SIGTERM (and removes its files); a worker ignores
    # Ctrl-C sent to the whole process group and dies plainly when the pool is terminated.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "SIGHUP"):  # (the terminal closing reaches the whole process group)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _tag_chunk_forked(texts: list, explain: bool, nested: bool, pii: bool, redact: bool):
    return tag_chunk(_FORKED_MODEL, texts, explain, nested, pii, redact)


def _in_order(pool, tasks: Iterable[list], options: tuple, ahead: int):
    """Results of ``tasks`` from the pool, in task order, with at most ``ahead`` in flight."""
    waiting: deque = deque()
    for texts in tasks:
        waiting.append(pool.apply_async(_tag_chunk_forked, (texts, *options)))
        if len(waiting) >= ahead:
            yield waiting.popleft().get()
    while waiting:
        yield waiting.popleft().get()


@contextmanager
def _terminating(pool):
    """Stop and reap a pool's workers however the block ends; nothing when there is none."""
    try:
        yield
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


@functools.cache  # once per process: freezing again would also freeze a chunk's leftovers
def _freeze_long_lived_objects() -> None:
    # The model's vocabularies and the imported libraries are hundreds of thousands of objects
    # that live as long as the process. Tagging allocates millions of short-lived ones, and every
    # full garbage collection walked all of them again. gc.freeze moves what exists now out of
    # the collector's sight (measured: see benchmarks/run.py). Batch processes only: a library
    # user's interpreter is left alone.
    import gc

    gc.freeze()


def tag_file(
    input_path: str,
    output_path: str,
    model_path: str | Path | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
    explain: bool = False,
    jobs: int = 1,
    chunk_size: int | None = None,
    encoding: str = "utf-8",
    input_format: str | None = None,
    output_format: str | None = None,
    force: bool = False,
    progress: Callable[[int, float | None], None] | None = None,
    pii: bool = False,
    redact: bool = False,
    sheet: str | int | None = None,
) -> TagSummary:
    """Tag every row of ``input_path`` and write ``output_path``; return the summary.

    Every input column is kept unchanged and in order; the tagging columns follow. Rows keep their
    count and order. Nothing is written to ``output_path`` unless the whole run succeeds.
    ``sheet`` chooses an Excel input's sheet (a name or a 0-based position; default the first).
    """
    from classifier.persistence import default_model_path, load_model

    if input_path != STDIO and output_path != STDIO:
        if Path(input_path).resolve() == Path(output_path).resolve():
            raise ClassifierError(f"{output_path}: the output would overwrite the input")
    in_fmt = detect_format(input_path, input_format, default="csv")
    out_fmt = detect_format(output_path, output_format, default="jsonl")
    model_path = str(model_path or default_model_path())
    nested = out_fmt == "jsonl"
    fork = jobs > 1 and _can_fork()
    pool = None
    if jobs == 1 or fork:
        model = load_model(model_path)
        if fork:
            # Everything the workers need is made once, here, and shared by forking: the
            # imports, the model, the spaCy pipeline (and the PII finder), instead of each
            # worker starting Python and loading them again (~1.5 s of CPU per worker).
            model.preprocessor_.analyse_ids([])
            if pii or redact:
                _pii_finder().find_many(["Dr Smith"])
        _freeze_long_lived_objects()
        if fork:
            pool = _forked_pool(model, jobs)  # before the reader: no reader thread is forked
    # Elsewhere (no fork) the main process never loads the model: the loky workers do (in
    # parallel), and the themes arrive with the first chunk, before anything is written.

    reader = TableReader(
        input_path,
        in_fmt,
        chunk_size=chunk_size or DEFAULT_CHUNK_SIZE,
        encoding=encoding,
        sheet=sheet,
    )
    writer = ChunkWriter(output_path, out_fmt, force=force)
    summary = TagSummary(input=input_path, output=output_path)
    started = time.perf_counter()
    pending: deque[pd.DataFrame] = deque()

    def tasks():
        names, unique = None, True
        for chunk in reader:
            if names is None:
                names, unique = _input_names(reader.header, chunk.columns, out_fmt, input_path)
                found = find_text_column(names, text_column, input_path)
                position = _column_position(names, found, "text", input_path)
                summary.text_column = found if unique else chunk.columns[position]
                if id_column is not None:
                    _column_position(names, id_column, "id", input_path)
                # Repeated names stay renamed inside ("x.1") and are written as they were.
                writer.keep_input_layout(None if unique else names, reader.column_types)
            if unique:
                chunk.columns = names
            pending.append(chunk)
            yield chunk[summary.text_column].tolist()

    # Any exception, Ctrl-C or SIGTERM in the block removes the partial output (see ChunkWriter).
    with writer, _terminating(pool):
        if jobs == 1:
            results = (tag_chunk(model, texts, explain, nested, pii, redact) for texts in tasks())
        elif pool is not None:
            options = (explain, nested, pii, redact)
            results = _in_order(pool, tasks(), options, ahead=2 * jobs)
        else:
            from joblib import Parallel, delayed

            results = Parallel(n_jobs=jobs, return_as="generator", pre_dispatch="2*n_jobs")(
                delayed(_tag_chunk_in_worker)(model_path, texts, explain, nested, pii, redact)
                for texts in tasks()
            )
        for tagged in results:
            chunk = pending.popleft()
            if summary.rows_read == 0:
                added = output_columns(tagged.themes, explain, pii)
                if nested:  # JSON Lines adds one key beside the input's
                    added += [NESTED_KEY]
                _check_no_clash(chunk.columns, added, input_path)
            summary.merge(tagged.counts)
            rows = output_rows(chunk, tagged, summary.text_column)
            if nested:
                writer.write(chunk, records=rows)
            else:
                writer.write(rows)
            if progress is not None:
                progress(summary.rows_read, reader.progress)
        if summary.rows_read == 0 and not summary.text_column:
            raise ClassifierError(f"{input_path}: no rows")
        writer.commit()
    summary.short_rows = reader.short_rows
    summary.first_short_row_line = reader.first_short_row_line
    summary.seconds = time.perf_counter() - started
    return summary
