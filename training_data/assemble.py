"""Assemble training_data/corpus.jsonl from the raw labelled files in training_data/raw/.

Run from the repository root (needs ../shared/data/nhs_mh_feedback.csv for the real texts):

    python training_data/assemble.py

What it does, deterministically:
1. reads the authored texts (raw/authored_*.jsonl: text + labels, written one by one) and the
   labels of the real NHS rows (raw/nhs_labels_*.jsonl: comment_id + labels), joining the latter
   to their text in the shared CSV;
2. drops exact duplicates and near-duplicates (word-trigram Jaccard >= 0.7), keeping the first
   occurrence (real rows come first, so a real text is never dropped in favour of an authored one);
3. keeps the split of every record already in corpus.jsonl (the test split is fixed once
   published) and assigns new records to train/test by iterative stratification over the 12
   theme x polarity cells and the source (seed 0, 20% test);
4. writes corpus.jsonl.

Label corrections from adjudication (raw/adjudicated.jsonl: id + labels) replace the first
labels of those records; they never move a record between splits.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from classifier.data import assign_split, near_duplicate_pairs, write_corpus

HERE = Path(__file__).resolve().parent
SHARED_CSV = HERE.parent.parent / "shared" / "data" / "nhs_mh_feedback.csv"


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main(shared_csv: Path = SHARED_CSV) -> None:
    nhs = pd.read_csv(shared_csv, dtype=str, keep_default_na=False)
    by_id = nhs.set_index("comment_id")
    records = []
    for path in sorted((HERE / "raw").glob("nhs_labels_*.jsonl")):
        for row in read_jsonl(path):
            source_row = by_id.loc[row["comment_id"]]
            text = source_row["text"]
            if not text.strip():
                continue
            records.append(
                {
                    "id": row["comment_id"],
                    "text": text,
                    "labels": row["labels"],
                    "source": "nhs-fft",
                    "question": source_row["question"],
                }
            )
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
    corpus["split"] = ""

    dropped = {j for _, j, _ in near_duplicate_pairs(corpus["text"].tolist())}
    print(
        f"{len(corpus)} records read; {len(dropped)} duplicates or near-duplicates dropped",
        file=sys.stderr,
    )
    corpus = corpus.drop(index=sorted(dropped)).reset_index(drop=True)
    # Dropping j of each pair can leave a pair whose first member was itself dropped; re-check.
    assert not near_duplicate_pairs(corpus["text"].tolist())

    adjudicated = HERE / "raw" / "adjudicated.jsonl"
    if adjudicated.is_file():
        corrections = {row["id"]: row["labels"] for row in read_jsonl(adjudicated)}
        corpus["labels"] = [
            corrections.get(i, labels)
            for i, labels in zip(corpus["id"], corpus["labels"], strict=True)
        ]
        print(f"{len(corrections)} adjudicated label sets applied", file=sys.stderr)

    existing = HERE / "corpus.jsonl"
    known = {}
    if existing.is_file():
        known = {row["id"]: row["split"] for row in read_jsonl(existing)}
    corpus["split"] = corpus["id"].map(known).fillna("")
    new = corpus["split"] == ""
    if new.any():
        corpus.loc[new, "split"] = assign_split(corpus[new], test_size=0.2, random_state=0)
    write_corpus(corpus, HERE / "corpus.jsonl")
    print(corpus.groupby(["source", "split"]).size().to_string(), file=sys.stderr)


if __name__ == "__main__":
    main()
