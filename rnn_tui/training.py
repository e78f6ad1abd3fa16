"""The trainer: AdamW, warm-up then cosine decay, clipping, evaluation, samples, checkpoints, resume.

It reports through a callback of plain event objects and knows nothing of screens.
`prepare` turns what the user asked for (a `RunRequest`) into a ready `Trainer`,
including resume with flag overrides; `Trainer.run` trains until a budget is spent or
`should_stop()` says so.
"""

from __future__ import annotations

import base64
import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rnn_tui import checkpoint
from rnn_tui.corpus import Batches, Corpus, Vocab, check_trainable, eval_streams, load_corpus, resolve_source
from rnn_tui.devices import autocast, describe, pick_device, pick_precision, set_threads
from rnn_tui.errors import UserError
from rnn_tui.generation import Generator
from rnn_tui.model import CharRNN, ModelConfig, detach_state, state_from_tensors, state_tensors

HISTORY_POINTS = 2000  # loss history kept in meta.json (older points are thinned out)
BAD_STEPS_BEFORE_ROLLBACK = 3
MAX_ROLLBACKS = 5  # then the run stops as diverged
SNAPSHOT_EVERY = 100
PROGRESS_EVERY = 0.5  # seconds between progress events


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 32
    seq_len: int = 64
    lr: float = 3e-3
    min_lr_frac: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    max_steps: int | None = None
    max_minutes: float | None = None
    eval_every: int = 500
    eval_chars: int = 200_000
    sample_every: int = 250
    sample_chars: int = 300
    sample_temperature: float = 0.8
    checkpoint_every: int = 1000
    val_frac: float = 0.1
    batching: str = "tbptt"
    seed: int = 1337
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# --------------------------------------------------------------------------- events


@dataclass
class Event:
    @property
    def kind(self) -> str:
        return type(self).__name__.lower()

    def to_dict(self) -> dict:
        return {"event": self.kind, **asdict(self)}


@dataclass
class Progress(Event):
    step: int
    epoch: int
    loss: float  # mean training loss since the last progress event (nats/char)
    lr: float
    chars_per_s: float
    elapsed: float  # seconds of training in this run, across resumes
    fraction: float | None  # of the step or time budget, if there is one
    eta: float | None  # seconds left, if there is a budget


@dataclass
class Eval(Event):
    step: int
    val_loss: float
    best_val_loss: float
    is_best: bool
    seconds: float  # the evaluation's own time
    elapsed: float  # seconds of training so far, evaluations included


@dataclass
class Sample(Event):
    step: int
    text: str
    temperature: float


@dataclass
class Checkpoint(Event):
    step: int
    path: str
    best: bool


@dataclass
class Warning(Event):
    step: int
    message: str


@dataclass
class Done(Event):
    step: int
    reason: str  # max_steps | max_minutes | stopped | diverged
    best_val_loss: float | None
    elapsed: float


# --------------------------------------------------------------------------- set-up


@dataclass
class RunRequest:
    """What the user asked for. `model` and `train` hold only the flags they gave."""

    data: str | None = None
    corpus: str | None = None
    globs: tuple[str, ...] = ()
    encoding: str = "utf-8"
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    checkpoint_dir: str = "checkpoints"
    run_name: str | None = None
    resume: str | None = None


def default_model(device: torch.device) -> dict:
    """Model defaults by device: a bigger model where there is a GPU to feed it."""
    if device.type == "cuda":
        return {"layers": 3, "hidden": 1024, "embedding": 128, "dropout": 0.3}
    return {}


def default_train(device: torch.device) -> dict:
    if device.type == "cuda":
        return {"batch_size": 64, "seq_len": 128, "lr": 2e-3}
    return {}


def validate_run(req: RunRequest) -> tuple[Path | None, checkpoint.Checkpoint | None]:
    """Cheap checks that should fail before anything heavy starts: the resumed run and the data path."""
    ckpt = None
    run_dir = None
    if req.resume:
        run_dir = checkpoint.resolve(req.resume, req.checkpoint_dir)
        ckpt = checkpoint.load(run_dir)
        saved = ckpt.config.to_dict()
        for key, value in req.model.items():
            if saved.get(key) != value:
                raise UserError(
                    f"--{key.replace('_', '-')} {value} disagrees with the run being resumed "
                    f"({key} = {saved.get(key)}); drop the flag, or start a new run without --resume"
                )
    if req.data or req.corpus:
        resolve_source(req.data, req.corpus, req.globs, req.encoding)
    TrainConfig(**req.train)
    if not ckpt:
        ModelConfig(vocab_size=2, **req.model)
    return run_dir, ckpt


