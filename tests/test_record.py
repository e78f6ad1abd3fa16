"""The run record: written thinned, cut back on resume, read past damage, tailed while it grows."""

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_tui import record
from rnn_tui.errors import UserError
from rnn_tui.events import Evaluation, Finished, Notice, Progress, RunStarted, Sample, from_json
from rnn_tui.session import history_of

START = RunStarted(0, "run", {"name": "demo"}, {"cell": "lstm"}, {}, 10, "cpu")


def progress(step: int, elapsed: float) -> Progress:
    return Progress(step, 0, 2.0, 1e-3, 1000.0, elapsed)


def test_progress_is_thinned_and_everything_else_kept(tmp_path):
    w = record.Writer(tmp_path)
    w(START)
    for step in range(1, 3001):  # an hour of progress, two a second
        w(progress(step, step * 1.2))
        if step % 500 == 0:
            w(Evaluation(step, 1.5, 1.5, True, 1.0, step * 1.2))
    w.close()
    events = record.read(tmp_path).events
    kept = [e for e in events if isinstance(e, Progress)]
    assert 100 < len(kept) < 400  # a few hundred points an hour
    assert [e.step for e in events if isinstance(e, Evaluation)] == [500, 1000, 1500, 2000, 2500, 3000]
    for e in events:  # the curve reaches every evaluation
        if isinstance(e, Evaluation):
            assert any(p.step == e.step for p in kept)


def test_resume_cuts_the_record_back_to_the_checkpoint(tmp_path):
    w = record.Writer(tmp_path)
    for e in (START, progress(10, 1), Evaluation(10, 2, 2, True, 0, 1), Sample(10, "x", 0.8), progress(20, 2)):
        w(e)
    w(Evaluation(20, 1.9, 1.9, True, 0, 2))
    w.close()
    w = record.Writer(tmp_path, resume_step=10)
    w(RunStarted(10, "run", {}, {}, {}, 10, "cpu", resumed=True))
    w.close()
    steps = [(type(e).__name__, e.step) for e in record.read(tmp_path).events]
    assert steps == [
        ("RunStarted", 0),
        ("Progress", 10),
        ("Evaluation", 10),
        ("Sample", 10),
        ("CheckpointSaved", 10),  # the checkpoint it resumed from, which the record had not got to
        ("RunStarted", 10),
    ]


def test_a_damaged_line_is_skipped_and_reported(tmp_path):
    w = record.Writer(tmp_path)
    w(START)
    w(progress(5, 1))
    w.close()
    with open(tmp_path / record.FILENAME, "a") as fh:
        fh.write('{"event": "eval", "step": "ten"}\n')  # wrong type
        fh.write("garbage\n")
        fh.write('{"event": "from-the-future", "step": 6}\n')  # a newer kind: ignored, not damage
        fh.write('{"event": "progress", "step": 7, "epo')  # cut off by a kill -9
    contents = record.read(tmp_path)
    assert [type(e) for e in contents.events] == [RunStarted, Progress]
    assert contents.damaged == [4, 5, 7]
    history = history_of(tmp_path)
    notices = [e for e in history if isinstance(e, Notice)]
    assert len(notices) == 1 and "damaged lines" in notices[0].message and "4, 5, 7" in notices[0].message


def test_a_newer_record_format_asks_for_an_upgrade(tmp_path):
    (tmp_path / record.FILENAME).write_text(json.dumps({"format": record.FORMAT, "version": 99}) + "\n")
    with pytest.raises(UserError, match="upgrade"):
        record.read(tmp_path)


def test_tail_follows_appends_partial_lines_and_rewrites(tmp_path):
    w = record.Writer(tmp_path)
    w(START)
    tail = record.Tail(tmp_path)
    contents, reset = tail.poll()
    assert [type(e) for e in contents.events] == [RunStarted] and not reset
    path = tmp_path / record.FILENAME
    line = json.dumps(Evaluation(10, 2.0, 2.0, True, 0.1, 1.0).to_json())
    with open(path, "a") as fh:
        fh.write(line[:20])  # a writer caught mid-line
    assert tail.poll()[0].events == []
    with open(path, "a") as fh:
        fh.write(line[20:] + "\n")
    assert [e.step for e in tail.poll()[0].events] == [10]
    record.cut(tmp_path, 0)  # a resume rewrites the file
    contents, reset = tail.poll()
    assert reset and [type(e) for e in contents.events] == [RunStarted]
    os.remove(path)
    tail.poll()
    assert tail.gone


EVENTS = st.one_of(
    st.builds(Progress, st.integers(0, 10**9), st.integers(0, 99), st.floats(), st.floats(), st.floats(), st.floats()),
    st.builds(Sample, st.integers(0, 10**9), st.text(), st.floats(0, 5), st.integers(0, 2**32 - 1), st.text()),
    st.builds(Notice, st.integers(0, 10**9), st.text(), st.sampled_from(["information", "warning", "error"])),
    st.builds(Finished, st.integers(0, 10**9), st.text(), st.one_of(st.none(), st.floats()), st.floats()),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(EVENTS, max_size=20))
def test_every_event_survives_the_record(tmp_path_factory, events):
    folder = tmp_path_factory.mktemp("rec")
    w = record.Writer(folder)
    for e in events:
        w(e)
    w.close()
    got = record.read(folder)
    assert got.damaged == []
    written = [json.dumps(e.to_json()) for e in events]
    read = [json.dumps(e.to_json()) for e in got.events]
    assert [r for r in read if '"progress"' not in r] == [w for w in written if '"progress"' not in w]
    it = iter(written)
    assert all(r in it for r in read)  # what was kept, in order: progress only thinned out


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_the_reader_never_crashes_on_junk(tmp_path_factory, junk):
    folder = tmp_path_factory.mktemp("junk")
    (folder / record.FILENAME).write_bytes(junk)
    try:
        contents = record.read(folder)
    except UserError as exc:  # only a header that claims a newer format
        assert "upgrade" in str(exc)
        return
    assert all(isinstance(n, int) for n in contents.damaged)


@given(
    st.dictionaries(
        st.sampled_from(["event", "step", "val_loss", "best_val_loss", "is_best", "text"]),
        st.none() | st.booleans() | st.integers() | st.text(),
    )
)
def test_from_json_accepts_events_or_raises_value_error(d):
    try:
        event = from_json(d)
    except ValueError:
        return
    assert event.to_json()["event"] == d["event"]


def test_a_moved_run_is_found_where_it_is_now(tmp_path):
    """A run folder moved, copied to another machine or shipped: its start event names where it is, so the app
    looks there (the copies check, exports), not where it trained."""
    w = record.Writer(tmp_path / "trained-here")
    w(START)
    w.close()
    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    (tmp_path / "trained-here").rename(moved)
    assert json.loads((moved / record.FILENAME).read_text().splitlines()[1])["run_dir"] == "run"  # as written
    for events in (record.read(moved).events, record.Tail(moved).poll()[0].events, history_of(moved)):
        assert [e.run_dir for e in events if isinstance(e, RunStarted)] == [str(moved)]
