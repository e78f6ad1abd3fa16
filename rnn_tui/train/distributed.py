"""Training on several processes with torchrun: the process group, who writes, reductions and row shares.

    torchrun --standalone --nproc_per_node=N -m rnn_tui train ...

torchrun starts N copies of `rnn-tui train` with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT in their environment; `start()` reads them and joins the process group (NCCL on
CUDA, gloo on the CPU). Without them it returns `LOCAL`, a group of one on which every method
here is the identity, so a single process trains exactly as it always did.

How a job divides the work:
- rank 0 plans the run, takes the run's lock, reads the checkpoint and writes everything
  (checkpoints, the run record, output); the others receive the plan and the checkpoint over
  the process group and never touch the run folder;
- the global batch (`--batch-size`) is split into equal shares of rows: rank r trains rows
  [r*B/N, (r+1)*B/N) of the carried-state batch (corpus.Batches) and keeps their hidden state;
  one all-reduce after the backward pass averages the gradients, so a step is the step one
  process would take on the whole batch;
- a checkpoint gathers the hidden state's rows to rank 0, and a resume hands each rank its rows,
  so a run resumes on any number of processes that divides its batch;
- the validation streams are shared out the same way and the loss is summed over ranks;
- every decision that depends on a clock or a signal (stop now, the time budget) is agreed once
  a step, so all ranks take the same steps and meet in the same collectives.

If a rank fails, the others find out in their next collective and stop with `JobFailed`; the
last checkpoint stays whole (its writes are atomic), and torchrun reports the job as failed.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist

from rnn_tui.checkpoint import Arrays, Checkpoint
from rnn_tui.errors import JobFailed, UserError
from rnn_tui.runs import RunPlan
from rnn_tui.train.devices import cpu_count, pick_device
from rnn_tui.train.model import State

ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")  # set by torchrun (and by other launchers that follow it)
RNG_STRIDE = 1_000_003  # ranks other than 0 draw dropout from seed + rank * RNG_STRIDE (+ the step on resume)

T = TypeVar("T")


def launched() -> bool:
    """Whether this process was started by torchrun (or a launcher that sets the same variables)."""
    return all(name in os.environ for name in ENV)


@dataclass(frozen=True)
class Group:
    """This process's place in the job. `LOCAL` (no backend) is a job of one process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    backend: str | None = None  # "nccl" or "gloo" once the process group is up
    device: torch.device | None = None  # the device this rank trains on (None: pick it as usual)

    @property
    def active(self) -> bool:
        return self.backend is not None

    @property
    def writer(self) -> bool:
        """Rank 0 writes the run folder and the output; the others stay quiet."""
        return self.rank == 0

    def describe(self) -> str:
        """What the run's device line adds, e.g. ", 8 processes (nccl)"."""
        if not self.active:
            return ""
        return f", {self.world} process{'es' if self.world > 1 else ''} ({self.backend})"

    def threads(self) -> int | None:
        """CPU threads for each rank when none were asked for: the node's cores shared out (None: all)."""
        return max(1, cpu_count() // self.local_world) if self.active else None

    # ------------------------------------------------------------ shares of the batch

    def share(self, n: int) -> slice:
        """This rank's contiguous share of n rows (shares differ by at most one row)."""
        return slice(self.rank * n // self.world, (self.rank + 1) * n // self.world)

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world:
            low = max(self.world, batch_size // self.world * self.world)
            self.refuse(
                f"--batch-size {batch_size} does not split evenly across {self.world} processes; "
                f"use a multiple of {self.world} (e.g. {low} or {low + self.world}), or another number of processes"
            )

    def my_rows(self, state: State | None, batch_size: int) -> State | None:
        """This rank's rows of a whole batch's hidden state; None if it was saved for another batch size."""
        if state is None:
            return None
        parts = state if isinstance(state, tuple) else (state,)
        if any(p.shape[1] != batch_size for p in parts):
            return None
        if not self.active:
            return state
        mine = tuple(p[:, self.share(batch_size)].contiguous() for p in parts)
        return mine if isinstance(state, tuple) else mine[0]

    def gather_rows(self, state: State | None) -> State | None:
        """The whole batch's hidden state from every rank's rows (on every rank)."""
        if state is None or not self.active:
            return state
        parts = state if isinstance(state, tuple) else (state,)
        whole = []
        for p in parts:
            pieces = [torch.empty_like(p) for _ in range(self.world)]
            with self.talking():
                dist.all_gather(pieces, p.contiguous())
            whole.append(torch.cat(pieces, dim=1))
        return tuple(whole) if isinstance(state, tuple) else whole[0]

    # ------------------------------------------------------------ training together

    def same_start(self, model: torch.nn.Module) -> None:
        """Give every rank rank 0's weights (a fresh model is seeded alike everywhere; this makes sure of it)."""
        if not self.active:
            return
        with self.talking(), torch.no_grad():
            for t in model.state_dict().values():
                dist.broadcast(t, 0)

    def average_gradients(self, model: torch.nn.Module) -> None:
        """Average the gradients over the ranks, all of them in one all-reduce, so that a step is the step
        one process would take on the whole batch.

        Not DistributedDataParallel: it keeps the process group alive past destroy_process_group (torch
        2.13), and gloo's threads then met the interpreter's exit (a rank aborted at the very end of a job
        with "terminate called without an active exception"). An LSTM's weight gradients are complete only
        at the end of backpropagation through time, so its overlap of the all-reduce with the backward pass
        had little to hide anyway.
        """
        if not self.active:
            return
        params = [p for p in model.parameters() if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        with self.talking():
            dist.all_reduce(flat)
        flat /= self.world
        for p, g in zip(params, flat.split([p.numel() for p in params]), strict=True):
            p.grad.copy_(g.view_as(p))

    def fork_rng(self, seed: int, step: int = 0) -> None:
        """Give ranks other than 0 their own dropout stream (rank 0 keeps the single-process one)."""
        if self.rank:
            torch.manual_seed((seed + self.rank * RNG_STRIDE + step) % 2**63)

    def mean(self, value: torch.Tensor) -> float:
        """The mean over ranks of a scalar tensor (every rank's share of the batch is the same size)."""
        if not self.active:
            return value.item()
        t = value.detach().float().reshape(1)
        with self.talking():
            dist.all_reduce(t)
        return t.item() / self.world

    def sum(self, *values: float) -> tuple[float, ...]:
        return tuple(self._reduce(values, dist.ReduceOp.SUM)) if self.active else values

    def max(self, value: float) -> float:
        return self._reduce([value], dist.ReduceOp.MAX)[0] if self.active else value

    def agree(self, elapsed: float, stop: bool) -> tuple[float, bool]:
        """The longest elapsed training time, and whether any rank was asked to stop: every rank then
        follows the same schedule and leaves the loop at the same step."""
        if not self.active:
            return elapsed, stop
        elapsed, flag = self._reduce([elapsed, float(stop)], dist.ReduceOp.MAX)
        return elapsed, flag > 0

    def _reduce(self, values, op) -> list[float]:
        t = torch.tensor(list(values), dtype=torch.float64, device=self._wire)
        with self.talking():
            dist.all_reduce(t, op=op)
        return t.tolist()

    @property
    def _wire(self) -> torch.device:
        """Where tensors must be to travel: the GPU for NCCL, the CPU for gloo."""
        return self.device if self.backend == "nccl" and self.device is not None else torch.device("cpu")

    # ------------------------------------------------------------ what rank 0 decides

    def refuse(self, message: str) -> None:
        """A mistake every rank found alike: rank 0 says it (one line, exit 2); the others leave quietly."""
        if self.writer:
            raise UserError(message)
        raise SystemExit(2)

    def writer_does(self, work: Callable[[], T]) -> T | None:
        """Run `work` on rank 0 only and tell the others whether it worked; if it failed, they leave quietly
        (rank 0 reports why). The others get None."""
        if not self.active:
            return work()
        if self.writer:
            try:
                result = work()
            except BaseException:
                self._broadcast_json({"ok": False})
                raise
            self._broadcast_json({"ok": True})
            return result
        if not self._broadcast_json(None)["ok"]:
            raise SystemExit(2)
        return None

    def share_plan(self, make: Callable[[], RunPlan]) -> RunPlan:
        """Rank 0 plans (a new run's name has a timestamp); every rank gets the same plan."""
        made = self.writer_does(make)
        if not self.active:
            return made
        return RunPlan.from_json(self._broadcast_json(made.to_json() if made else None))

    def share_checkpoint(self, ckpt: Checkpoint | None) -> Checkpoint:
        """Rank 0's checkpoint on every rank (only rank 0 reads the run folder, so other nodes need no copy)."""
        if not self.active:
            return ckpt
        head = self._broadcast_json({"path": str(ckpt.path), "meta": ckpt.meta} if ckpt else None)
        model = self._broadcast_arrays(ckpt.model if ckpt else None)
        optimizer = self._broadcast_arrays(ckpt.optimizer if ckpt else None)
        return Checkpoint.of(Path(head["path"]), head["meta"], model, optimizer)

    def check_same_text(self, sha256: str) -> None:
        """Refuse a job whose ranks read different texts (on another node, another file at the same path)."""
        if not self.active:
            return
        theirs = self._broadcast_json(sha256 if self.writer else None)
        flags = torch.tensor([float(theirs != sha256)], device=self._wire)
        gathered = [torch.zeros_like(flags) for _ in range(self.world)]
        with self.talking():
            dist.all_gather(gathered, flags)
        odd = [r for r, f in enumerate(gathered) if f.item()]
        if odd:
            self.refuse(
                f"the text differs between processes (rank {', '.join(map(str, odd))} read another file than rank 0); "
                "give every node the same --data file at the same path"
            )

    @contextlib.contextmanager
    def local_first(self) -> Iterator[None]:
        """Let each node's first rank do something first (download, encode into the cache), then the others."""
        if self.active and self.local_rank:
            self._barrier()
        yield
        if self.active and not self.local_rank:
            self._barrier()

    def _barrier(self) -> None:
        with self.talking():
            if self.backend == "nccl" and self.device is not None:
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def _broadcast_json(self, value: object) -> object:
        """Rank 0's `value` (anything JSON can carry) on every rank."""
        data = json.dumps(value, ensure_ascii=False).encode() if self.writer else b""
        size = torch.tensor([len(data)], dtype=torch.int64, device=self._wire)
        with self.talking():
            dist.broadcast(size, 0)
        buf = torch.zeros(int(size.item()), dtype=torch.uint8)
        if self.writer:
            buf = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        buf = buf.to(self._wire)
        with self.talking():
            dist.broadcast(buf, 0)
        return json.loads(bytes(buf.cpu().numpy()).decode())

    def _broadcast_arrays(self, arrays: Arrays | None) -> Arrays:
        """Rank 0's named NumPy arrays on every rank (names, dtypes and shapes first, then the data)."""
        layout = self._broadcast_json(
            {k: [v.dtype.str, list(v.shape)] for k, v in arrays.items()} if arrays is not None else None
        )
        out: Arrays = {}
        for name, (dtype, shape) in layout.items():
            a = np.ascontiguousarray(arrays[name]) if arrays is not None else np.empty(shape, np.dtype(dtype))
            t = torch.from_numpy(a.copy()).to(self._wire)
            with self.talking():
                dist.broadcast(t, 0)
            out[name] = t.cpu().numpy()
        return out

    # ------------------------------------------------------------ failures

    @contextlib.contextmanager
    def talking(self) -> Iterator[None]:
        """Around a collective: a communication failure means another rank is gone; say so in one line."""
        if not self.active:
            yield
            return
        try:
            yield
        except RuntimeError as exc:
            # NCCL reports a lost peer as a DistError; gloo as a plain RuntimeError naming itself. Anything
            # else (running out of GPU memory in backward, say) is this rank's own failure: let it show.
            if not isinstance(exc, dist.DistError) and "gloo" not in str(exc):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if first.startswith("[") and "] " in first:  # gloo puts its source file first
                first = first.split("] ", 1)[1]
            first = first.split(". ", 1)[0][:160]  # gloo then adds advice meant for its own developers
            raise JobFailed(
                f"rank {self.rank} lost contact with the other processes ({first}); another process failed "
                "or was stopped: see its message. The last checkpoint is whole: resume it with --resume"
            ) from None


LOCAL = Group()


@contextlib.contextmanager
def start(device_name: str = "auto") -> Iterator[Group]:
    """The job this process belongs to: LOCAL outside torchrun, else a joined process group (left at the end)."""
    if not launched():
        yield LOCAL
        return
    rank = _env_int("RANK")
    try:
        group = _join(rank, device_name)
    except UserError:
        if rank:  # every rank found the same mistake; rank 0 says it
            raise SystemExit(2) from None
        raise
    try:
        yield group
    finally:
        with contextlib.suppress(RuntimeError, ValueError):
            dist.destroy_process_group()  # also after a lost peer: gloo's threads must end before the process


def _join(rank: int, device_name: str) -> Group:
    world, local_rank = _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise UserError(f"{name} is not set; start distributed training with torchrun (see the README)")
    device = pick_device(device_name)
    if device.type == "mps":
        raise UserError("torchrun with --device mps is not supported; use --device cpu, or train in one process")
    if device.type == "cuda":
        if not dist.is_nccl_available():
            raise UserError("this PyTorch has no NCCL, which training on several GPUs needs; use --device cpu (gloo)")
        if local_rank >= torch.cuda.device_count():
            raise UserError(
                f"torchrun started {local_world} processes on this node but it has {torch.cuda.device_count()} GPUs; "
                f"use --nproc_per_node {torch.cuda.device_count()}"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        if not dist.is_gloo_available():
            raise UserError("this PyTorch has no gloo backend, which training on several CPU processes needs")
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend, rank=rank, world_size=world)
    return Group(rank, world, local_rank, local_world, backend, device)


def _env_int(name: str, default: int | None = None) -> int:
    text = os.environ.get(name)
    if text is None and default is not None:
        return default
    try:
        return int(text)
    except (TypeError, ValueError):
        raise UserError(
            f"{name}={text!r} in the environment is not a whole number; start the job with torchrun"
        ) from None