# Settings that belong to the machine, not the run: a run trained on a GPU resumes on a CPU.
MACHINE_KEYS = ("device", "threads")


def prepare(req: RunRequest, on_event: Callable[[Event], None] = lambda e: None) -> Trainer:
    """Load the corpus, build or restore the model and optimizer, and return a ready Trainer."""
    if req.resume:  # we are about to write to this run: finish any interrupted checkpoint write first
        checkpoint.recover(checkpoint.resolve(req.resume, req.checkpoint_dir))
    run_dir, ckpt = validate_run(req)
    if ckpt:
        saved_src = ckpt.meta.get("source", {})
        src_req = req if (req.data or req.corpus) else RunRequest(**{**asdict(RunRequest()), **saved_src})
        if not (req.data or req.corpus) and src_req.data and not Path(src_req.data).exists():
            raise UserError(
                f"this run was trained on {src_req.data}, which is not there any more; "
                "give the text with --data PATH to resume on it"
            )
        source = resolve_source(src_req.data, src_req.corpus, tuple(src_req.globs), src_req.encoding)
        corpus = load_corpus(source)
        saved_train = {k: v for k, v in ckpt.meta["train"].items() if k not in MACHINE_KEYS}
        cfg = replace(TrainConfig.from_dict(saved_train), **req.train)
        trainer = Trainer(
            corpus,
            ckpt.config,
            cfg,
            run_dir,
            on_event,
            vocab=ckpt.vocab,
            source={
                "data": str(Path(src_req.data).resolve()) if src_req.data else None,
                "corpus": src_req.corpus,
                "globs": list(src_req.globs),
                "encoding": src_req.encoding,
            },
        )
        trainer.restore(ckpt)
        if corpus.sha256 != ckpt.meta.get("corpus", {}).get("sha256"):
            on_event(Warning(trainer.step, "the corpus differs from the one this run was trained on"))
        return trainer
    source = resolve_source(req.data, req.corpus, req.globs, req.encoding)
    corpus = load_corpus(source)
    device = pick_device(req.train.get("device", "auto"))
    cfg = TrainConfig(**{**default_train(device), **req.train})
    model_cfg = ModelConfig(vocab_size=len(corpus.vocab), **{**default_model(device), **req.model})
    name = req.run_name or f"{_slug(corpus.name)}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(req.checkpoint_dir) / name
    if (run_dir / checkpoint.META).exists():
        raise UserError(
            f"a run named {name!r} already exists in {req.checkpoint_dir}/; "
            f"continue it with --resume {name}, or choose another --run-name"
        )
    return Trainer(
        corpus,
        model_cfg,
        cfg,
        run_dir,
        on_event,
        source={
            "data": str(Path(req.data).resolve()) if req.data else None,  # resumable from any folder
            "corpus": req.corpus,
            "globs": list(req.globs),
            "encoding": req.encoding,
        },
    )


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.") or "run"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- the trainer


