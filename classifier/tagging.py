"""Batch tagging of tables: the engine behind ``classifier tag``.

:func:`tag_frame` tags one pandas DataFrame and is what a Dask user maps over partitions::

    ddf.map_partitions(tag_frame, model=model, text_column="text", meta=...)

:func:`tag_file` streams a file through it chunk by chunk, optionally over several processes,
keeping every row, in order, and writes the result atomically.
"""

from __future__ import annotations

import functools
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
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
    describe_columns,
    detect_format,
)
from classifier.prediction import STATUS_EMPTY, STATUS_NOT_TEXT, STATUS_OK, BatchScores

TEXT_COLUMN_CANDIDATES = (
    "text", "feedback", "comment", "comments", "response", "free_text", "freetext", "answer",
    "review", "feedback_text", "comment_text",
)  # fmt: skip
THEMES_COLUMN = "themes"
STATUS_COLUMN = "status"
POLARITY_MARKS = {0: "+", 1: "-"}  # index in the codebook's polarities -> mark in `themes`
# Rows per chunk: 2,000 keeps peak memory ~60 MB lower than 10,000 at the same speed (measured
# with benchmarks/run.py) and gives --jobs enough chunks to share out.
DEFAULT_CHUNK_SIZE = 2_000


def output_columns(themes: Sequence[str], explain: bool = False) -> list[str]:
    """Columns that tagging adds, in order."""
    columns = [THEMES_COLUMN]
    columns += list(themes)
    columns += [f"{theme}_score" for theme in themes]
    if explain:
        columns += [f"{theme}_evidence" for theme in themes]
    columns.append(STATUS_COLUMN)
    return columns


def find_text_column(columns: Sequence[str], requested: str | None, source: str) -> str:
    """The text column: ``requested`` if given, else the one obvious candidate."""
    names = [str(column) for column in columns]
    if requested is not None:
        if requested not in names:
            raise ClassifierError(
                f"{source}: no column {describe_column(requested)}; "
                f"columns are: {describe_columns(names)}"
            )
        return requested
    found = [name for name in names if name.strip().lower() in TEXT_COLUMN_CANDIDATES]
    if len(found) == 1:
        return found[0]
    reason = "several candidate text columns" if found else "no obvious text column"
    raise ClassifierError(
        f"{source}: {reason}; pass --text-column with one of: {describe_columns(names)}"
    )


def scores_frame(
    batch: BatchScores, explain: bool = False, index: pd.Index | None = None
) -> pd.DataFrame:
    """Flat, spreadsheet-friendly columns (see :func:`output_columns`) for a batch of texts.

    Built column by column from the arrays: no per-text Python objects.
    """
    detected, is_positive = batch.labels_per_text()
    presence = batch.per_text(batch.presence, np.nan)
    labels = np.full(len(batch), "", dtype=object)
    polarity_columns, score_columns, evidence_columns = {}, {}, {}
    for col, theme in enumerate(batch.themes):
        found = detected[:, col]
        polarity = np.where(is_positive[:, col], 0, 1)
        tag = np.array([f"{theme}{POLARITY_MARKS[i]}" for i in (0, 1)], dtype=object)[polarity]
        labels = np.where(found & (labels != ""), labels + "; " + tag, np.where(found, tag, labels))
        names = np.array(batch.polarities, dtype=object)[polarity]
        polarity_columns[theme] = np.where(found, names, "")
        # Python's round (correctly rounded decimals), as the JSON output shows the full score.
        score_columns[f"{theme}_score"] = [round(p, 3) for p in presence[:, col].tolist()]
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
) -> pd.DataFrame:
    """Return ``frame`` with the tagging columns appended; rows, order and index unchanged.

    Examples
    --------
    >>> from classifier.persistence import load_model
    >>> frame = pd.DataFrame({"feedback": ["I felt heard.", None]})
    >>> tag_frame(frame, load_model(), "feedback")["status"].tolist()
    ['ok', 'not_text']
    """
    _check_no_clash(frame.columns, output_columns(model.themes_, explain), "input")
    texts = frame[text_column].tolist()
    # range(..., max(n, 1)): an empty frame still gets its (empty) tagging columns. The input
    # columns are joined once, whole: slicing and re-joining them could change their dtypes.
    chunks = [
        tag_chunk(model, texts[start : start + chunk_size], explain)
        for start in range(0, max(len(texts), 1), chunk_size)
    ]
    added = pd.concat([chunk.added for chunk in chunks], ignore_index=True)
    return output_rows(frame, TaggedChunk(chunks[0].themes, chunks[0].counts, added=added))


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
    theme_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def add(self, batch: BatchScores) -> None:
        """Count one batch's rows, statuses and detected themes."""
        self.rows_read += len(batch)
        statuses = Counter(batch.status)
        self.rows_tagged += statuses[STATUS_OK]
        self.rows_empty_text += statuses[STATUS_EMPTY]
        self.rows_not_text += statuses[STATUS_NOT_TEXT]
        # Per text, not per distinct text: a repeated comment counts every time.
        detected, is_positive = batch.labels_per_text()
        with_theme = int(detected.any(axis=1).sum())
        self.rows_with_theme += with_theme
        self.rows_no_theme += statuses[STATUS_OK] - with_theme
        positive, negative = batch.polarities
        for col, theme in enumerate(batch.themes):
            counts = self.theme_counts.setdefault(theme, dict.fromkeys(batch.polarities, 0))
            counts[positive] += int((detected[:, col] & is_positive[:, col]).sum())
            counts[negative] += int((detected[:, col] & ~is_positive[:, col]).sum())

    def merge(self, other: TagSummary) -> None:
        """Add the counts of another (partial) summary, e.g. one chunk's."""
        for name in (
            "rows_read", "rows_tagged", "rows_with_theme", "rows_no_theme", "rows_empty_text",
            "rows_not_text",
        ):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for theme, counts in other.theme_counts.items():
            mine = self.theme_counts.setdefault(theme, dict.fromkeys(counts, 0))
            for polarity, count in counts.items():
                mine[polarity] += count

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


