"""One rank of a torchrun job that trains as `rnn-tui train FLAGS` does, then saves its own weights.

    torchrun --standalone --nproc_per_node 2 tests/ddp_probe.py OUT_DIR TRAIN-FLAGS...

For tests/test_distributed.py: only rank 0 writes the run folder, so this is how a test sees
what the other ranks hold (OUT_DIR/rank<r>.npz).
"""

import sys
import weakref

import numpy as np

from rnn_tui.cli import build_parser, run_spec
from rnn_tui.runs import plan
from rnn_tui.train import distributed
from rnn_tui.train import state as train_state
from rnn_tui.train.loop import prepare

out, flags = sys.argv[1], sys.argv[2:]
request = run_spec(build_parser().parse_args(["train", *flags]))
with distributed.start("cpu") as job, prepare(job.share_plan(lambda: plan(request)), None, job) as trainer:
    trainer.run()
    np.savez(f"{out}/rank{job.rank}.npz", **train_state.model_arrays(trainer.model))
    wrapper = weakref.ref(trainer.net)
# DistributedDataParallel holds the process group. Left alive past destroy_process_group, gloo's threads met the
# interpreter's exit: the likely cause of a rank that died in CI with "terminate called without an active exception".
assert wrapper() is None, "the trainer still holds DistributedDataParallel after it closed"
