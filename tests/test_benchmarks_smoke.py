"""Every benchmark still runs (in its tiny smoke size). These check that they work, never how fast."""

import contextlib
import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import cli_env
from tests.helpers import descendants

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if not p.name.startswith("_") and p.name != "baselines.py")


def test_every_benchmark_is_covered():
    assert set(SCRIPTS) == {
        "app_latency.py",
        "batch.py",
        "batching.py",
        "find_cells.py",
        "findings.py",
        "finetune.py",
        "contention.py",
        "copy_index.py",
        "generation.py",
        "gpu.py",
        "quality.py",
        "scale.py",
        "soak.py",
        "startup.py",
        "step_profile.py",
        "throughput.py",
    }


def _smoke(script: str, folder: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(BENCH / script), "--smoke"]
    with subprocess.Popen(
        cmd, cwd=folder, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            # What it started (contention's busy competitor, a trainer) would outlive a killed benchmark, and keep a
            # core busy for good: those first, while they are still its children.
            for pid in descendants(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.kill()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture(scope="module")
def smokes(request, tmp_path_factory):
    """The selected smoke runs, two at a time: most of each is one core importing and starting up."""
    items = request.session.items
    chosen = [i.callspec.params["script"] for i in items if getattr(i, "originalname", "") == "test_benchmark_smoke"]
    with ThreadPoolExecutor(2) as pool:
        yield {s: pool.submit(_smoke, s, tmp_path_factory.mktemp(s.removesuffix(".py"))) for s in chosen}


@pytest.mark.process
@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_smoke(script, smokes):
    proc = smokes[script].result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert records and all("bench" in r and "date" in r for r in records)
