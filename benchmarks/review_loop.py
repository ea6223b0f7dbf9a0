"""Simulated researcher's loop: does coding the rows `classifier review` picks teach the model more
than coding random rows?

    python benchmarks/review_loop.py --small          # 3 samples x (review + 3 random draws)
    python benchmarks/review_loop.py                  # larger starting data and export (slower)

A "service" is the corpus's `nhs-pool` rows. Its export is the train-split rows that were drawn
at random from the pool (`training_data/raw/pool_selection.csv`; the other train rows were
chosen by an earlier model, so an export would not look like them), and their labels play the
coder; its held-out rows are the test-split rows (also a random draw). The starting model is
trained on authored rows and a few `nhs-fft` rows. Each arm codes `--n` rows of the export, adds
them (as target-domain rows) to the starting model's training data, retrains, and is scored on
the held-out rows: once with the rows `review` picks, and once per seed with a random sample.
Prints Markdown tables of micro and macro F1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifier.data import read_corpus  # noqa: E402
from classifier.evaluation import theme_metrics  # noqa: E402
from classifier.model import ThemeClassifier  # noqa: E402
from classifier.review import RANDOM_REASON, select_for_review  # noqa: E402

POOL_SELECTION = ROOT / "training_data" / "raw" / "pool_selection.csv"
SMALL = {
    "n_authored": 400,
    "n_real": 100,
    "pool_size": 1392,
    "heldout_size": 500,
    "n": 200,
    "random_seeds": 3,
}
FULL = {
    "n_authored": 1500,
    "n_real": 991,
    "pool_size": 1392,
    "heldout_size": 989,
    "n": 200,
    "random_seeds": 5,
}


def simulate_loop(
    corpus=None,
    n_authored: int = 400,
    n_real: int = 100,
    pool_size: int = 1392,
    heldout_size: int = 500,
    n: int = 200,
    random_seeds: int = 2,
    params: dict | None = None,
    seed: int = 0,
    variants: dict[str, dict] | None = None,
) -> dict:
    """Held-out F1 after coding ``n`` review-chosen rows vs ``n`` random rows (see the docstring).

    Returns ``{"base": metrics, "review": metrics, "random": [metrics per seed], "sizes": ...}``
    where metrics are ``theme_metrics`` of the held-out rows, plus ``seconds``. ``variants``
    (name -> keyword arguments of ``select_for_review``) adds more review arms under
    ``"variants"``.
    """
    started = time.perf_counter()
    corpus = read_corpus() if corpus is None else corpus
    params = {"cv": 3, **(params or {})}
    rng = np.random.default_rng(seed)

    def sample(frame, size):
        size = min(size, len(frame))
        return frame.iloc[np.sort(rng.choice(len(frame), size, replace=False))]

    train = corpus[corpus["split"] == "train"]
    base = [
        sample(train[train["source"] == "authored"], n_authored),
        sample(train[train["source"] == "nhs-fft"], n_real),
    ]
    base_texts = base[0]["text"].tolist() + base[1]["text"].tolist()
    base_labels = base[0]["labels"].tolist() + base[1]["labels"].tolist()
    base_target = [False] * len(base[0]) + [True] * len(base[1])
    drawn = pd.read_csv(POOL_SELECTION)
    drawn = set(drawn.loc[drawn["selection"] == "random", "pool_id"])
    pool = sample(train[(train["source"] == "nhs-pool") & train["id"].isin(drawn)], pool_size)
    heldout = sample(
        corpus[(corpus["split"] == "test") & (corpus["source"] == "nhs-pool")], heldout_size
    )
    pool_texts, pool_labels = pool["text"].tolist(), pool["labels"].tolist()

    def fit_and_score(selection=None):
        # As `train --add` does: every coded row is trained on as a real row; rows that review
        # chose for being uncertain are "targeted" and left out of the calibration.
        chosen = selection.index if selection is not None else []
        targeted = [reason != RANDOM_REASON for reason in selection.reasons] if chosen else []
        model = ThemeClassifier(**params).fit(
            base_texts + [pool_texts[i] for i in chosen],
            base_labels + [pool_labels[i] for i in chosen],
            target_domain=base_target + [True] * len(chosen),
            calibration_rows=base_target + [not flag for flag in targeted],
        )
        predicted = model.predict(heldout["text"].tolist())
        return model, theme_metrics(heldout["labels"].tolist(), predicted, model.themes_)

    base_model, base_metrics = fit_and_score()
    chosen = select_for_review(pool_texts, base_model, n=n, seed=seed)
    _, review_metrics = fit_and_score(chosen)
    variant_metrics = {
        name: fit_and_score(select_for_review(pool_texts, base_model, n=n, seed=seed, **options))[1]
        for name, options in (variants or {}).items()
    }
    random_metrics = []
    for draw in range(random_seeds):
        picks = select_for_review(pool_texts, base_model, n=n, seed=draw, strategy="random")
        random_metrics.append(fit_and_score(picks)[1])

    def themed(indices):
        return float(np.mean([bool(pool_labels[i]) for i in indices]))

    return {
        "base": base_metrics,
        "review": review_metrics,
        "random": random_metrics,
        "variants": variant_metrics,
        "themed_share": {
            "review": themed(chosen.index),
            "pool": themed(range(len(pool_texts))),
        },
        "sizes": {
            "base": len(base_texts),
            "pool": len(pool_texts),
            "heldout": len(heldout),
            "n": n,
        },
        "seconds": time.perf_counter() - started,
    }


def render(result: dict) -> str:
    sizes = result["sizes"]
    lines = [
        f"Starting model: {sizes['base']} texts; export: {sizes['pool']} nhs-pool rows; "
        f"held out: {sizes['heldout']} nhs-pool test rows; {sizes['n']} rows coded per arm.",
        "",
        "| rows coded | micro F1 | macro F1 |",
        "|---|---|---|",
        f"| none (starting model) | {result['base']['micro_f1']:.3f} "
        f"| {result['base']['macro_f1']:.3f} |",
        f"| {sizes['n']} chosen by review | {result['review']['micro_f1']:.3f} "
        f"| {result['review']['macro_f1']:.3f} |",
    ]
    for draw, metrics in enumerate(result["random"]):
        lines.append(
            f"| {sizes['n']} random (seed {draw}) | {metrics['micro_f1']:.3f} "
            f"| {metrics['macro_f1']:.3f} |"
        )
    for name, metrics in result.get("variants", {}).items():
        lines.append(
            f"| {sizes['n']} chosen by review, {name} | {metrics['micro_f1']:.3f} "
            f"| {metrics['macro_f1']:.3f} |"
        )
    micro = [m["micro_f1"] for m in result["random"]]
    macro = [m["macro_f1"] for m in result["random"]]
    lines += [
        f"| {sizes['n']} random, mean | {np.mean(micro):.3f} | {np.mean(macro):.3f} |",
        "",
        f"Share of chosen rows with a theme: review {result['themed_share']['review']:.0%}, "
        f"export {result['themed_share']['pool']:.0%}. Took {result['seconds']:.0f} s.",
    ]
    return "\n".join(lines)


def summary(results: list[dict]) -> str:
    """Means over the samples: review vs random, and how often review beat the random mean."""
    rows = []
    for key in ("micro_f1", "macro_f1"):
        base = np.mean([r["base"][key] for r in results])
        review = [r["review"][key] for r in results]
        random_means = [np.mean([m[key] for m in r["random"]]) for r in results]
        wins = sum(a > b for a, b in zip(review, random_means, strict=True))
        rows.append(
            f"| {key.replace('_', ' ')} | {base:.3f} | {np.mean(review):.3f} | "
            f"{np.mean(random_means):.3f} | {np.mean(review) - np.mean(random_means):+.3f} | "
            f"{wins} of {len(results)} |"
        )
    return "\n".join(
        [
            f"Over {len(results)} sample(s) of starting data, export and held-out rows:",
            "",
            "| held-out | starting model | + review rows | + random rows (mean) | difference "
            "| review ahead |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="Smaller data (faster).")
    parser.add_argument("--seeds", default="0,1,2", help="Seeds of the samples, comma-separated.")
    parser.add_argument(
        "--explore", default="", help="Also review arms with these explore shares, e.g. 0,0.25."
    )
    args = parser.parse_args()
    config = SMALL if args.small else FULL
    variants = {
        f"explore {value}": {"explore": float(value)} for value in args.explore.split(",") if value
    }
    results = []
    for seed in (int(value) for value in args.seeds.split(",")):
        results.append(simulate_loop(seed=seed, variants=variants, **config))
        print(f"### Sample seed {seed}\n\n{render(results[-1])}\n", flush=True)
    print(summary(results))


if __name__ == "__main__":
    main()
