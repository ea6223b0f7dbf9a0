"""Accuracy and speed of the PII finder (classifier/pii.py); prints Markdown tables.

    python benchmarks/pii_eval.py                  # dev and test accuracy, then speed (~1 min)
    python benchmarks/pii_eval.py --split dev      # dev only (what the patterns were written on)
    python benchmarks/pii_eval.py --no-speed       # accuracy only (seconds)
    python benchmarks/pii_eval.py --errors dev     # ... and list dev errors (texts are printed!)
    python benchmarks/pii_eval.py --cli            # ... and `classifier tag` with and without --pii

Accuracy is measured on training_data/pii/pii_labelled.jsonl (see its README). A found span
counts as correct when its kind matches and it overlaps a gold span of that kind; a gold span
counts as found when a found span of its kind overlaps it. Precision and recall per kind, then
over all kinds (micro-averaged); "markers exact" is the share of texts whose count of
already-redacted markers equals the gold count.

Speed: median microseconds per text of ``pii_columns`` against tagging the same texts with the
shipped model (``load_model().score_batch``), both in batches of 2,000 texts, over (a) 20,000
real texts from ../shared/data/nhs_feedback_pool.csv (the pool repeated to reach 20,000) and
(b) the labelled set. Each run is a fresh process, as each ``classifier tag`` run is (see
speed_table); wall-clock and CPU time are both reported, as medians of --repeats runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifier.pii import KINDS, PiiFinder, pii_columns  # noqa: E402

LABELLED = ROOT / "training_data" / "pii" / "pii_labelled.jsonl"
POOL = ROOT.parent / "shared" / "data" / "nhs_feedback_pool.csv"
BATCH = 2_000
TARGET_RECALL = {"email": 0.95, "phone": 0.95, "nhs_number": 0.95, "postcode": 0.95, "name": 0.80}
TARGET_PRECISION = 0.90
TARGET_OVERHEAD = 0.20


def read_labelled(path: Path = LABELLED) -> list[dict]:
    """The labelled records (one JSON object per line)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _overlaps(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(records: list[dict], finder: PiiFinder | None = None) -> dict:
    """Counts behind precision and recall per kind, and marker accuracy, for ``records``.

    Returns
    -------
    dict
        ``kinds``: kind -> {"found", "found_correct", "gold", "gold_found"};
        ``markers_exact``: texts whose marker count is right; ``texts``: number of texts;
        ``errors``: (record id, "missed"/"false", kind, start, end) for listing.
    """
    finder = PiiFinder() if finder is None else finder
    results = finder.analyse_many([r["text"] for r in records])
    counts = {kind: Counter() for kind in KINDS}
    errors = []
    exact = 0
    for record, (spans, redacted) in zip(records, results, strict=True):
        gold = [(s["kind"], s["start"], s["end"]) for s in record["spans"]]
        found = [(s.kind, s.start, s.end) for s in spans]
        for kind, start, end in found:
            ok = any(k == kind and _overlaps((start, end), (s, e)) for k, s, e in gold)
            counts[kind]["found"] += 1
            counts[kind]["found_correct"] += ok
            if not ok:
                errors.append((record["id"], "false", kind, start, end))
        for kind, start, end in gold:
            ok = any(k == kind and _overlaps((start, end), (s, e)) for k, s, e in found)
            counts[kind]["gold"] += 1
            counts[kind]["gold_found"] += ok
            if not ok:
                errors.append((record["id"], "missed", kind, start, end))
        exact += redacted == record["redacted"]
    return {"kinds": counts, "markers_exact": exact, "texts": len(records), "errors": errors}


def precision_recall(counts: Counter) -> tuple[float, float]:
    """(precision, recall); NaN when there is nothing to divide by."""
    precision = counts["found_correct"] / counts["found"] if counts["found"] else float("nan")
    recall = counts["gold_found"] / counts["gold"] if counts["gold"] else float("nan")
    return precision, recall


def overall(result: dict) -> Counter:
    total = Counter()
    for counts in result["kinds"].values():
        total.update(counts)
    return total


def accuracy_table(results: dict[str, dict]) -> str:
    splits = list(results)
    head = ["kind"] + [f"{name} {split}" for split in splits for name in ("P", "R", "support")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cells(counts: Counter) -> list[str]:
        precision, recall = precision_recall(counts)
        return [f"{precision:.2f}", f"{recall:.2f}", str(counts["gold"])]

    for kind in KINDS:
        row = [kind]
        for split in splits:
            row += cells(results[split]["kinds"][kind])
        lines.append("| " + " | ".join(row).replace("nan", "-") + " |")
    row = ["**all kinds**"]
    for split in splits:
        row += cells(overall(results[split]))
    lines.append("| " + " | ".join(row) + " |")
    row = ["markers exact"]
    for split in splits:
        result = results[split]
        row += [f"{result['markers_exact'] / result['texts']:.2f}", "", str(result["texts"])]
    lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _speed_texts(which: str) -> list[str]:
    if which == "labelled":
        return [r["text"] for r in read_labelled()]
    import pandas as pd

    pool = pd.read_csv(POOL)["text"].dropna().astype(str).tolist()
    return (pool * (20_000 // len(pool) + 1))[:20_000]


def time_one(what: str, which: str) -> dict:
    """Time tagging or pii_columns once, in this (fresh) process; what --time-one prints.

    The pipelines are built before timing, on one warm-up text, as ``classifier tag`` builds
    them once per process; spaCy's tokenizer caches are otherwise as cold as in a new run.
    For "pii", spaCy is imported first, as the tagging of the same run has imported it.
    """
    texts = _speed_texts(which)
    build = time.perf_counter()
    if what == "tag":
        from classifier.persistence import load_model

        model = load_model()
        model.score_batch(["Warm-up text, not timed."])
        function = model.score_batch
    else:
        import spacy  # noqa: F401  (imported by tagging in a real run)

        build = time.perf_counter()
        finder = PiiFinder()
        finder.find("Warm-up text, not timed: thank you Dr Smith.")  # builds the pipeline

        def function(batch):
            return pii_columns(batch, finder=finder)

    build = time.perf_counter() - build
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(texts), BATCH):
        function(texts[i : i + BATCH])
    return {
        "wall_us": (time.perf_counter() - wall) / len(texts) * 1e6,
        "cpu_us": (time.process_time() - cpu) / len(texts) * 1e6,
        "build_s": build,
    }


def _run_one(what: str, which: str) -> dict:
    command = [sys.executable, __file__, "--time-one", what, "--texts", which]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def speed_table(repeats: int) -> str:
    """Median µs/text of tagging and of pii_columns, each run in a fresh process.

    A fresh process per run gives each side what one ``classifier tag`` run gives it: cold
    tokenizer caches (tagging the same texts again in one process is twice as fast, which
    would flatter tagging, and PII the other way round). Runs alternate tagging and PII so that
    load from other processes on the machine hits both alike. Wall-clock and CPU time are
    both reported; CPU time ignores time lost to other processes on a shared machine.
    """
    lines = [
        "| texts | n | pii_columns µs/text (wall / CPU) | tagging µs/text (wall / CPU) "
        "| overhead (wall / CPU) | target |",
        "|---|---|---|---|---|---|",
    ]
    builds = []
    for name, which in (("real pool (20k)", "pool"), ("labelled set", "labelled")):
        runs: dict[str, list[dict]] = {"tag": [], "pii": []}
        for _ in range(repeats):
            for what in ("tag", "pii"):
                runs[what].append(_run_one(what, which))
        builds += [run["build_s"] for run in runs["pii"]]
        pii = [statistics.median(run[k] for run in runs["pii"]) for k in ("wall_us", "cpu_us")]
        tag = [statistics.median(run[k] for run in runs["tag"]) for k in ("wall_us", "cpu_us")]
        lines.append(
            f"| {name} | {len(_speed_texts(which)):,} | {pii[0]:.1f} / {pii[1]:.1f} "
            f"| {tag[0]:.1f} / {tag[1]:.1f} | {pii[0] / tag[0]:.1%} / {pii[1] / tag[1]:.1%} "
            f"| <= {TARGET_OVERHEAD:.0%} |"
        )
    from classifier import pii as module

    real = _speed_texts("pool")
    share = sum(
        1
        for t in real
        if module._may_hold_name(t, t.lower()) and module._name_windows(t, t.lower())
    ) / len(real)
    lines.append("")
    lines.append(
        f"Building the finder's spaCy pipeline, once per process: "
        f"{statistics.median(builds):.2f} s (median). Share of the real texts whose name cues "
        f"send a window to spaCy: {share:.1%}."
    )
    return "\n".join(lines)


def cli_table(repeats: int) -> str:
    """End to end: ``classifier tag`` on the 20,000 real texts with and without ``--pii``."""
    import tempfile

    import pandas as pd

    lines = ["| command | wall s (median) | CPU s (median) |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "pool.csv"
        pd.DataFrame({"text": _speed_texts("pool")}).to_csv(source, index=False)
        times: dict[str, list[tuple[float, float]]] = {"tag": [], "tag --pii": []}
        for _ in range(repeats):
            for label, extra in (("tag", []), ("tag --pii", ["--pii"])):
                command = [sys.executable, "-m", "classifier", "tag", str(source), "--force"]
                command += ["-o", str(Path(folder) / "out.csv"), *extra]
                start = time.perf_counter()
                before = os.times()
                subprocess.run(command, capture_output=True, check=True, cwd=ROOT)
                after = os.times()
                cpu = (after.children_user - before.children_user) + (
                    after.children_system - before.children_system
                )
                times[label].append((time.perf_counter() - start, cpu))
    medians = {k: [statistics.median(t[i] for t in v) for i in (0, 1)] for k, v in times.items()}
    for label, (wall, cpu) in medians.items():
        lines.append(f"| classifier {label} | {wall:.2f} | {cpu:.2f} |")
    wall_ratio = medians["tag --pii"][0] / medians["tag"][0] - 1
    cpu_ratio = medians["tag --pii"][1] / medians["tag"][1] - 1
    lines.append("")
    lines.append(
        f"--pii adds {wall_ratio:.1%} wall-clock time and {cpu_ratio:.1%} CPU time "
        f"(target <= {TARGET_OVERHEAD:.0%})."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("dev", "test", "both"), default="both")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--repeats", type=int, default=5, help="timing runs (median reported)")
    parser.add_argument("--errors", choices=("dev", "test"), help="list this split's errors")
    parser.add_argument("--cli", action="store_true", help="also time classifier tag end to end")
    parser.add_argument("--time-one", choices=("tag", "pii"), help=argparse.SUPPRESS)
    parser.add_argument("--texts", choices=("pool", "labelled"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.time_one:  # one timing run, in a fresh process started by speed_table
        print(json.dumps(time_one(args.time_one, args.texts)))
        return

    records = read_labelled()
    splits = ("dev", "test") if args.split == "both" else (args.split,)
    finder = PiiFinder()
    results = {s: score([r for r in records if r["split"] == s], finder) for s in splits}
    print("## Accuracy (P = precision, R = recall; a found span is correct if its kind matches")
    print("## and it overlaps a gold span of that kind)\n")
    print(accuracy_table(results))
    for split in splits:
        total = overall(results[split])
        precision, recall = precision_recall(total)
        misses = [
            kind
            for kind, target in TARGET_RECALL.items()
            if precision_recall(results[split]["kinds"][kind])[1] < target
        ]
        verdict = (
            "all targets met"
            if precision >= TARGET_PRECISION and not misses
            else (f"below target: {', '.join(misses) or 'precision'}")
        )
        print(f"\n{split}: overall precision {precision:.3f}, recall {recall:.3f} ({verdict})")
    if args.errors:
        # Prints labelled texts: they are either public (anonymised) or synthetic.
        by_id = {r["id"]: r for r in records}
        result = results.get(args.errors) or score(
            [r for r in records if r["split"] == args.errors], finder
        )
        print(f"\n## Errors on {args.errors}\n")
        for record_id, what, kind, start, end in result["errors"]:
            text = by_id[record_id]["text"]
            print(f"- {what} {kind} {text[start:end]!r} in {record_id}: {text[:160]!r}")
        for record in records:
            if record["split"] == args.errors:
                found = finder.count_redacted(record["text"])
                if found != record["redacted"]:
                    print(
                        f"- markers {found} != {record['redacted']} in {record['id']}: "
                        f"{record['text'][:160]!r}"
                    )
    if not args.no_speed:
        print(f"\n## Speed (median of {args.repeats} runs, each in a fresh process)\n")
        print(speed_table(args.repeats))
    if args.cli:
        print(f"\n## classifier tag end to end (median of {args.repeats} runs)\n")
        print(cli_table(args.repeats))


if __name__ == "__main__":
    main()
