"""Assemble training_data/corpus.jsonl from the raw labelled files in training_data/raw/.

Run from the repository root (needs ../shared/data/ for the real texts, which are not copied
into raw/):

    python training_data/assemble.py

What it does, deterministically:
1. reads the authored texts (raw/authored_*.jsonl: text + labels, written one by one) and the
   real NHS rows: those of ../shared/data/nhs_mh_feedback.csv (source ``nhs-fft``, labels in
   raw/nhs_labels_*.jsonl) and those chosen from ../shared/data/nhs_feedback_pool.csv (source
   ``nhs-pool``, listed with their fixed split in raw/pool_selection.csv);
2. applies label corrections: raw/adjudicated.jsonl (an earlier adjudication), then
   raw/real_final.jsonl, the final labels of every real row under the current codebook
   (coded, blind-double-coded on a sample, then reviewed: see the datasheet);
3. drops exact duplicates and near-duplicates (word-trigram Jaccard >= 0.7), keeping the first
   occurrence (real rows come first, so a real text is never dropped in favour of an authored one);
4. keeps the split of every record already in corpus.jsonl (the test split is fixed once
   published); pool rows take the split drawn when they were chosen; anything else new is
   assigned by iterative stratification over the 12 theme x polarity cells and the source
   (seed 0, 20% test);
5. records both blind codings on the double-coded real rows (``double_coded``), so that
   evaluation can put model-vs-coder next to coder-vs-coder agreement;
6. writes corpus.jsonl.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from classifier.data import assign_split, near_duplicate_pairs, write_corpus

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
SHARED_CSV = SHARED / "nhs_mh_feedback.csv"
POOL_CSV = SHARED / "nhs_feedback_pool.csv"


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def real_records(shared_csv: Path, pool_csv: Path) -> list[dict]:
    """The real rows: the labelled NHS mental-health file, then the rows chosen from the pool."""
    nhs = pd.read_csv(shared_csv, dtype=str, keep_default_na=False).set_index("comment_id")
    records = []
    for path in sorted((HERE / "raw").glob("nhs_labels_*.jsonl")):
        for row in read_jsonl(path):
            source_row = nhs.loc[row["comment_id"]]
            if not source_row["text"].strip():
                continue
            records.append(
                {
                    "id": row["comment_id"],
                    "text": source_row["text"],
                    "labels": row["labels"],
                    "source": "nhs-fft",
                    "question": source_row["question"],
                }
            )
    selection = HERE / "raw" / "pool_selection.csv"
    if selection.is_file():
        pool = pd.read_csv(pool_csv, dtype=str, keep_default_na=False).set_index("pool_id")
        for row in pd.read_csv(selection, dtype=str).itertuples(index=False):
            source_row = pool.loc[row.pool_id]
            records.append(
                {
                    "id": row.pool_id,
                    "text": source_row["text"],
                    "labels": {},  # every pool row has its labels in raw/real_final.jsonl
                    "source": "nhs-pool",
                    "question": source_row["question"],
                    "organisation": source_row["organisation"],
                    # "random" rows represent a real export; "targeted" ones were picked because
                    # the old model saw a likely theme (see the datasheet). Training tunes
                    # thresholds and cross-validation scores on representative rows only.
                    "selection": row.selection,
                    "split": row.split,
                }
            )
    return records


def main(shared_csv: Path = SHARED_CSV, pool_csv: Path = POOL_CSV) -> None:
    records = real_records(shared_csv, pool_csv)
    for path in sorted((HERE / "raw").glob("authored_*.jsonl")):
        batch = path.stem.split("_")[-1]
        for number, row in enumerate(read_jsonl(path), start=1):
            records.append(
                {
                    "id": f"authored-{batch}-{number:04d}",
                    "text": row["text"].strip(),
                    "labels": row["labels"],
                    "source": "authored",
                }
            )
    corpus = pd.DataFrame(records)
    if "split" not in corpus:
        corpus["split"] = ""
    drawn_split = corpus["split"].fillna("")

    finals: set[str] = set()
    for name in ("adjudicated.jsonl", "real_final.jsonl"):
        path = HERE / "raw" / name
        if path.is_file():
            corrections = {row["id"]: row["labels"] for row in read_jsonl(path)}
            if name == "real_final.jsonl":
                finals = set(corrections)
            corpus["labels"] = [
                corrections.get(i, labels)
                for i, labels in zip(corpus["id"], corpus["labels"], strict=True)
            ]
            print(f"{name}: {len(corrections)} label sets applied", file=sys.stderr)
    # Pool rows carry no labels of their own: each needs its final labels (read above).
    missing = corpus[(corpus["source"] == "nhs-pool") & ~corpus["id"].isin(finals)]
    if len(missing):
        raise SystemExit(f"{len(missing)} pool rows have no final labels in raw/real_final.jsonl")

    dropped = {j for _, j, _ in near_duplicate_pairs(corpus["text"].tolist())}
    print(
        f"{len(corpus)} records read; {len(dropped)} duplicates or near-duplicates dropped",
        file=sys.stderr,
    )
    corpus = corpus.drop(index=sorted(dropped)).reset_index(drop=True)
    drawn_split = drawn_split.drop(index=sorted(dropped)).reset_index(drop=True)
    # Dropping j of each pair can leave a pair whose first member was itself dropped; re-check.
    assert not near_duplicate_pairs(corpus["text"].tolist())

    existing = HERE / "corpus.jsonl"
    known = {}
    if existing.is_file():
        known = {row["id"]: row["split"] for row in read_jsonl(existing)}
    corpus["split"] = corpus["id"].map(known).fillna(drawn_split).replace("", pd.NA).fillna("")
    new = corpus["split"] == ""
    if new.any():
        corpus.loc[new, "split"] = assign_split(corpus[new], test_size=0.2, random_state=0)

    first, second = HERE / "raw" / "real_coding_a.jsonl", HERE / "raw" / "real_coding_b.jsonl"
    if first.is_file() and second.is_file():
        a = {row["id"]: row["labels"] for row in read_jsonl(first)}
        b = {row["id"]: row["labels"] for row in read_jsonl(second)}
        corpus["double_coded"] = [
            {"first": a[i], "second": b[i]} if i in b else float("nan") for i in corpus["id"]
        ]
    write_corpus(corpus, HERE / "corpus.jsonl")
    print(corpus.groupby(["source", "split"]).size().to_string(), file=sys.stderr)


if __name__ == "__main__":
    main()