class Trainer:
    def __init__(
        self,
        corpus: Corpus,
        model_cfg: ModelConfig,
        cfg: TrainConfig,
        run_dir: Path,
        on_event: Callable[[Event], None] = lambda e: None,
        *,
        vocab: Vocab | None = None,
        source: dict | None = None,
    ):
        self.cfg, self.model_cfg, self.run_dir, self.emit = cfg, model_cfg, Path(run_dir), on_event
        self.corpus, self.source = corpus, source or {}
        self.vocab = vocab or corpus.vocab
        data = corpus.data if self.vocab == corpus.vocab else _reencode(corpus, self.vocab)
        train, val = (
            data[: len(data) - int(len(data) * cfg.val_frac)],
            data[len(data) - int(len(data) * cfg.val_frac) :],
        )
        check_trainable(len(train), len(val), cfg.batch_size, cfg.seq_len)
        self.device = pick_device(cfg.device)
        self.precision = pick_precision(self.device, cfg.precision)
        if self.device.type == "cpu":
            set_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.model = CharRNN(model_cfg).to(self.device)
        self.optimizer = _adamw(self.model, cfg)
        self.batches = Batches(train, cfg.batch_size, cfg.seq_len, cfg.seed, cfg.batching)
        vx, vy = eval_streams(val, cfg.eval_chars)
        self.val_x, self.val_y = torch.from_numpy(vx), torch.from_numpy(vy)
        # progress
        self.step = self.epoch = self.index = 0
        self.carried = None
        self.elapsed = 0.0
        self.best_val_loss = math.inf
        self.best_step = 0
        self.last_val_loss: float | None = None
        self.lr_scale = 1.0
        self.skipped_steps = 0
        self.rollbacks = 0
        self.history: dict[str, list[list[float]]] = {"train": [], "val": []}
        self.created = _now()
        self._eval_seconds: float | None = None
        self._snapshot: tuple[dict, dict] | None = None
        self._bad_in_a_row = 0

    @property
    def params(self) -> int:
        return self.model.num_params()

    def describe_device(self) -> str:
        return describe(self.device, self.precision)

    # ------------------------------------------------------------ schedule

    def budget_fraction(self) -> float | None:
        fracs = []
        if self.cfg.max_steps:
            fracs.append(self.step / self.cfg.max_steps)
        if self.cfg.max_minutes:
            fracs.append((self.elapsed + self._reserve()) / (self.cfg.max_minutes * 60))
        return min(1.0, max(fracs)) if fracs else None

    def lr(self) -> float:
        """Warm-up, then cosine decay to min_lr_frac over the budget; without one, 5% less per epoch."""
        c = self.cfg
        if self.step < c.warmup_steps:
            return c.lr * self.lr_scale * (self.step + 1) / c.warmup_steps
        frac = self.budget_fraction()
        if frac is None:
            decay = max(c.min_lr_frac, 0.95**self.epoch)
        else:
            decay = c.min_lr_frac + (1 - c.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * frac))
        return c.lr * self.lr_scale * decay

    def _reserve(self) -> float:
        """Seconds kept back from a time budget for the final evaluation."""
        if self._eval_seconds is not None:
            return self._eval_seconds
        guess = self.val_x.numel() / 30_000  # until the first evaluation is timed
        return min(guess, 0.1 * self.cfg.max_minutes * 60) if self.cfg.max_minutes else guess

    # ------------------------------------------------------------ training

    def train_step(self) -> float | None:
        """One optimizer step; returns the loss, or None when it was skipped as non-finite."""
        if self.index >= self.batches.per_epoch:
            self.epoch, self.index = self.epoch + 1, 0
        if self.index == 0 or not self.batches.carries_state:
            self.carried = None
        x, y = (
            torch.from_numpy(a).to(self.device, non_blocking=True) for a in self.batches.get(self.epoch, self.index)
        )
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr()
        self.index += 1
        self.step += 1
        with autocast(self.device, self.precision):
            logits, state = self.model(x, self.carried)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        value = loss.item()
        if not (math.isfinite(value) and math.isfinite(norm.item())):
            self._non_finite()
            return None
        self.optimizer.step()
        self.carried = detach_state(state)
        self._bad_in_a_row = 0
        if self.step % SNAPSHOT_EVERY == 0 or self._snapshot is None:
            self._take_snapshot()
        return value

    def _take_snapshot(self) -> None:
        self._snapshot = (
            {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            copy.deepcopy(self.optimizer.state_dict()),
        )

    def _non_finite(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.skipped_steps += 1
        self._bad_in_a_row += 1
        self.carried = None
        if self._bad_in_a_row < BAD_STEPS_BEFORE_ROLLBACK or self._snapshot is None:
            self.emit(Warning(self.step, f"non-finite loss or gradient at step {self.step}; skipped the step"))
            return
        self.model.load_state_dict(self._snapshot[0])
        self.optimizer.load_state_dict(self._snapshot[1])
        self.lr_scale *= 0.5
        self.rollbacks += 1
        self._bad_in_a_row = 0
        self.emit(
            Warning(
                self.step,
                f"{BAD_STEPS_BEFORE_ROLLBACK} non-finite steps in a row at step {self.step}: "
                f"rolled back to the last good weights and halved the learning rate "
                f"(now {self.lr():.2e})",
            )
        )

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean cross-entropy (nats/char) over the validation streams, state carried along each."""
        self.model.eval()
        total, state = 0.0, None
        chunk = 4 * self.cfg.seq_len
        for i in range(0, self.val_x.shape[1], chunk):
            x = self.val_x[:, i : i + chunk].to(self.device)
            y = self.val_y[:, i : i + chunk].to(self.device)
            with autocast(self.device, self.precision):
                logits, state = self.model(x, state)
            total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").item()
        self.model.train()
        return total / self.val_y.numel()

    def generator(self) -> Generator:
        return Generator(self.model_cfg, self.vocab, self.model.state_dict())

    def sample(self, n: int | None = None, temperature: float | None = None) -> str:
        temperature = self.cfg.sample_temperature if temperature is None else temperature
        return self.generator().sample("", n or self.cfg.sample_chars, temperature, seed=self.cfg.seed + self.step)

    def run(
        self, should_stop: Callable[[], bool] = lambda: False, hook: Callable[[Trainer], None] | None = None
    ) -> Done:
        """Train until the step or time budget is spent, or `should_stop()`; then evaluate and save.

        A stop on request saves at once, without the final evaluation, so quitting is quick.

        `hook(trainer)` runs after every step, outside the timed budget (the app uses it to
        take commands and publish weights).
        """
        c = self.cfg
        window_loss, window_steps, window_start, window_chars = 0.0, 0, time.perf_counter(), 0
        last_report = 0.0
        reason = "stopped"
        while True:
            if c.max_steps and self.step >= c.max_steps:
                reason = "max_steps"
                break
            if c.max_minutes and self.elapsed + self._reserve() >= c.max_minutes * 60:
                reason = "max_minutes"
                break
            if self.rollbacks >= MAX_ROLLBACKS:
                reason = "diverged"
                break
            if should_stop():
                break
            t0 = time.perf_counter()
            loss = self.train_step()
            if loss is not None:
                window_loss += loss
                window_steps += 1
            window_chars += c.batch_size * c.seq_len
            now = time.perf_counter()
            self.elapsed += now - t0
            if window_steps and (now - last_report >= PROGRESS_EVERY or self.step % c.eval_every == 0):
                mean = window_loss / window_steps
                self._record("train", mean)
                self.emit(self._progress(mean, window_chars / max(now - window_start, 1e-9)))
                window_loss, window_steps, window_start, window_chars, last_report = 0.0, 0, now, 0, now
            t1 = time.perf_counter()
            if self.step % c.eval_every == 0:
                self._evaluate_and_keep_best()
            if self.step % c.sample_every == 0:
                self.emit(Sample(self.step, self.sample(), c.sample_temperature))
            if self.step % c.checkpoint_every == 0:
                self.save()
            self.elapsed += time.perf_counter() - t1
            if hook:
                hook(self)
            window_start += time.perf_counter() - now  # evaluation and the hook do not count as speed
        if self.step % c.eval_every and self.step and reason not in ("stopped", "diverged"):
            self._evaluate_and_keep_best()
        if self.step:
            self.save()
        done = Done(self.step, reason, self.best_val_loss if math.isfinite(self.best_val_loss) else None, self.elapsed)
        self.emit(done)
        return done

    def _progress(self, loss: float, chars_per_s: float) -> Progress:
        frac = self.budget_fraction()
        eta = None
        if frac is not None and frac > 0:
            eta = max(0.0, self.elapsed * (1 - frac) / frac)
        return Progress(self.step, self.epoch, loss, self.lr(), chars_per_s, self.elapsed, frac, eta)

    def _evaluate_and_keep_best(self) -> None:
        t = time.perf_counter()
        val = self.evaluate()
        self._eval_seconds = time.perf_counter() - t
        self.last_val_loss = val
        self._record("val", val)
        is_best = val < self.best_val_loss
        if is_best:
            self.best_val_loss, self.best_step = val, self.step
        self.emit(Eval(self.step, val, self.best_val_loss, is_best, self._eval_seconds, self.elapsed))
        if is_best:
            self.save(best=True)

    def _record(self, kind: str, value: float) -> None:
        h = self.history[kind]
        h.append([self.step, round(value, 5)])
        if len(h) > HISTORY_POINTS:
            del h[1:-1:2]  # thin out evenly, keeping the first and the latest points

    # ------------------------------------------------------------ checkpoints

    def save(self, best: bool = False) -> Path:
        folder = self.run_dir / checkpoint.BEST if best else self.run_dir
        checkpoint.save(folder, self.model.state_dict(), self._optimizer_tensors(), self._meta())
        self.emit(Checkpoint(self.step, str(folder), best))
        return folder

    def _optimizer_tensors(self) -> dict[str, torch.Tensor]:
        names = {id(p): n for n, p in self.model.named_parameters()}
        out = {}
        for p, s in self.optimizer.state.items():
            for key in ("exp_avg", "exp_avg_sq"):
                if key in s:
                    out[f"{key}.{names[id(p)]}"] = s[key]
        if self.carried is not None:
            out.update({f"carried.{k}": v for k, v in state_tensors(self.carried).items()})
        return out

    def _meta(self) -> dict:
        names = {id(p): n for n, p in self.model.named_parameters()}
        steps = {names[id(p)]: float(s["step"]) for p, s in self.optimizer.state.items() if "step" in s}
        rng = {"torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}
        if self.device.type == "cuda":
            rng["cuda"] = base64.b64encode(torch.cuda.get_rng_state(self.device).numpy().tobytes()).decode()
        return {
            "model": self.model_cfg.to_dict(),
            "vocab": self.vocab.chars,
            "train": asdict(self.cfg),
            "step": self.step,
            "epoch": self.epoch,
            "batch_index": self.index,
            "train_seconds": round(self.elapsed, 3),
            "best_val_loss": self.best_val_loss if math.isfinite(self.best_val_loss) else None,
            "best_step": self.best_step,
            "last_val_loss": self.last_val_loss,
            "lr_scale": self.lr_scale,
            "skipped_steps": self.skipped_steps,
            "optimizer_steps": steps,
            "rng": rng,
            "history": self.history,
            "corpus": self.corpus.identity(),
            "source": self.source,
            "params": self.params,
            "device": self.describe_device(),
            "created": self.created,
            "updated": _now(),
        }

    def restore(self, ckpt: checkpoint.Checkpoint) -> None:
        """Continue exactly where `ckpt` stopped: weights, optimizer, step, data position, RNG, history."""
        m = ckpt.meta
        self.model.load_state_dict(ckpt.model)
        names = dict(self.model.named_parameters())
        state = {}
        for name, p in names.items():
            if f"exp_avg.{name}" in ckpt.optimizer:
                state[p] = {
                    "step": torch.tensor(m.get("optimizer_steps", {}).get(name, m["step"]), dtype=torch.float32),
                    "exp_avg": ckpt.optimizer[f"exp_avg.{name}"].to(self.device),
                    "exp_avg_sq": ckpt.optimizer[f"exp_avg_sq.{name}"].to(self.device),
                }
        index = {id(p): i for i, p in enumerate(self.model.parameters())}
        self.optimizer.load_state_dict(
            {
                "state": {index[id(p)]: s for p, s in state.items()},
                "param_groups": self.optimizer.state_dict()["param_groups"],
            }
        )
        carried = {k.removeprefix("carried."): v for k, v in ckpt.optimizer.items() if k.startswith("carried.")}
        self.carried = state_from_tensors(carried, self.device)
        self.step, self.epoch, self.index = m["step"], m.get("epoch", 0), m.get("batch_index", 0)
        self.elapsed = float(m.get("train_seconds", 0.0))
        best = m.get("best_val_loss")
        self.best_val_loss = best if isinstance(best, float) else math.inf
        self.best_step = m.get("best_step", 0)
        self.last_val_loss = m.get("last_val_loss")
        self.lr_scale = float(m.get("lr_scale", 1.0))
        self.skipped_steps = int(m.get("skipped_steps", 0))
        self.history = {k: [list(p) for p in v] for k, v in m.get("history", {"train": [], "val": []}).items()}
        self.created = m.get("created", self.created)
        rng = m.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(torch.from_numpy(np.frombuffer(base64.b64decode(rng["torch"]), dtype=np.uint8).copy()))
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(
                torch.from_numpy(np.frombuffer(base64.b64decode(rng["cuda"]), dtype=np.uint8).copy()), self.device
            )
        self._take_snapshot()


def _adamw(model: CharRNN, cfg: TrainConfig) -> torch.optim.AdamW:
    kwargs = {"lr": cfg.lr, "betas": (0.9, 0.99), "weight_decay": cfg.weight_decay}
    try:
        return torch.optim.AdamW(model.parameters(), fused=True, **kwargs)
    except (RuntimeError, TypeError):  # fused AdamW needs torch >= 2.4 on CPU
        return torch.optim.AdamW(model.parameters(), **kwargs)


def _reencode(corpus: Corpus, vocab: Vocab) -> np.ndarray:
    """The corpus's ids mapped onto another vocabulary (characters it lacks become unknown)."""
    table = np.array([vocab.id(corpus.vocab.char(i)) for i in range(len(corpus.vocab))], dtype=vocab.dtype)
    return table[np.asarray(corpus.data)]
