"""The import contract (pyproject.toml), and the promise behind it: the app's process never imports PyTorch."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import cli_env

pytestmark = pytest.mark.process  # lint-imports, and an app with its trainer

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter is not installed")
def test_the_import_contract_holds():
    proc = subprocess.run(["lint-imports"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "0 broken" in proc.stdout


APP_WITH_A_TRAINER = textwrap.dedent("""
    import asyncio, sys
    from rnn_tui.cli import main  # the whole command line, as `rnn-tui launch` imports it
    from rnn_tui.checkpoint import LOG
    from rnn_tui.config import SampleConfig
    from rnn_tui.events import Progress
    from rnn_tui.config import ModelConfig, Settings, TrainConfig
    from rnn_tui.runs import RunSpec, plan
    from rnn_tui.session import LocalSession
    from rnn_tui.text.sources import SourceSpec
    from rnn_tui.tui.app import RnnTuiApp
    from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText

    run = plan(RunSpec(SourceSpec(sys.argv[1]), checkpoint_dir=sys.argv[2], run_name="tiny",
                       model=Settings(ModelConfig, {"hidden": 16, "layers": 1, "embedding": 4}),
                       train=Settings(TrainConfig, {"batch_size": 4, "seq_len": 8, "threads": 1, "eval_chars": 1000})))
    session = LocalSession(run, log_path=run.run_dir / LOG)
    seen = []
    poll = session.poll
    session.poll = lambda: [e for e in poll() if not seen.append(e)]

    async def drive():
        app = RnnTuiApp(session)
        async with app.run_test() as pilot:
            for _ in range(1200):
                if any(isinstance(e, Progress) for e in seen) and app.query_one("#playground").weights:
                    break
                await pilot.pause(0.05)
            await pilot.press(*"abc")
            out = app.query_one(ConfidenceText)
            for _ in range(1200):  # until the playground has continued the prompt in full
                if out.n_prompt == 3 and len(out.tokens) == 3 + SampleConfig().length:
                    break
                await pilot.pause(0.05)
            else:
                raise AssertionError("the playground never continued the prompt")
    try:
        asyncio.run(drive())
    finally:
        session.close()
    assert any(isinstance(e, Progress) for e in seen), "the trainer never reported"
    print("torch imported:", "torch" in sys.modules)
""")


def test_the_apps_process_never_imports_torch(text_file, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", APP_WITH_A_TRAINER, str(text_file), str(tmp_path)],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "torch imported: False" in proc.stdout