def tag_chunk(model, texts: list, explain: bool = False, nested: bool = False) -> TaggedChunk:
    """Classify one chunk of texts and turn the result into output columns and counts."""
    batch = model.score_batch(texts, explain=explain)
    counts = TagSummary(input="", output="")
    counts.add(batch)
    if nested:
        nested_rows = [p.to_dict() for p in batch.predictions()]
        return TaggedChunk(batch.themes, counts, nested=nested_rows)
    return TaggedChunk(batch.themes, counts, added=scores_frame(batch, explain))


def output_rows(chunk: pd.DataFrame, tagged: TaggedChunk) -> pd.DataFrame | list[dict]:
    """The output rows of one input chunk: the one place where input and tagging are joined.

    Flat formats get the chunk's columns followed by the tagging columns, index unchanged;
    JSON Lines gets one record per row with the tagging nested under ``classification``.
    """
    if tagged.nested is not None:
        return [
            {**row, "classification": classification}
            for row, classification in zip(chunk.to_dict("records"), tagged.nested, strict=True)
        ]
    return pd.concat([chunk, tagged.added.set_axis(chunk.index)], axis=1)


def _tag_chunk_in_worker(model_path: str, texts: list, explain: bool, nested: bool) -> TaggedChunk:
    # Runs in a joblib worker: load_model is cached per process, so each loads the model once,
    # and the worker, not the main process, builds the output rows.
    from classifier.persistence import load_model

    model = load_model(model_path)
    _freeze_long_lived_objects()
    return tag_chunk(model, texts, explain, nested)


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
) -> TagSummary:
    """Tag every row of ``input_path`` and write ``output_path``; return the summary.

    Every input column is kept unchanged and in order; the tagging columns follow. Rows keep their
    count and order. Nothing is written to ``output_path`` unless the whole run succeeds.
    """
    from classifier.persistence import default_model_path, load_model

    if input_path != STDIO and output_path != STDIO:
        if Path(input_path).resolve() == Path(output_path).resolve():
            raise ClassifierError(f"{output_path}: the output would overwrite the input")
    in_fmt = detect_format(input_path, input_format, default="csv")
    out_fmt = detect_format(output_path, output_format, default="jsonl")
    model_path = str(model_path or default_model_path())
    nested = out_fmt == "jsonl"
    if jobs == 1:
        model = load_model(model_path)
        _freeze_long_lived_objects()
    # With several processes the main one never loads the model: the workers do (in parallel),
    # and the themes arrive with the first chunk, before anything is written.

    reader = TableReader(
        input_path, in_fmt, chunk_size=chunk_size or DEFAULT_CHUNK_SIZE, encoding=encoding
    )
    writer = ChunkWriter(output_path, out_fmt, force=force)
    summary = TagSummary(input=input_path, output=output_path)
    started = time.perf_counter()
    pending: deque[pd.DataFrame] = deque()

    def tasks():
        for chunk in reader:
            if not summary.text_column:
                summary.text_column = find_text_column(chunk.columns, text_column, input_path)
                if id_column is not None and id_column not in chunk.columns:
                    raise ClassifierError(
                        f"{input_path}: no id column {describe_column(id_column)}; "
                        f"columns are: {describe_columns(chunk.columns)}"
                    )
            pending.append(chunk)
            yield chunk[summary.text_column].tolist()

    try:
        if jobs == 1:
            results = (tag_chunk(model, texts, explain, nested) for texts in tasks())
        else:
            from joblib import Parallel, delayed

            results = Parallel(n_jobs=jobs, return_as="generator", pre_dispatch="2*n_jobs")(
                delayed(_tag_chunk_in_worker)(model_path, texts, explain, nested)
                for texts in tasks()
            )
        for tagged in results:
            chunk = pending.popleft()
            if summary.rows_read == 0:
                _check_no_clash(chunk.columns, output_columns(tagged.themes, explain), input_path)
            summary.merge(tagged.counts)
            rows = output_rows(chunk, tagged)
            if nested:
                writer.write(chunk, records=rows)
            else:
                writer.write(rows)
            if progress is not None:
                progress(summary.rows_read, reader.progress)
        if summary.rows_read == 0 and not summary.text_column:
            raise ClassifierError(f"{input_path}: no rows")
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    summary.seconds = time.perf_counter() - started
    return summary
