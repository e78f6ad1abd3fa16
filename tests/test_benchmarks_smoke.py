"""Every benchmark still runs (in its tiny smoke size). These check that they work, never how fast."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import cli_env

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_") and p.name != "baselines.py")


def test_every_benchmark_is_covered():
    assert set(SCRIPTS) == {
        "app_latency.py",
        "batch.py",
        "batching.py",
        "find_cells.py",
        "findings.py",
        "contention.py",
        "generation.py",
        "gpu.py",
        "quality.py",
        "scale.py",
        "soak.py",
        "startup.py",
        "throughput.py",
    }


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_smoke(script, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert records and all("bench" in r and "date" in r for r in records)
