"""Training with torchrun: 2 CPU processes (gloo) against one, as a user launches them."""

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from rnn_tui import checkpoint, record
from rnn_tui.config import ModelConfig, Settings
from rnn_tui.errors import JobFailed
from rnn_tui.runs import RunPlan, plan
from rnn_tui.text.batches import Batches
from rnn_tui.train import state as train_state
from rnn_tui.train.distributed import LOCAL, Group
from rnn_tui.train.loop import prepare
from tests.conftest import TINY_FLAGS, cli_env, resume_plan, tiny_request, wait_for

PROBE = Path(__file__).with_name("ddp_probe.py")
# Dropout 0, so one process and two take exactly the same steps (up to the order of float sums); fp32, because
# precision "auto" is bf16 where the CPU multiplies it, and there two ranks' half batches round otherwise than one
# whole batch. The precision belongs to the machine: a resume is given it again.
FLAGS = [*TINY_FLAGS, "--dropout", "0", "--eval-every", "10", "--sample-every", "1000", "--eval-chars", "2000"]
FLAGS += ["--precision", "fp32"]


def torchrun(n: int, *args, cwd, env=None, timeout=240, nodes=("--standalone",), **popen):
    """`torchrun NODES --nproc_per_node N ARGS`: run to the end, or started (given Popen's arguments)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", *nodes, "--nproc_per_node", str(n), *map(str, args)]
    if popen:
        return subprocess.Popen(cmd, cwd=cwd, env=env or cli_env(), text=True, **popen)
    return subprocess.run(cmd, cwd=cwd, env=env or cli_env(), capture_output=True, text=True, timeout=timeout)


def one_process(text_file, ckpt_dir, steps: int, cell: str = "lstm"):
    """The same run as FLAGS, trained in this process."""
    opts = {"eval_every": 10, "sample_every": 1000, "precision": "fp32"}
    req = tiny_request(text_file, ckpt_dir, max_steps=steps, **opts)
    req = dataclasses.replace(req, model=Settings(ModelConfig, {"dropout": 0, "cell": cell}).over(req.model))
    with prepare(plan(req)) as t:
        t.run()
    return train_state.model_arrays(t.model), t


def assert_close(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=2e-5, err_msg=k)


# --------------------------------------------------------------------------- pieces


@pytest.mark.parametrize("n", [1, 7, 8, 64])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shares_cover_every_row_once(n, world):
    rows = [i for r in range(world) for i in list(range(n))[Group(rank=r, world=world).share(n)]]
    assert rows == list(range(n))


@pytest.mark.parametrize("mode", ["tbptt", "random"])
def test_ranks_take_their_rows_of_the_same_batches(mode):
    data = np.arange(5000) % 97
    whole = Batches(data, 8, 16, seed=3, mode=mode)
    for epoch, index in [(0, 0), (0, 5), (2, 7)]:
        parts = [
            Batches(data, 8, 16, 3, mode, rows=Group(rank=r, world=4).share(8)).get(epoch, index) for r in range(4)
        ]
        for i in (0, 1):
            assert np.array_equal(np.concatenate([p[i] for p in parts]), whole.get(epoch, index)[i])


def test_a_plan_travels_as_json(text_file, tmp_path):
    p = plan(tiny_request(text_file, tmp_path))
    assert RunPlan.from_json(json.loads(json.dumps(p.to_json()))) == p


def test_alone_nothing_changes():
    state = (torch.randn(2, 8, 4), torch.randn(2, 8, 4))
    assert LOCAL.gather_rows(state) is state and LOCAL.my_rows(state, 8) is state
    assert LOCAL.my_rows(state, 4) is None  # saved for another batch size: start afresh
    assert LOCAL.agree(1.5, True) == (1.5, True) and LOCAL.sum(2.0, 3) == (2.0, 3) and LOCAL.describe() == ""


def test_a_lost_peer_is_one_line_and_other_failures_stay_what_they_are():
    job = Group(rank=1, world=2, backend="gloo")
    gloo = "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:5779: Connection reset"
    with pytest.raises(JobFailed) as lost, job.talking():
        raise RuntimeError(gloo + " by peer. This is typically caused by a remote worker hanging. GLHF!")
    assert str(lost.value).startswith(
        "rank 1 lost contact with the other processes (Read error [127.0.0.1]:5779: Connection reset by peer); "
    )
    with pytest.raises(torch.OutOfMemoryError), job.talking():
        raise torch.OutOfMemoryError("CUDA out of memory")


# --------------------------------------------------------------------------- torchrun


@pytest.mark.process
@pytest.mark.parametrize("cell", ["lstm", "minlstm"])
def test_two_ranks_hold_the_same_weights_as_one_process(text_file, tmp_path, cell):
    flags = ["--data", text_file, *FLAGS, "--max-steps", "30", "--checkpoint-dir", tmp_path / "ck", "--run-name", "p"]
    flags += ["--model", cell]
    proc = torchrun(2, PROBE, tmp_path, *flags, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (dict(np.load(tmp_path / f"rank{r}.npz")) for r in (0, 1))
    for k in rank0:
        assert np.array_equal(rank0[k], rank1[k]), k  # the averaged gradients keep the ranks identical
    alone, _ = one_process(text_file, tmp_path / "alone", 30, cell)
    assert_close(rank0, alone)


AUDIT = """
import os, sys
if "RANK" in os.environ:
    _root = os.environ["AUDIT_ROOT"]
    _log = os.open(os.environ["AUDIT_LOG"] + "." + os.environ["RANK"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    _WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def _hook(event, args):
        if event == "open":
            path, mode, flags = args
            if not ((isinstance(mode, str) and any(c in mode for c in "wax+")) or (flags or 0) & _WRITES):
                return
        elif event not in ("os.rename", "os.replace", "os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree"):
            return
        path = args[0]
        if isinstance(path, (str, bytes, os.PathLike)) and os.path.abspath(os.fsdecode(path)).startswith(_root):
            os.write(_log, f"{event} {os.fsdecode(path)}\\n".encode())

    sys.addaudithook(_hook)
"""


@pytest.mark.process
def test_a_run_goes_from_one_process_to_two_nodes_and_back_and_only_rank_0_writes(text_file, tmp_path):
    ck, alone = tmp_path / "ck", tmp_path / "alone"
    for folder in (ck, alone):
        one_process(text_file, folder, 20)  # the same run twice, to step 20
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(textwrap.dedent(AUDIT))
    env = cli_env(
        PYTHONPATH=os.pathsep.join([str(tmp_path / "hook"), os.environ.get("PYTHONPATH", "")]),
        AUDIT_ROOT=str(ck),
        AUDIT_LOG=str(tmp_path / "audit"),
    )
    # Two "nodes" of one process each, as on two machines: the multi-node form of torchrun.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = ["--nnodes", "2", "--rdzv_endpoint", f"127.0.0.1:{port}", "--node_rank"]
    args = ["-m", "rnn_tui", "train", "--resume", "tiny", "--checkpoint-dir", ck, "--max-steps", "30", "--json"]
    args += ["--precision", "fp32"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    second = torchrun(1, *args, cwd=tmp_path, env=env, nodes=[*node, "1"], **pipes)
    try:
        proc = torchrun(1, *args, cwd=tmp_path, env=env, nodes=[*node, "0"])
        out, err = second.communicate(timeout=120)
    finally:
        if second.poll() is None:
            second.kill()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert second.returncode == 0 and out == "" and "rnn-tui" not in err, err[-3000:]  # the other node is quiet
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    starts = [e for e in events if e["event"] == "start"]
    assert len(starts) == 1 and starts[0]["resumed"] and starts[0]["step"] == 20  # rank 0 alone reports
    assert starts[0]["device"].endswith("2 processes (gloo)")
    assert events[-1]["event"] == "done" and events[-1]["step"] == 30
    written = {r: (tmp_path / f"audit.{r}").read_text().splitlines() for r in ("0", "1")}
    assert any("model.safetensors" in w for w in written["0"]) and any("events.jsonl" in w for w in written["0"])
    assert written["1"] == []  # rank 1 never wrote, renamed, made or removed anything in the run folder
    with prepare(resume_plan(alone, max_steps=30, precision="fp32")) as t:
        t.run()  # the same ten steps in one process
    two, one = checkpoint.load(ck / "tiny"), checkpoint.load(alone / "tiny")
    assert_close(two.model, one.model)
    carried = sorted(k for k in one.optimizer if k.startswith("carried."))
    assert carried == ["carried.state.0", "carried.state.1"]  # h and c, every row
    assert_close({k: two.optimizer[k] for k in carried}, {k: one.optimizer[k] for k in carried})

    # The folder is a plain run folder: one process carries on from both, and they stay together.
    finals = []
    for folder in (ck, alone):
        with prepare(resume_plan(folder, max_steps=40, precision="fp32")) as t:
            assert t.step == 30 and t.carried[0].shape[1] == 8  # the whole batch's hidden state, gathered
            t.run()
        finals.append((train_state.model_arrays(t.model), t.best_val_loss))
    assert_close(finals[0][0], finals[1][0])
    assert finals[0][1] == pytest.approx(finals[1][1], abs=1e-4)
    assert [e.resumed for e in record.read(ck / "tiny").events if e.__class__.__name__ == "RunStarted"] == [
        False,
        True,
        True,
    ]


@pytest.mark.process
def test_a_batch_that_does_not_split_is_refused_once(text_file, tmp_path):
    args = ["-m", "rnn_tui", "train", "--data", text_file, *FLAGS, "--batch-size", "7", "--checkpoint-dir", "ck"]
    proc = torchrun(2, *args, cwd=tmp_path)
    assert proc.returncode != 0
    ours = [line for line in proc.stderr.splitlines() if line.startswith("rnn-tui train:")]
    assert ours == [
        "rnn-tui train: error: --batch-size 7 does not split evenly across 2 processes; use a multiple of 2 "
        "(e.g. 6 or 8), or another number of processes"
    ]
    assert not (tmp_path / "ck").exists()  # refused before the run folder was made


def _rank_pid(launcher: int, rank: int) -> int | None:
    for entry in Path("/proc").iterdir():
        try:
            child = entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == launcher
            if child and f"RANK={rank}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                return int(entry.name)
        except (OSError, IndexError, ValueError):
            continue
    return None


@pytest.mark.process
def test_when_a_rank_dies_the_others_stop_and_the_checkpoint_stays_whole(text_file, tmp_path):
    args = ["-m", "rnn_tui", "train", "--data", text_file, *FLAGS, "--checkpoint-every", "10", "--run-name", "dies"]
    job = torchrun(2, *args, "--max-steps", "100000", cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run = tmp_path / "checkpoints" / "dies"
    try:
        wait_for(lambda: (run / checkpoint.META).exists(), timeout=120, what="the first checkpoint")
        victim = wait_for(lambda: _rank_pid(job.pid, 1), what="rank 1's process")
        os.kill(victim, signal.SIGKILL)
        _, err = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0
    assert "rnn-tui train: stopped: rank 0 lost contact with the other processes" in err
    ckpt = checkpoint.load(run)  # whole, and it resumes in one process
    assert ckpt.step % 10 == 0
    with prepare(resume_plan(tmp_path / "checkpoints", "dies", max_steps=ckpt.step + 5)) as t:
        assert t.run().step == ckpt.step + 5


@pytest.mark.process
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_nccl_without_a_gpu_is_one_line_and_exit_2(text_file, tmp_path):
    env = cli_env(
        RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT="9"
    )  # as torchrun sets
    proc = subprocess.run(
        [sys.executable, "-m", "rnn_tui", "train", "--data", str(text_file), "--device", "cuda"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "rnn-tui train: error: --device cuda: this PyTorch sees no CUDA GPU; use --device cpu (or auto)"
    ]
