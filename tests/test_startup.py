"""The first frame comes first: `launch` draws the header, the panels' frames and the footer before it
loads NumPy, the panels' modules, the weights or the session (issue 16's first paint; its figure is
benchmarks/startup.py's)."""

import json
import subprocess
import sys

import pytest

from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.widgets.playground.playground import Playground
from rnn_tui.tui.widgets.run_header import RunHeader
from rnn_tui.tui.widgets.training.panel import TrainingPanel
from tests.conftest import until
from tests.fakes import FakeSession
from tests.helpers import SIZE

# `rnn-tui launch` as far as the app's first frame: the command line, the run's plan, the session (not
# started: that is the child's business) and the app's module; run_app is where it would start drawing.
LAUNCH_UNTIL_THE_APP = """
import json, sys
import rnn_tui.session, rnn_tui.tui.app as app_module
rnn_tui.session.LocalSession.start = lambda self: None
def run_app(session, checkpoint_dir):
    heavy = ("numpy", "plotext", "safetensors", "torch", "threadpoolctl", "rnn_tui.generation", "rnn_tui.inference")
    print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
    return 0
app_module.run_app = run_app
from rnn_tui import cli
sys.exit(cli.main(["launch", "--checkpoint-dir", sys.argv[1]]))
"""


@pytest.mark.process
def test_launch_reaches_the_app_without_numpy(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCH_UNTIL_THE_APP, str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []


async def test_the_first_frame_has_the_panels_frames_then_the_panels():
    app = RnnTuiApp(FakeSession(), frames_first=True)
    first: dict = {}

    def look() -> None:  # what the first frame held, before anything ran after it
        first["frames"] = [w.border_title for w in app.query(".frame")]
        first["panels"] = len(app.query(TrainingPanel)) + len(app.query(Playground))
        first["header"] = app.query_one(RunHeader).state

    app.call_after_refresh(look)  # queued before _open's: it sees the first frame as it was drawn
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(app.query(Playground)) and app.session.polls > 0, "the panels and the session")
        assert first == {"frames": ["Training", "Playground"], "panels": 0, "header": "starting"}
        await until(pilot, lambda: not app.query(".frame"), "the frames to go")
        assert app.query_one(TrainingPanel).border_title == "Training"
        assert app.query_one(Playground).border_title == "Playground"


async def test_headless_composes_the_panels_at_once():
    """Tests and screenshots: nobody sees a first frame, so the panels are there when the app is."""
    app = RnnTuiApp(FakeSession())
    async with app.run_test(size=SIZE):
        assert app.query(TrainingPanel) and app.query(Playground) and not app.query(".frame")
