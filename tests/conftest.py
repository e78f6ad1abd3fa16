import contextlib
import gc
import multiprocessing.process
import multiprocessing.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import settings

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"

# Hypothesis draws the same examples on every run, so CI is reproducible (a failure it finds once it finds
# again); HYPOTHESIS_PROFILE=explore draws new ones, for looking harder.
settings.register_profile("seeded", derandomize=True)
settings.register_profile("explore", max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "seeded"))

torch.set_num_threads(1)
# The Pilot tests leave Textual's caches full (a few hundred thousand objects), and the collector's full passes
# over them took a quarter of the fast loop's time: let it make them a tenth as often.
gc.set_threshold(700, 10, 100)
# The terminal's colour depth decides the palette: pin it, so snapshots do not depend on the machine.
os.environ["COLORTERM"] = "truecolor"
os.environ.pop("NO_COLOR", None)


# Where a library starts a process for its own innocent reasons, outside any test's intent: (file, function).
INNOCENT = {
    ("platform.py", "from_subprocess"),  # platform.processor() runs `uname -p` once, then caches it
    # multiprocessing's resource tracker, started once for the whole session by the first shared memory
    ("resource_tracker.py", "ensure_running"),
}

# The ways a test's code could start a process, and the calls that start one.
SPAWNERS = [
    (subprocess.Popen, "_execute_child"),  # subprocess.run/Popen/check_output, asyncio's subprocesses, os.popen
    (multiprocessing.process.BaseProcess, "start"),  # every multiprocessing context: fork, spawn, forkserver
    (multiprocessing.util, "spawnv_passfds"),  # multiprocessing's helpers (the resource tracker, the forkserver)
    *((os, name) for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system") if hasattr(os, name)),
]


def _innocent() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if (os.path.basename(code.co_filename), code.co_name) in INNOCENT:
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def _refusing_processes(item: pytest.Item):
    """Unless `item` is marked `process`, starting a process fails it (with its fixtures, whatever their scope)."""
    if item.get_closest_marker("process"):
        yield
        return
    refused: list[str] = []

    def refuse(owner, name, original):
        def guarded(*args, **kwargs):
            if _innocent():
                return original(*args, **kwargs)
            refused.append(f"{getattr(owner, '__name__', owner)}.{name}")
            pytest.fail(f"{item.nodeid} started a process ({refused[-1]}): mark this test process")

        return guarded

    with pytest.MonkeyPatch.context() as patch:
        for owner, name in SPAWNERS:
            patch.setattr(owner, name, refuse(owner, name, getattr(owner, name)))
        yield
    if refused:  # refused in another thread (an app's worker), or the refusal was caught
        pytest.fail(f"{item.nodeid} started a process ({', '.join(refused)}): mark this test process")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    with _refusing_processes(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with _refusing_processes(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    with _refusing_processes(item):
        return (yield)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own download/encoding cache, and no shipped models unless it asks for them (`shipped`)."""
    monkeypatch.setenv("RNN_TUI_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("RNN_TUI_MIRROR", raising=False)
    monkeypatch.setenv("RNN_TUI_MODELS", str(tmp_path_factory.mktemp("no-models")))


@pytest.fixture
def shipped(tmp_path_factory, monkeypatch) -> Path:
    """Tiny stand-ins for the shipped models, `pretrained:python` and `pretrained:shakespeare`, in a folder of
    their own that the resolver is pointed at ($RNN_TUI_MODELS, which the CLI's processes inherit)."""
    from tests.fakes import ship_tiny

    root = tmp_path_factory.mktemp("models")
    for seed, name in enumerate(("python", "shakespeare")):
        ship_tiny(root, name, seed)
    monkeypatch.setenv("RNN_TUI_MODELS", str(root))
    return root


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


def wait_for(predicate, what: str = "the condition", timeout: float = 60.0, every: float = 0.05):
    """Poll `predicate` until it is true and return its value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def until(pilot, predicate, what: str = "the condition", timeout: float = 60.0, every: float = 0.02) -> None:
    """Let the app under `pilot` run until `predicate()` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await pilot.pause(every)


@pytest.fixture
def steady_memory(monkeypatch):
    """The app's own memory on the system line, fixed for a snapshot: it differs from run to run."""
    monkeypatch.setattr("rnn_tui.sysinfo.rss_mb", lambda pid="self": 181.0)


@pytest.fixture
def settled():
    """Runs an app under Pilot, settled: `async with settled(app) as pilot:` starts the app and waits until it has
    routed its session's first events and put the weights in the playground (tests.helpers.settle). Keyword
    arguments go to `app.run_test`; the size is tests.helpers.SIZE unless given."""
    from tests.helpers import SIZE, settle

    @contextlib.asynccontextmanager
    async def run(app, **run_test):
        async with app.run_test(**{"size": SIZE, **run_test}) as pilot:
            await settle(pilot)
            yield pilot

    return run


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
