"""Dask against one machine: `classifier tag --dask local` vs `classifier tag --jobs 2`.

    python benchmarks/dask_bench.py                        # 1,000,000 rows (several minutes)
    python benchmarks/dask_bench.py --rows 50000 200000    # two sizes: is memory flat?
    python benchmarks/dask_bench.py --rows 200000 --repeats 3

For each size it generates the rows once (texts as in benchmarks/run.py: recombined corpus
sentences, so the tokenizer cache is not flattered) and writes them twice: as one Parquet file,
which `classifier tag --jobs 2` reads, and as a folder of Parquet part files (--rows-per-file),
which `classifier tag --dask local --jobs 2` reads (a LocalCluster of two single-threaded worker
processes). Both are timed end to end as fresh processes (imports, cluster start-up and model
loads included), in alternation, and their process trees sampled for memory: the peak resident
memory of the main process and of each worker process. The ratio is the Dask rate over the
--jobs 2 rate (target: >= 0.8).

The machine's load average is printed with the table: on a shared machine absolute rates move
with it, so compare the two modes within one table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import CLASSIFIER, ROOT, make_texts  # noqa: E402

MB = 2**20


@dataclass
class Run:
    """One timed command: wall time and peak memory per process."""

    seconds: float
    main_peak_mb: float
    worker_peaks_mb: list[float] = field(default_factory=list)


def write_dataset(folder: Path, single: Path, rows: int, rows_per_file: int) -> int:
    """Write ``rows`` generated rows as part files in ``folder`` and as one file ``single``."""
    folder.mkdir(parents=True)
    writer = None
    files = 0
    for start in range(0, rows, rows_per_file):
        size = min(rows_per_file, rows - start)
        frame = pd.DataFrame(
            {"response_id": range(start, start + size), "feedback": make_texts(size, seed=start)}
        )
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, folder / f"part.{files:05d}.parquet")
        if writer is None:
            writer = pq.ParquetWriter(single, table.schema)
        writer.write_table(table)  # one row group per part: --jobs reads it in chunks anyway
        files += 1
    writer.close()
    return files


def _is_worker(process: psutil.Process) -> bool:
    # Children of the main process, less the trackers multiprocessing and loky start.
    try:
        return "resource_tracker" not in " ".join(process.cmdline())
    except psutil.Error:
        return False


def measure(command: list[str]) -> Run:
    """Run ``command``; sample the RSS of it and its descendants every 0.1 s."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    root = psutil.Process(process.pid)
    main_peak = 0
    worker_peaks: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        nonlocal main_peak
        while not done.is_set():
            try:
                main_peak = max(main_peak, root.memory_info().rss)
                for child in root.children(recursive=True):
                    if child.pid in worker_peaks or _is_worker(child):
                        rss = child.memory_info().rss
                        worker_peaks[child.pid] = max(worker_peaks.get(child.pid, 0), rss)
            except psutil.Error:  # a process ended between listing and reading it
                pass
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr}")
    # A worker that never grew past start-up (a spare) is not a tagging worker.
    peaks = sorted((peak / MB for peak in worker_peaks.values() if peak > 100 * MB), reverse=True)
    return Run(seconds, main_peak / MB, peaks)


def bench(rows: int, rows_per_file: int, workers: int, repeats: int, folder: Path) -> dict:
    data = folder / f"rows-{rows}"
    single = data / "export.parquet"
    parts = data / "export"
    data.mkdir()
    files = write_dataset(parts, single, rows, rows_per_file)
    jobs = [*CLASSIFIER, "tag", str(single), "-o", str(data / "jobs.parquet"), "--force", "-q"]
    jobs += ["--jobs", str(workers)]
    dask = [*CLASSIFIER, "tag", str(parts), "-o", str(data / "dask.parquet"), "--force", "-q"]
    dask += ["--dask", "local", "--jobs", str(workers)]
    runs: dict[str, list[Run]] = {"jobs": [], "dask": []}
    for _ in range(repeats):  # alternate, so both modes see the same machine load
        runs["jobs"].append(measure(jobs))
        runs["dask"].append(measure(dask))
    written = sum(pq.ParquetFile(p).metadata.num_rows for p in (data / "dask.parquet").iterdir())
    assert written == rows, (written, rows)
    return {"rows": rows, "files": files, "runs": runs}


def median_run(runs: list[Run]) -> Run:
    return Run(
        statistics.median(r.seconds for r in runs),
        statistics.median(r.main_peak_mb for r in runs),
        [statistics.median(p) for p in zip(*(r.worker_peaks_mb for r in runs), strict=False)],
    )


def render(results: list[dict], workers: int, repeats: int, load: tuple) -> str:
    lines = [
        f"Medians of {repeats} run(s); {os.cpu_count()} cores; load average "
        f"{load[0]:.1f} before, {os.getloadavg()[0]:.1f} after (1 min).",
        "",
        "| rows | command | wall (s) | rows/s | peak RSS main (MB) | peak RSS per worker (MB) |",
        "|---|---|---|---|---|---|",
    ]
    ratios = []
    for result in results:
        rows = result["rows"]
        rates = {}
        for mode, label in (
            ("jobs", f"`tag --jobs {workers}`, one Parquet file"),
            ("dask", f"`tag --dask local --jobs {workers}`, {result['files']} part files"),
        ):
            run = median_run(result["runs"][mode])
            rates[mode] = rows / run.seconds
            per_worker = ", ".join(f"{peak:,.0f}" for peak in run.worker_peaks_mb) or "-"
            lines.append(
                f"| {rows:,} | {label} | {run.seconds:.1f} | {rates[mode]:,.0f} | "
                f"{run.main_peak_mb:,.0f} | {per_worker} |"
            )
        ratios.append(f"{rows:,} rows: {rates['dask'] / rates['jobs']:.2f}x")
    lines += ["", "Dask rate / --jobs rate (target >= 0.8x): " + "; ".join(ratios)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--rows-per-file", type=int, default=25_000)
    parser.add_argument("--workers", type=int, default=2, help="--jobs and Dask workers")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="dask-bench-") as folder:
        results = [
            bench(rows, args.rows_per_file, args.workers, args.repeats, Path(folder))
            for rows in args.rows
        ]
    print(render(results, args.workers, args.repeats, load))


if __name__ == "__main__":
    main()
