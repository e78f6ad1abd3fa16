"""One rank of a torchrun job that trains as `rnn-tui train FLAGS` does, then saves its own weights.

    torchrun --standalone --nproc_per_node 2 tests/ddp_probe.py OUT_DIR TRAIN-FLAGS...

For tests/test_distributed.py: only rank 0 writes the run folder, so this is how a test sees
what the other ranks hold (OUT_DIR/rank<r>.npz).
"""

import os
import sys
from pathlib import Path

import numpy as np

from rnn_tui.cli import build_parser, run_spec
from rnn_tui.runs import plan
from rnn_tui.train import distributed
from rnn_tui.train import state as train_state
from rnn_tui.train.loop import prepare

TASKS = Path(f"/proc/{os.getpid()}/task")  # where Linux names a process's threads; elsewhere the thread checks skip


def gloo_threads() -> list[str]:
    """The names of this process's threads that belong to gloo."""
    names = [(t / "comm").read_text().strip() for t in TASKS.iterdir()]
    return [n for n in names if "gloo" in n]


out, flags = sys.argv[1], sys.argv[2:]
request = run_spec(build_parser().parse_args(["train", *flags]))
with distributed.start("cpu") as job, prepare(job.share_plan(lambda: plan(request)), None, job) as trainer:
    trainer.run()
    np.savez(f"{out}/rank{job.rank}.npz", **train_state.model_arrays(trainer.model))
    assert not TASKS.is_dir() or gloo_threads(), "the job ran without gloo's threads: this probe no longer sees them"
# The process group must be gone, threads and all, once the job is left: a group kept alive (as
# DistributedDataParallel kept it) leaves gloo's threads to meet the interpreter's exit, and a rank then
# aborted at the very end of a job with "terminate called without an active exception".
assert not TASKS.is_dir() or not gloo_threads(), f"gloo's threads outlived the job: {gloo_threads()}"
