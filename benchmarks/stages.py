"""Where the time of classifying a batch goes, stage by stage; prints a Markdown table.

    python benchmarks/stages.py            # 8 batches of 2,000 fresh texts after a warm-up
    python benchmarks/stages.py --smoke    # tiny; what CI runs (via pytest)

Each stage is timed on its own, in the order the model runs them, and reported as the median over
the batches and as a share of ``score_batch`` on a batch of other texts of the same kind (the
stages fill the per-process span cache with their own texts). "spaCy tokenizer" is spaCy's work
on spans not seen before; "span lookup" the rest of finding each span's tokens. Each batch also
checks that the feature ids and their TF-IDF are exactly the string path's (the smoke test keeps
that guarded). The CSV rows are what a ``classifier tag`` run adds in its main process. A profile
for deciding what to optimise; the README quotes it. Uses the model's internals on purpose, and
the smoke test keeps it in step.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import make_texts  # noqa: E402

from classifier.io import _neutralise_frame  # noqa: E402
from classifier.persistence import default_model_path, load_model  # noqa: E402
from classifier.preprocessing import WARM_UP_TEXTS, _span_analyser  # noqa: E402
from classifier.tagging import _freeze_long_lived_objects, scores_frame  # noqa: E402


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
    analyser = _span_analyser(pre.negation, pre.max_scope, pre.keep_punct)
    _freeze_long_lived_objects()  # as `classifier tag` does once the model is loaded
    words, chars = model.parts
    times: dict[str, list[float]] = {}

    def timed(stage: str, function, *arguments):
        started = time.perf_counter()
        result = function(*arguments)
        times.setdefault(stage, []).append(time.perf_counter() - started)
        return result

    # The time spaCy itself takes: tokenizing spans not seen before, and the odd text whole.
    in_spacy = [0.0]

    def clocked(method):
        def wrapper(*arguments):
            started = time.perf_counter()
            try:
                return method(*arguments)
            finally:
                in_spacy[0] += time.perf_counter() - started

        return wrapper

    analyser._add_spans = clocked(analyser._add_spans)
    analyser._tokenize_whole = clocked(analyser._tokenize_whole)

    def span_ids(texts, spans, per_text):
        before, started = in_spacy[0], time.perf_counter()
        result = analyser.span_ids(texts, spans, per_text)
        spacy = in_spacy[0] - before
        times.setdefault("spaCy tokenizer", []).append(spacy)
        times.setdefault("span lookup", []).append(time.perf_counter() - started - spacy)
        return result

    def string_path(texts: list[str]):
        strings = pre.transform(texts)
        return strings, model._vectorize(strings)

    def check_same(texts, features, blocks, string_path_result) -> None:
        # The id path must give exactly the string path's features and matrices (entries in
        # the same order, so that the scores' floating-point sums are the same too).
        strings, string_blocks = string_path_result
        if features.strings() != strings:
            sys.exit("the feature ids do not give the preprocessor's features")
        for ids_block, string_block in zip(blocks, string_blocks, strict=True):
            for name in ("indptr", "indices", "data"):
                if not np.array_equal(getattr(ids_block, name), getattr(string_block, name)):
                    sys.exit(f"TF-IDF from feature ids differs from TF-IDF of strings ({name})")

    def write_csv(table: pd.DataFrame) -> None:
        _neutralise_frame(table).to_csv(io.StringIO(), index=False)

    def read_csv(raw: str) -> pd.DataFrame:
        return pd.read_csv(io.StringIO(raw))

    for seed in range(args.batches):
        # What score_batch does, step by step (it analyses each distinct text once).
        texts = list(dict.fromkeys(make_texts(args.batch_size, seed=seed)))
        spans, per_text = timed("splitting into spans", analyser.split, texts)
        ids, per_text = span_ids(texts, spans, per_text)
        records, lengths = timed("gathering tokens", analyser.tokens, ids, per_text)
        negated = timed("negation scope", analyser.negation_scopes, records, lengths)
        features = timed("token features", analyser.features, records, lengths, negated)
        word_counts = timed("word n-gram TF-IDF", words.transform_ids, features)
        char_counts = timed("character n-gram TF-IDF", chars.transform_ids, features)
        timed("scoring", model._scores, [word_counts, char_counts])
        strings = timed("for comparison: the string path (transform, then TF-IDF of strings)",
                        string_path, texts)  # fmt: skip
        check_same(texts, features, [word_counts, char_counts], strings)
        # Fresh texts again: the steps above have just cached these texts' spans.
        texts = make_texts(args.batch_size, seed=1000 + seed)
        batch = timed("score_batch (all of the above)", model.score_batch, texts)
        added = timed("CSV: output columns", scores_frame, batch)
        table = pd.DataFrame({"id": range(len(texts)), "feedback": texts})
        timed("CSV: writing", write_csv, pd.concat([table, added], axis=1))
        timed("CSV: reading", read_csv, table.to_csv(index=False))

    total = statistics.median(times["score_batch (all of the above)"])
    print(f"Medians over {args.batches} batches of {args.batch_size:,} fresh texts, one process.\n")
    print("| stage | ms per batch | share of score_batch |\n|---|---|---|")
    # (the string path goes last: it is not one of the stages that "all of the above" adds up)
    for stage, values in sorted(times.items(), key=lambda item: item[0].startswith("for ")):
        median = statistics.median(values)
        print(f"| {stage} | {1000 * median:.1f} | {median / total:.0%} |")


if __name__ == "__main__":
    main()
