"""The package as users install it: a built wheel, outside the checkout, carries the model."""

import os
import subprocess
import sys
import zipfile

import pandas as pd
from conftest import ROOT, SAMPLE_CSV


def test_built_wheel_carries_the_model_and_tags_outside_the_checkout(tmp_path):
    dist, site, work = tmp_path / "dist", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    wheel = next(dist.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"classifier/models/theme-classifier.npz", "classifier/codebook.toml"} <= names
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
         str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    # The wheel's copy of the package comes first on the path; the dependencies are this venv's.
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("CLASSIFIER_MODEL", None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], cwd=work, env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip

    where = run("-c", "import classifier; print(classifier.__file__)")
    assert where.stdout.startswith(str(site)), where.stderr
    tagged = run("-m", "classifier", "tag", str(SAMPLE_CSV), "-o", "tagged.csv", "--quiet")
    assert tagged.returncode == 0, tagged.stderr
    assert len(pd.read_csv(work / "tagged.csv")) == len(pd.read_csv(SAMPLE_CSV))
    explained = run("-m", "classifier", "explain", "She cancelled on me twice this month.")
    assert explained.returncode == 0 and "boundaries" in explained.stdout, explained.stderr
