"""The benchmark script runs end to end (tiny sizes). Timings are printed, never asserted."""

import subprocess
import sys

from conftest import ROOT


def test_benchmark_smoke_run_prints_its_table(tiny_model_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--smoke",
            "--model",
            str(tiny_model_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert table[0] == "| measure | value | target |"
    measures = " ".join(table)
    for measure in ("classify_many", "reference", "classifier tag", "peak memory", "latency"):
        assert measure in measures


def test_stage_profile_smoke_run_covers_every_stage(tiny_model_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "stages.py"), "--smoke",
         "--model", str(tiny_model_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    stages = [line.split(" | ")[0][2:] for line in result.stdout.splitlines() if line[:2] == "| "]
    for stage in ("spaCy tokenizer", "negation scope", "word n-gram TF-IDF", "scoring"):
        assert stage in stages
