"""The run record: `events.jsonl` in the run folder, the run's append-only history. Torch-free.

    {"format": "rnn-tui-record", "version": 1}     the first line
    {"event": "start", "step": 0, ...}              then one event per line (see events.py)

Whoever trains writes it: the headless trainer, the app's trainer process, a distributed
job's rank 0. Progress is thinned to a few hundred points an hour; every evaluation,
sample, checkpoint and notice is kept. When a run resumes, the writer first cuts the
record back to the checkpoint's step, so the history always matches the weights, even
after a kill -9. Readers skip a damaged line and report its number.

A start event read back names the folder its record was read from, not the one it was
written in: a run folder that was moved, copied to another machine or shipped in the
package (rnn_tui/models/) is found where it is now.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from rnn_tui.errors import UserError
from rnn_tui.events import KINDS, CheckpointSaved, Evaluation, Event, Progress, RunStarted, from_json
from rnn_tui.fsutil import atomic_write_bytes

FILENAME = "events.jsonl"
FORMAT = "rnn-tui-record"
VERSION = 1
HEADER = {"format": FORMAT, "version": VERSION}


def progress_interval(elapsed: float) -> float:
    """Seconds of training between kept progress points: 1 s at first, then up to 15 s (about 250 an hour)."""
    return min(15.0, max(1.0, elapsed / 40))


@dataclass
class Contents:
    events: list[Event] = field(default_factory=list)
    damaged: list[int] = field(default_factory=list)  # 1-based numbers of the lines that were skipped


def _header_ok(line: str, path: Path) -> bool:
    """Whether `line` is our header; a header of a newer version is a UserError."""
    try:
        head = json.loads(line)
    except ValueError:
        return False
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        return False
    version = head.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise UserError(f"{path} is run-record format {version}, newer than this rnn-tui reads ({VERSION}); upgrade")
    return True


def parse(lines: Iterable[str], path: Path, first_line: int = 1) -> Contents:
    """Events from the lines (without their newlines) of the record at `path`. Damaged lines are skipped and
    listed. A start event's run_dir is the folder `path` is in."""
    out = Contents()
    here = str(path.parent)
    for number, line in enumerate(lines, first_line):
        if number == 1 and _header_ok(line, path):
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if isinstance(obj, dict) and isinstance(obj.get("event"), str) and obj["event"] not in KINDS:
                continue  # a kind of event from a newer rnn-tui: not ours to show
            event = from_json(obj)
            out.events.append(replace(event, run_dir=here) if isinstance(event, RunStarted) else event)
        except ValueError:
            out.damaged.append(number)
    return out


def read(run_dir: Path | str, upto_step: int | None = None) -> Contents:
    """The record of a run (empty if it has none), optionally only the events up to a step."""
    path = Path(run_dir) / FILENAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Contents()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror}); check its permissions") from None
    text = data.decode("utf-8", errors="replace")
    contents = parse(text.split("\n")[: -1 if text.endswith("\n") else None], path)
    if upto_step is not None:
        contents.events = [e for e in contents.events if getattr(e, "step", 0) <= upto_step]
    return contents


def cut(run_dir: Path | str, step: int) -> list[int]:
    """Rewrite the record with only the events up to `step`, the checkpoint resumed from (atomically).

    A process killed after committing that checkpoint but before recording it left no line
    for it: the line is added, so the record says where the weights came from.
    Returns the damaged lines dropped.
    """
    contents = read(run_dir, upto_step=step)
    saved = [e.step for e in contents.events if isinstance(e, CheckpointSaved) and not e.best]
    if step and (not saved or saved[-1] != step):
        contents.events.append(CheckpointSaved(step, str(run_dir), False))
    lines = [json.dumps(HEADER), *(json.dumps(e.to_json(), ensure_ascii=False) for e in contents.events)]
    atomic_write_bytes(Path(run_dir) / FILENAME, ("\n".join(lines) + "\n").encode())
    return contents.damaged


# `rnn-tui runs RUN --csv`: one row per step with a progress point or an evaluation; empty where there is none.
CURVE_COLUMNS = (
    "step",
    "elapsed",
    "chars",
    "loss",
    "val_loss",
    "lr",
    "chars_per_s",
    "cpu_percent",
    "threads",
    "rss_mb",
    "gpu_percent",
    "gpu_mem_mb",
)


def curves(events: Iterable[Event]) -> list[dict]:
    """A run's curves, by step: the kept progress points and every evaluation (CURVE_COLUMNS, None where absent)."""
    rows: dict[int, dict] = {}
    for e in events:
        if isinstance(e, Progress):
            row = rows.setdefault(e.step, dict.fromkeys(CURVE_COLUMNS))
            row.update({k: getattr(e, k) for k in CURVE_COLUMNS if k != "val_loss"})
        elif isinstance(e, Evaluation):
            row = rows.setdefault(e.step, dict.fromkeys(CURVE_COLUMNS))
            row["step"], row["val_loss"] = e.step, e.val_loss
            row["elapsed"] = row["elapsed"] if row["elapsed"] is not None else e.elapsed
    return [rows[step] for step in sorted(rows)]


class Writer:
    """Appends a trainer's events to its run's record, thinning progress.

    `resume_step`: the step of the checkpoint the run resumes from; the record is cut back
    to it first. None starts a new record.
    """

    def __init__(self, run_dir: Path | str, resume_step: int | None = None):
        self.path = Path(run_dir) / FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.damaged: list[int] = []
        if resume_step is None:
            atomic_write_bytes(self.path, (json.dumps(HEADER) + "\n").encode())
        else:
            self.damaged = cut(run_dir, resume_step)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - open as long as the trainer runs
        self._last_progress: float | None = None
        self._pending: Progress | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress):
            last = self._last_progress
            if last is not None and event.elapsed - last < progress_interval(event.elapsed):
                self._pending = event
                return
            self._last_progress = event.elapsed
        elif self._pending is not None:  # the curve reaches every evaluation, sample and checkpoint
            self._write(self._pending)
        self._pending = None
        self._write(event)

    def _write(self, event: Event) -> None:
        self._file.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._pending is not None:
            self._write(self._pending)
            self._pending = None
        self._file.close()


class Tail:
    """Follows a record that another process writes: new events, a rewrite (resume), or its disappearance."""

    def __init__(self, run_dir: Path | str):
        self.path = Path(run_dir) / FILENAME
        self._inode: int | None = None
        self._offset = 0
        self._line = 1
        self.gone = False

    def poll(self) -> tuple[Contents, bool]:
        """(new events, reset): `reset` means the record was rewritten and the events are all of it."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.gone = self.gone or self._inode is not None
            return Contents(), False
        # A record that came back (a folder restored, or remounted) may reuse the inode: read it again whole.
        reset = self.gone or (self._inode is not None and (st.st_ino != self._inode or st.st_size < self._offset))
        self.gone = False
        if reset or self._inode is None:
            self._inode, self._offset, self._line = st.st_ino, 0, 1
        if st.st_size == self._offset:
            return Contents(), reset
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read(st.st_size - self._offset)
        end = data.rfind(b"\n") + 1  # a line still being written waits for its newline
        lines = data[:end].decode("utf-8", errors="replace").split("\n")[:-1]
        contents = parse(lines, self.path, self._line)
        self._offset += end
        self._line += len(lines)
        return contents, reset
