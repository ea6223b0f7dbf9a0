"""Inter-rater agreement between blind codings of the same texts.

    python training_data/agreement.py            # prints a Markdown report
    python training_data/agreement.py --update training_data/README.md

Two rounds are reported, each computed on the codings as they were, before any adjudication:

* real rows (codebook 1.4): 500 real rows drawn at random (300 from the test split, 200 from the
  train split, old and new rows alike) were coded twice, by coders who never saw each other's
  labels nor knew which of their rows were second codings (raw/real_coding_a.jsonl and
  raw/real_coding_b.jsonl);
* the earlier round (codebook 1.2): 320 random records, authored and real, against the first
  labels of that time (raw/blind_first_labels.jsonl, raw/blind_second_pass.jsonl).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import cohen_kappa_score, f1_score

from classifier.codebook import load_codebook
from classifier.rendering import update_readme_block

HERE = Path(__file__).resolve().parent
RAW = HERE / "raw"


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def agreement_table(a: list[dict], b: list[dict], themes) -> list[str]:
    """Per-theme presence kappa, three-way kappa and polarity agreement; summary lines."""
    lines = [
        "| theme | coder 1 tagged | coder 2 tagged | Cohen's kappa (presence) | "
        "kappa (absent/strength/concern) | polarity agreement (both tagged) |",
        "|---|---|---|---|---|---|",
    ]
    kappas = []
    for theme in themes:
        pa = np.array([theme in x for x in a])
        pb = np.array([theme in x for x in b])
        three_a = [x.get(theme, "absent") for x in a]
        three_b = [x.get(theme, "absent") for x in b]
        both = [k for k in range(len(a)) if pa[k] and pb[k]]
        same = sum(a[k][theme] == b[k][theme] for k in both)
        polarity = f"{same / len(both):.2f} ({same}/{len(both)})" if both else "–"
        kappas.append(cohen_kappa_score(pa, pb))
        lines.append(
            f"| {theme} | {pa.sum()} | {pb.sum()} | {kappas[-1]:.2f} | "
            f"{cohen_kappa_score(three_a, three_b):.2f} | {polarity} |"
        )
    ma = np.array([[t in x for t in themes] for x in a], dtype=int)
    mb = np.array([[t in x for t in themes] for x in b], dtype=int)
    no_theme = [not x and not y for x, y in zip(a, b, strict=True)]
    either_empty = [not x or not y for x, y in zip(a, b, strict=True)]
    exact = np.mean([x == y for x, y in zip(a, b, strict=True)])
    micro, macro = f1_score(ma, mb, average="micro"), f1_score(ma, mb, average="macro")
    lines += [
        "",
        f"Mean presence kappa {np.mean(kappas):.2f}; coder-vs-coder micro F1 "
        f"{micro:.3f}, macro F1 {macro:.3f}; "
        f"identical label sets on {exact:.0%} of texts; both coders saw no theme in "
        f"{sum(no_theme)} of the {sum(either_empty)} texts where at least one saw none.",
    ]
    return lines


def agreement_report() -> str:
    themes = load_codebook().theme_ids
    lines = []
    first, second = RAW / "real_coding_a.jsonl", RAW / "real_coding_b.jsonl"
    if first.is_file() and second.is_file():
        a_all = {row["id"]: row["labels"] for row in read_jsonl(first)}
        b_all = {row["id"]: row["labels"] for row in read_jsonl(second)}
        ids = sorted(b_all)
        lines += [
            f"**Real rows, codebook 1.4.** Blind double coding of {len(ids)} random real rows "
            "(old and new), before adjudication:",
            "",
            *agreement_table([a_all[i] for i in ids], [b_all[i] for i in ids], themes),
            "",
        ]
    old_first, old_second = RAW / "blind_first_labels.jsonl", RAW / "blind_second_pass.jsonl"
    if old_first.is_file() and old_second.is_file():
        first_rows = {row["id"]: row for row in read_jsonl(old_first)}
        second_rows = {row["id"]: row["labels"] for row in read_jsonl(old_second)}
        ids = [i for i in first_rows if i in second_rows]
        sources = [first_rows[i]["source"] for i in ids]
        lines += [
            f"**Earlier round, codebook 1.2.** {len(ids)} random records "
            f"({sources.count('authored')} authored, {sources.count('nhs-fft')} real):",
            "",
            *agreement_table(
                [first_rows[i]["labels"] for i in ids], [second_rows[i] for i in ids], themes
            ),
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", type=Path, help="Markdown file with an agreement block")
    args = parser.parse_args()
    report = agreement_report()
    print(report)
    if args.update:
        update_readme_block(args.update, "agreement", report)


if __name__ == "__main__":
    main()
