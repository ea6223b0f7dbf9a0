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
