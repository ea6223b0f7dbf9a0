"""Inter-rater agreement between the first labels and a blind second labelling pass.

    python training_data/agreement.py            # prints a Markdown report
    python training_data/agreement.py --update training_data/README.md

The second labeller saw only the codebook and the texts (and, for real rows, the FFT question),
never the first labels. The sample was drawn at random from the corpus (seed 20261122).
Agreement is computed against the FIRST labels, before any adjudication.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import cohen_kappa_score

from classifier.codebook import load_codebook
from classifier.training import update_readme_block

HERE = Path(__file__).resolve().parent
SECOND_PASS = HERE / "raw" / "blind_second_pass.jsonl"
FIRST_PASS = HERE / "raw" / "blind_first_labels.jsonl"


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def agreement_report() -> str:
    themes = load_codebook().theme_ids
    first = {row["id"]: row for row in read_jsonl(FIRST_PASS)}
    second = {row["id"]: row["labels"] for row in read_jsonl(SECOND_PASS)}
    ids = [i for i in first if i in second]
    a = [first[i]["labels"] for i in ids]
    b = [second[i] for i in ids]
    sources = [first[i]["source"] for i in ids]

    lines = [
        f"Blind second pass over {len(ids)} randomly sampled records "
        f"({sources.count('authored')} authored, {sources.count('nhs-fft')} real NHS rows).",
        "",
        "| theme | first pass tagged | second pass tagged | Cohen's kappa (presence) | "
        "kappa (absent/strength/concern) | polarity agreement (both tagged) |",
        "|---|---|---|---|---|---|",
    ]
    for theme in themes:
        pa = np.array([theme in x for x in a])
        pb = np.array([theme in x for x in b])
        three_a = [x.get(theme, "absent") for x in a]
        three_b = [x.get(theme, "absent") for x in b]
        both = [k for k in range(len(ids)) if pa[k] and pb[k]]
        same = sum(a[k][theme] == b[k][theme] for k in both)
        polarity = f"{same / len(both):.2f} ({same}/{len(both)})" if both else "–"
        lines.append(
            f"| {theme} | {pa.sum()} | {pb.sum()} | {cohen_kappa_score(pa, pb):.2f} | "
            f"{cohen_kappa_score(three_a, three_b):.2f} | {polarity} |"
        )
    kappas = [cohen_kappa_score([t in x for x in a], [t in x for x in b]) for t in themes]
    exact = np.mean([x == y for x, y in zip(a, b, strict=True)])
    lines += [
        "",
        f"Mean presence kappa {np.mean(kappas):.2f}; identical label sets on {exact:.0%} of "
        "records.",
    ]
    for source in ("authored", "nhs-fft"):
        idx = [k for k, s in enumerate(sources) if s == source]
        ks = [cohen_kappa_score([t in a[k] for k in idx], [t in b[k] for k in idx]) for t in themes]
        lines.append(f"Mean presence kappa, {source} only: {np.nanmean(ks):.2f}.")
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
