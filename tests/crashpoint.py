"""`rnn-tui` that kills itself with SIGKILL at a chosen write: for the crash tests only.

    python -m tests.crashpoint STEPFILE KILL_AT PHASE -- train ...

Every operation that changes a run folder counts: a checkpoint file's write ("write"), each
fsync, rename ("replace"), mkdir, unlink and folder removal ("rmtree"), and each line of the
run record ("record"). KILL_AT is N (the Nth operation) or KIND:N (the Nth of that kind).
At that operation the process sends itself SIGKILL: just before it (PHASE "before"), half-way
through a write (PHASE "mid": half the bytes are written and flushed), or just after it
("after"). KILL_AT 0 never kills; then the number of operations goes to stderr at exit, to
size the trials. The trainer's step is kept in STEPFILE (8 bytes, memory-mapped, written
after every step), so the test knows how far training got however the process died.

Nothing here is in rnn_tui: the hooks are put in from outside, so production code has none.
"""

from __future__ import annotations

import atexit
import mmap
import os
import shutil
import signal
import sys
from pathlib import Path

from rnn_tui import checkpoint, cli, record
from rnn_tui.train import loop as training

count = 0


def main() -> int:
    stepfile, kill_at, phase, sep, *argv = sys.argv[1:]
    assert sep == "--" and phase in ("before", "mid", "after")
    only, _, n = kill_at.rpartition(":")
    n = int(n)
    step = _step_counter(Path(stepfile))
    kinds: dict[str, int] = {}

    def kill() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def op(kind, write_half=None):
        """Count one operation; kill at the chosen one. Returns whether to kill after it."""
        global count
        count += 1
        kinds[kind] = kinds.get(kind, 0) + 1
        if (kinds[kind] if only else count) != n or only not in ("", kind):
            return False
        if phase == "before" or (phase == "mid" and write_half is None):
            kill()
        if phase == "mid":
            write_half()
            kill()
        return True

    def counted(fn, kind):
        def wrapper(*args, **kwargs):
            after = op(kind)
            result = fn(*args, **kwargs)
            if after:
                kill()
            return result

        return wrapper

    for name in ("replace", "fsync", "mkdir", "unlink"):
        setattr(os, name, counted(getattr(os, name), name))
    shutil.rmtree = counted(shutil.rmtree, "rmtree")

    class File:
        """A checkpoint file being written: its write counts, and can be cut half-way."""

        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.fh.__exit__(*exc)

        def write(self, data):
            def half():
                self.fh.write(data[: len(data) // 2])
                self.fh.flush()

            after = op("write", half)
            self.fh.write(data)
            if after:
                self.fh.flush()
                kill()

        def __getattr__(self, name):
            return getattr(self.fh, name)

    checkpoint.open = lambda *a, **k: File(open(*a, **k))  # noqa: SIM115 - shadows the builtin in checkpoint.py only

    write_line = record.Writer._write

    def record_line(self, event):
        def half():
            line = record.json.dumps(event.to_json(), ensure_ascii=False) + "\n"
            self._file.write(line[: len(line) // 2])
            self._file.flush()

        after = op("record", half)
        write_line(self, event)
        if after:
            kill()

    record.Writer._write = record_line

    train_step = training.Trainer.train_step

    def counted_step(self):
        loss = train_step(self)
        step[0] = self.step
        return loss

    training.Trainer.train_step = counted_step
    if n == 0:
        atexit.register(lambda: print(f"crashpoint: {count} operations {kinds}", file=sys.stderr))
    return cli.main(argv)


def _step_counter(path: Path):
    """An int64 in a memory-mapped file: it survives SIGKILL (the page cache keeps it). -1 until a step is done."""
    import numpy as np

    tmp = path.with_suffix(".new")
    tmp.write_bytes((-1).to_bytes(8, "little", signed=True))
    os.replace(tmp, path)  # whole, for a reader that looks at any moment
    fd = os.open(path, os.O_RDWR)
    mm = mmap.mmap(fd, 8)
    return np.ndarray((1,), dtype=np.int64, buffer=mm)


if __name__ == "__main__":
    sys.exit(main())
