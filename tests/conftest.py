import os
from pathlib import Path

import pytest
import torch

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"

torch.set_num_threads(1)
# The terminal's colour depth decides the palette: pin it, so snapshots do not depend on the machine.
os.environ["COLORTERM"] = "truecolor"
os.environ.pop("NO_COLOR", None)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own download/encoding cache."""
    monkeypatch.setenv("RNN_TUI_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("RNN_TUI_MIRROR", raising=False)


@pytest.fixture
def text_file(tmp_path) -> Path:
    """About 40 kB of repetitive English: enough for tiny models to learn something quickly."""
    lines = [f"the {w} sat on the mat and the {w} was happy.\n" for w in ("cat", "dog", "bird", "fox", "owl")]
    path = tmp_path / "tiny.txt"
    path.write_text("".join(lines) * 200, encoding="utf-8")
    return path


# `rnn-tui` flags for a model small enough that tests stay fast.
TINY_FLAGS = ["--hidden", "32", "--layers", "1", "--embedding", "8", "--batch-size", "8", "--seq-len", "16"]
TINY_FLAGS += ["--threads", "1", "--warmup-steps", "5"]


def tiny_request(data: Path, ckpt_dir: Path, **train):
    from rnn_tui.config import ModelConfig, Settings, TrainConfig
    from rnn_tui.runs import RunSpec
    from rnn_tui.text.sources import SourceSpec

    settings = {
        "batch_size": 8,
        "seq_len": 16,
        "max_steps": 40,
        "eval_every": 20,
        "sample_every": 20,
        "checkpoint_every": 1000,
        "threads": 1,
        "warmup_steps": 5,
        "eval_chars": 2000,
    }
    settings.update(train)
    return RunSpec(
        source=SourceSpec(str(data)),
        model=Settings(ModelConfig, {"hidden": 32, "layers": 1, "embedding": 8}),
        train=Settings(TrainConfig, settings),
        checkpoint_dir=str(ckpt_dir),
        run_name="tiny",
    )


def tiny_plan(data: Path, ckpt_dir: Path, **train):
    from rnn_tui.runs import plan

    return plan(tiny_request(data, ckpt_dir, **train))


def resume_plan(ckpt_dir: Path, run: str = "tiny", **train):
    from rnn_tui.config import Settings, TrainConfig
    from rnn_tui.runs import RunSpec, plan

    return plan(RunSpec(checkpoint_dir=str(ckpt_dir), resume=run, train=Settings(TrainConfig, train)))


def wait_for(predicate, timeout: float = 60.0, what: str = "the condition", every: float = 0.05):
    """Poll `predicate` until it is true; fail after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def shakespeare() -> Path:
    if not SHAKESPEARE.exists():
        pytest.skip("../shared/data/tinyshakespeare.txt is not here")
    return SHAKESPEARE


def cli_env(**extra) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="120", **extra)
    env.pop("FORCE_COLOR", None)
    return env


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting to be reaped does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
