"""Retraining on the shipped corpus plus a researcher's coded rows (``classifier train --add``).

The coded tables (:mod:`classifier.labels`) become corpus records with source
``coded:<file name>`` and a split: the file's own ``split`` column when it has a valid one, else
20% test assigned by :func:`classifier.data.assign_split` (seed 0, stratified over theme x polarity
cells and the file). They are written, with the base corpus, to ``training-corpus.jsonl`` in the
output folder and trained on with :func:`classifier.training.train_model`, which scores every
source's test rows separately: the ``source=coded:<file name>`` rows of the card are the
researcher's own held-out rows. The card lists the files that went in and their row counts.

Rows that ``classifier review`` chose for being uncertain (its ``review_reason`` column, any reason
but ``random sample``) get ``selection: "targeted"``, as the corpus's own enriched rows do: they
are trained on but left out of the calibration, which must see rows that look like an export.

A coded text that is also in the base corpus (same words after
:func:`classifier.data.normalise_for_duplicates`) replaces the base record, so the coder's reading
wins and no text is both trained and tested on; repeated coded texts are kept once.

With a codebook other than the packaged one, the shipped corpus (labelled with the packaged
codebook) is left out unless ``corpus_path`` gives a base corpus labelled with it: the model is
then trained on the coded rows alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from classifier._errors import ClassifierError
from classifier._files import write_text_atomically
from classifier.codebook import load_codebook
from classifier.data import (
    DEFAULT_CORPUS_PATH,
    assign_split,
    normalise_for_duplicates,
    read_corpus,
    write_corpus,
)
from classifier.labels import CodedTable, LabelScheme, read_coded
from classifier.rendering import render_card
from classifier.review import RANDOM_REASON, REASON_COLUMN

COMBINED_CORPUS = "training-corpus.jsonl"
CODED_SOURCE = "coded:{name}"
TEST_SIZE = 0.2
SPLIT_SEED = 0


def coded_records(tables: Sequence[CodedTable], codebook) -> tuple[pd.DataFrame, list[dict]]:
    """Corpus records for coded tables (one frame) and a count summary per file.

    Exact repeats (normalised text) within and across the files are kept once, first seen first.
    """
    records, summaries, seen = [], [], set()
    names = [Path(table.path).name for table in tables]
    for name in names:
        if names.count(name) > 1:
            raise ClassifierError(
                f"two --add files are named {name}; their rows would share a source: rename one"
            )
    for table, name in zip(tables, names, strict=True):
        source = CODED_SOURCE.format(name=name)
        repeats = 0
        rows = []
        reasons = (
            table.frame[REASON_COLUMN].astype(str).tolist()
            if REASON_COLUMN in table.frame.columns
            else None
        )
        for position, (text, labels) in enumerate(zip(table.texts, table.labels, strict=True)):
            key = normalise_for_duplicates(str(text))
            if key in seen:
                repeats += 1
                continue
            seen.add(key)
            record = {
                "id": f"{source}:{table.rows[position]}",
                "text": str(text),
                "labels": dict(labels),
                "source": source,
                "split": table.splits[position] if table.splits is not None else None,
            }
            if table.ids is not None:
                record["coded_id"] = table.ids[position]
            if reasons is not None:
                record["selection"] = (
                    "random" if reasons[position].strip() == RANDOM_REASON else "targeted"
                )
            rows.append(record)
        frame = pd.DataFrame.from_records(rows, columns=["id", "text", "labels", "source", "split"])
        if table.splits is None and len(frame):
            frame["split"] = _split(frame, codebook)
        for extra in ("coded_id", "selection"):
            if rows and extra in rows[0]:
                frame[extra] = [record[extra] for record in rows]
        records.append(frame)
        summaries.append(
            {
                "file": name,
                "source": source,
                "sha256": _sha256(table.path),
                "rows_read": table.n_read,
                "rows_added": len(frame),
                "train": int((frame["split"] == "train").sum()) if len(frame) else 0,
                "test": int((frame["split"] == "test").sum()) if len(frame) else 0,
                "split_from": "the file's split column"
                if table.splits is not None
                else (f"assign_split, {TEST_SIZE:.0%} test, seed {SPLIT_SEED}"),
                "skipped": {**table.skipped, **({"repeated text": repeats} if repeats else {})},
                "with_a_theme": int(frame["labels"].map(bool).sum()) if len(frame) else 0,
                "chosen_by_review": (
                    int((frame["selection"] == "targeted").sum()) if "selection" in frame else 0
                ),
            }
        )
    combined = pd.concat(records, ignore_index=True) if records else pd.DataFrame()
    return combined, summaries


def _split(frame: pd.DataFrame, codebook) -> pd.Series:
    """20% test, stratified; a file too small to stratify gets a plain seeded draw."""
    try:
        return assign_split(frame, codebook, TEST_SIZE, SPLIT_SEED)
    except ValueError:
        import numpy as np

        n_test = int(round(len(frame) * TEST_SIZE))
        test = np.random.default_rng(SPLIT_SEED).permutation(len(frame))[:n_test]
        split = pd.Series("train", index=frame.index)
        split.iloc[test] = "test"
        return split


def _sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _shipped_model_dir() -> Path:
    from classifier.persistence import DEFAULT_MODEL_PATH

    return DEFAULT_MODEL_PATH.parent.resolve()


def build_training_corpus(
    added: Sequence[str | Path],
    output_path: str | Path,
    corpus_path: str | Path | None = None,
    codebook_path: str | Path | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> dict:
    """Write the base corpus plus the coded rows of ``added`` as one corpus; return what went in.

    Parameters
    ----------
    added : sequence of path
        Coded tables (see :mod:`classifier.labels`), read with the codebook's themes.
    output_path : path
        The combined corpus (JSON Lines) to write.
    corpus_path : path, optional
        The base corpus; default: the shipped corpus when the codebook is the packaged one's
        (same themes and polarities), else none.
    codebook_path : path, optional
        The codebook the labels follow; default: the packaged one.
    text_column, id_column : str, optional
        Columns of the coded tables (found as ``classifier tag`` finds them when not given).
    log : callable

    Returns
    -------
    dict
        ``base`` (``path``, ``sha256``, ``rows``, ``replaced_by_coded``) or None, and ``added``
        (one count summary per file: rows read, added, train, test, skipped).
    """
    codebook = load_codebook(codebook_path)
    scheme = LabelScheme.from_codebook(codebook)
    if not added:
        raise ClassifierError("nothing to add: pass --add with a coded table")
    tables = [read_coded(path, scheme, text_column, id_column) for path in added]
    for table in tables:
        for note in table.notes:
            log(f"{table.path}: {note}")
        if table.skipped:
            skipped = ", ".join(f"{count} {reason}" for reason, count in table.skipped.items())
            log(f"{table.path}: rows left out: {skipped}")
    coded, summaries = coded_records(tables, codebook)
    if coded.empty:
        raise ClassifierError("the --add files have no coded rows with text")

    base_path = Path(corpus_path) if corpus_path is not None else None
    if base_path is None:
        shipped = load_codebook(None)
        if (shipped.theme_ids, shipped.polarities) == (codebook.theme_ids, codebook.polarities):
            base_path = DEFAULT_CORPUS_PATH
        else:
            log("the shipped corpus follows another codebook: training on the coded rows only")
    base_info = None
    frames = []
    if base_path is not None:
        base = read_corpus(base_path).drop(columns=["line"])
        coded_keys = set(coded["text"].map(normalise_for_duplicates))
        replaced = base["text"].map(normalise_for_duplicates).isin(coded_keys)
        if replaced.any():
            log(f"{int(replaced.sum())} base record(s) replaced by the same text coded")
        frames.append(base[~replaced])
        base_info = {
            "path": base_path.name,
            "sha256": _sha256(base_path),
            "rows": int(len(base)),
            "replaced_by_coded": int(replaced.sum()),
        }
    frames.append(coded)
    combined = pd.concat(frames, ignore_index=True)
    write_corpus(combined, output_path)
    for summary in summaries:
        log(
            f"added {summary['file']}: {summary['rows_added']} rows "
            f"({summary['train']} train, {summary['test']} test)"
        )
    return {"base": base_info, "added": summaries}


def train_with_coded(
    added: Sequence[str | Path],
    output_dir: str | Path,
    corpus_path: str | Path | None = None,
    codebook_path: str | Path | None = None,
    cv_folds: int = 5,
    ablation: bool = True,
    params: dict | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> dict:
    """Train a new model on the base corpus plus coded tables; return its model card.

    Writes ``training-corpus.jsonl``, the model files and the card (JSON and Markdown) into
    ``output_dir``. The card's ``training_data`` gains ``base`` and ``added`` (see
    :func:`build_training_corpus`); its metrics report each ``source=coded:<file>`` test split
    apart. Refuses to write into the shipped model's folder.

    Examples
    --------
    >>> card = train_with_coded(["coded.xlsx"], "my_model", cv_folds=0)   # doctest: +SKIP
    >>> card["metrics"]["test"]["source=coded:coded.xlsx"]["micro_f1"]   # doctest: +SKIP
    0.71
    """
    from classifier.persistence import CARD_JSON, CARD_MARKDOWN
    from classifier.training import json_value, train_model

    output_dir = Path(output_dir)
    if output_dir.resolve() == _shipped_model_dir():
        raise ClassifierError(
            f"{output_dir}: is the shipped model's folder; pass another --output-dir for the "
            "retrained model"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    corpus_out = output_dir / COMBINED_CORPUS
    data = build_training_corpus(
        added, corpus_out, corpus_path, codebook_path, text_column, id_column, log
    )
    card = train_model(
        corpus_out,
        output_dir,
        codebook_path=str(codebook_path) if codebook_path else None,
        cv_folds=cv_folds,
        ablation=ablation,
        params=params,
        log=log,
    )
    card["training_data"].update(data)
    write_text_atomically(
        output_dir / CARD_JSON, json.dumps(card, indent=2, default=json_value) + "\n"
    )
    write_text_atomically(output_dir / CARD_MARKDOWN, render_card(card))
    return card
