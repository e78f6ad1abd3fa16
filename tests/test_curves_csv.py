"""`rnn-tui runs RUN --csv`: a run's curves, one row per step, with a header line."""

import csv
import io

import pytest

from rnn_tui import cli, record
from rnn_tui.events import Evaluation, Progress, Sample
from tests.fakes import make_run
from tests.helpers import assert_user_error, rnn_tui


def test_curves_merge_progress_and_evaluations_by_step():
    events = [
        Progress(10, 0, 3.5, 1e-3, 900.0, 2.0, chars=1280, cpu_percent=180.0, threads=2, rss_mb=300.5),
        Sample(10, "text", 0.8),
        Progress(20, 0, 3.0, 2e-3, 1000.0, 4.0, chars=2560, cpu_percent=190.0, threads=2, rss_mb=301.0),
        Evaluation(20, 3.1, 3.1, True, 0.5, 4.5),
        Evaluation(25, 3.05, 3.05, True, 0.5, 6.0),  # a final evaluation after the last progress point
    ]
    rows = record.curves(events)
    assert [r["step"] for r in rows] == [10, 20, 25]
    assert rows[0] == dict(
        zip(
            record.CURVE_COLUMNS,
            [10, 2.0, 1280, 3.5, None, 1e-3, 900.0, 180.0, 2, 300.5, None, None],
            strict=True,
        )
    )
    assert (rows[1]["loss"], rows[1]["val_loss"], rows[1]["elapsed"], rows[1]["rss_mb"]) == (3.0, 3.1, 4.0, 301.0)
    assert (rows[2]["loss"], rows[2]["val_loss"], rows[2]["elapsed"]) == (None, 3.05, 6.0)


def test_runs_run_csv_prints_the_records_curves(tmp_path, capsys):
    root = tmp_path / "checkpoints"
    folder = make_run(root, "small", steps=300)
    assert cli.main(["runs", "small", "--csv", "--checkpoint-dir", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(",")[:5] == ["step", "elapsed", "chars", "loss", "val_loss"]
    table = list(csv.DictReader(io.StringIO("\n".join(lines))))
    events = record.read(folder).events
    progress = [e for e in events if isinstance(e, Progress)]
    evals = {e.step: e.val_loss for e in events if isinstance(e, Evaluation)}
    assert [int(r["step"]) for r in table] == [p.step for p in progress]  # every kept point, in order
    for r, p in zip(table, progress, strict=True):
        assert float(r["loss"]) == p.loss and float(r["elapsed"]) == p.elapsed
        assert r["val_loss"] == (repr(evals[p.step]) if p.step in evals else "")
        assert r["cpu_percent"] == ""  # a record without the system figures: empty cells
    assert {int(r["step"]) for r in table if r["val_loss"]} == {100, 200, 300}


def test_csv_needs_a_run_and_a_run_needs_csv(tmp_path, capsys):
    root = tmp_path / "checkpoints"
    make_run(root, "small", steps=100)
    assert cli.main(["runs", "--csv", "--checkpoint-dir", str(root)]) == 2
    assert "name it" in capsys.readouterr().err
    assert cli.main(["runs", "small", "--checkpoint-dir", str(root)]) == 2
    assert "add --csv" in capsys.readouterr().err
    assert cli.main(["runs", "nothing", "--csv", "--checkpoint-dir", str(root)]) == 2
    assert "no run named 'nothing'" in capsys.readouterr().err


@pytest.mark.process
def test_runs_latest_csv_as_a_user_runs_it(tmp_path):
    root = tmp_path / "checkpoints"
    make_run(root, "small", steps=200)
    proc = rnn_tui("runs", "latest", "--csv", "--checkpoint-dir", root, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert header.startswith("step,elapsed,chars,loss,val_loss,")
    assert len(rows) == 20 and rows[-1].startswith("200,")
    assert_user_error(rnn_tui("runs", "--csv", "--checkpoint-dir", root, cwd=tmp_path), "--csv")
