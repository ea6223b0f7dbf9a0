"""Where the time of classifying a batch goes, stage by stage; prints a Markdown table.

    python benchmarks/stages.py            # 8 batches of 2,000 fresh texts after a warm-up
    python benchmarks/stages.py --smoke    # tiny; what CI runs (via pytest)

Each stage is timed on its own, in the order the model runs them, and reported as the median over
the batches and as a share of ``score_batch`` on the same batch. The CSV rows are what a
``classifier tag`` run adds in its main process. A profile for deciding what to optimise; the
README quotes it. Uses the model's internals on purpose, and the smoke test keeps it in step.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import make_texts  # noqa: E402

from classifier.io import _neutralise_frame  # noqa: E402
from classifier.persistence import default_model_path, load_model  # noqa: E402
from classifier.preprocessing import WARM_UP_TEXTS, build_nlp  # noqa: E402
from classifier.tagging import scores_frame  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args()
    if args.smoke:
        args.batches, args.batch_size = 2, 100
    model = load_model(args.model or default_model_path())
    if hasattr(model, "compile"):  # estimators from a .skops file: profile what they compile to
        model = model.compile()
    pre = model.preprocessor_
    model.classify_many(make_texts(100 if args.smoke else WARM_UP_TEXTS, seed=99), explain=False)
    nlp = build_nlp(negation=pre.negation, max_scope=pre.max_scope)
    words, chars = model.parts
    times: dict[str, list[float]] = {}

    def timed(stage: str, function, *arguments):
        started = time.perf_counter()
        result = function(*arguments)
        times.setdefault(stage, []).append(time.perf_counter() - started)
        return result

    negation = nlp.get_pipe("negation_scope") if pre.negation else None

    def tokenize(texts: list[str]) -> list:
        return list(nlp.tokenizer.pipe(texts))

    def mark_negation(docs: list) -> list:
        return list(negation.pipe(docs))

    def join(tokens: list[list[str]]) -> list[str]:
        return [" ".join(token for token in doc if token) for doc in tokens]

    def write_csv(table: pd.DataFrame) -> None:
        _neutralise_frame(table).to_csv(io.StringIO(), index=False)

    def read_csv(raw: str) -> pd.DataFrame:
        return pd.read_csv(io.StringIO(raw))

    for seed in range(args.batches):
        texts = make_texts(args.batch_size, seed=seed)
        with nlp.memory_zone():
            docs = timed("spaCy tokenizer", tokenize, texts)
            if negation is not None:
                docs = timed("negation scope", mark_negation, docs)
            tokens = timed("token features", pre._token_features, docs, nlp.vocab.strings)
            features = timed("joining tokens", join, tokens)
        word_counts = timed("word n-gram TF-IDF", words.transform, features)
        char_counts = timed("character n-gram TF-IDF", chars.transform, features)
        timed("scoring", model._scores, [word_counts, char_counts])
        batch = timed("score_batch (all of the above)", model.score_batch, texts)
        added = timed("CSV: output columns", scores_frame, batch)
        table = pd.DataFrame({"id": range(len(texts)), "feedback": texts})
        timed("CSV: writing", write_csv, pd.concat([table, added], axis=1))
        timed("CSV: reading", read_csv, table.to_csv(index=False))

    total = statistics.median(times["score_batch (all of the above)"])
    print(f"Medians over {args.batches} batches of {args.batch_size:,} fresh texts, one process.\n")
    print("| stage | ms per batch | share of score_batch |\n|---|---|---|")
    for stage, values in times.items():
        median = statistics.median(values)
        print(f"| {stage} | {1000 * median:.1f} | {median / total:.0%} |")


if __name__ == "__main__":
    main()
