"""The training loop: AdamW, warm-up then cosine decay, clipping, evaluation, samples, the non-finite guard.

`prepare(plan, on_event)` builds a ready `Trainer` from a plan (runs.py): it takes the run's
lock, loads the corpus, builds or restores the model and opens the run record.
`Trainer.run()` trains until a budget is spent or `should_stop()` says so. It reports
through `on_event` (events.py) and knows nothing of screens.

In a torchrun job every rank runs the same loop on its share of the batch; `dist`
(distributed.py) says which share, reduces what must be agreed, and lets only rank 0 write.
Alone, `dist` is `distributed.LOCAL`, whose methods change nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.nn.functional as F

from rnn_tui import checkpoint, finetune, record, sysinfo
from rnn_tui.config import ModelConfig, SampleConfig, TrainConfig
from rnn_tui.events import CheckpointSaved, Evaluation, Event, Finished, Notice, Progress, RunStarted, Sample
from rnn_tui.generation import Generator
from rnn_tui.runs import RunPlan
from rnn_tui.text.batches import Batches, check_trainable, eval_streams
from rnn_tui.text.corpus import Corpus, load_corpus
from rnn_tui.text.sources import SourceSpec
from rnn_tui.train import state as train_state
from rnn_tui.train.devices import autocast, describe, gpu_usage, pick_device, pick_precision, set_threads
from rnn_tui.train.distributed import LOCAL, Group
from rnn_tui.train.model import CharRNN, State, detach_state
from rnn_tui.train.optim import AdamW, Average, Muon

BAD_STEPS_BEFORE_ROLLBACK = 3
MAX_ROLLBACKS = 8  # in a row, without a healthy stretch between them: then the run stops as diverged
SNAPSHOT_EVERY = 100  # steps between the in-memory copies a rollback returns to
PROGRESS_EVERY = 0.5  # seconds between progress events
SYSTEM_EVERY = 1.0  # seconds between samples of the trainer's CPU, memory and GPU
RISES_BEFORE_NOTICE = 3  # evaluations in a row with validation rising while training falls: overfitting
JUMP = 0.1  # validation up by this fraction in one evaluation, training not: unstable on new text

EventSink = Callable[[Event], None]


def prepare(plan: RunPlan, on_event: EventSink | None = None, dist: Group = LOCAL) -> Trainer:
    """Lock the run folder, load the text, build (or restore) the model, and return a ready Trainer.

    In a torchrun job, rank 0 alone locks and reads the run folder and hands the checkpoint to the others.
    """
    device = dist.device or pick_device(plan.device_name())
    cfg = plan.train_config(device.type)
    dist.check_batch(cfg.batch_size)
    lock, ckpt = dist.writer_does(lambda: _claim(plan)) or (None, None)
    try:
        if plan.resumed:
            ckpt = dist.share_checkpoint(ckpt)
        with dist.local_first():  # one download and one encoding cache per node
            corpus = load_corpus(plan.source.resolve())
        dist.check_same_text(corpus.sha256)
        init = None if ckpt or not plan.init_from else checkpoint.load(plan.init_from["path"], optimizer=False)
        vocab = ckpt.vocab if ckpt else finetune.grown_vocab(init.vocab, corpus.vocab) if init else corpus.vocab
        train_chars = len(corpus.split(cfg.val_frac)[0])
        trainer = Trainer(
            corpus.reencoded(vocab),
            plan.model_config(device.type, len(vocab), train_chars),
            cfg,
            plan.run_dir,
            on_event,
            device=device,
            source=plan.source,
            dist=dist,
        )
        trainer.init_from = plan.init_from
        if ckpt:
            trainer.restore(ckpt)
        elif init:
            trainer.start_from(init)
        if lock is not None:
            trainer.open_record(lock, resume_step=ckpt.step if ckpt else None)
        if init:
            trainer.emit(Notice(0, finetune.describe(plan.init_from["source"], init, corpus.vocab), "information"))
        if budget := plan.budget_note(device.type, train_chars):
            trainer.emit(Notice(0, budget, "information"))
        if ckpt and corpus.sha256 != ckpt.meta.get("corpus", {}).get("sha256"):
            trainer.emit(Notice(trainer.step, "the corpus differs from the one this run was trained on"))
        for note in corpus.notes:
            trainer.emit(Notice(trainer.step, note, "information"))
        return trainer
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _claim(plan: RunPlan) -> tuple[checkpoint.RunLock, checkpoint.Checkpoint | None]:
    """Take the run's lock and read its checkpoint (for a resumed run)."""
    lock = checkpoint.RunLock(plan.run_dir)
    lock.acquire()
    try:
        if not plan.resumed:
            return lock, None
        checkpoint.recover(plan.run_dir)  # finish a checkpoint write that a crash interrupted
        return lock, checkpoint.load(plan.run_dir)
    except BaseException:
        lock.release()
        raise


def _optimizer(model: CharRNN, cfg: TrainConfig, precision: str) -> AdamW:
    """AdamW, or Muon for the recurrent layers' weight matrices (one block per gate) and AdamW for the rest."""
    if cfg.optimizer == "adamw":
        return AdamW(model.parameters(), cfg.lr, (0.9, 0.99), weight_decay=cfg.weight_decay)
    matrices = [p for name, p in model.rnn.named_parameters() if name.startswith("weight_")]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    blocks = model.cfg.spec.gates
    return Muon(model.parameters(), matrices, cfg.lr, (0.9, 0.99), cfg.weight_decay, blocks=blocks, dtype=dtype)


def _state_rows(state: State, rows: slice) -> State:
    return tuple(s[:, rows] for s in state) if isinstance(state, tuple) else state[:, rows]


def _join_rows(states: list) -> State:
    if isinstance(states[0], tuple):
        return tuple(torch.cat(parts, dim=1) for parts in zip(*states, strict=True))
    return torch.cat(states, dim=1)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Trainer:
    def __init__(
        self,
        corpus: Corpus,
        model_cfg: ModelConfig,
        cfg: TrainConfig,
        run_dir: Path,
        on_event: EventSink | None = None,
        *,
        device: torch.device,
        source: SourceSpec,
        dist: Group = LOCAL,
    ):
        self.cfg, self.model_cfg, self.run_dir = cfg, model_cfg, Path(run_dir)
        self.corpus, self.vocab, self.source, self.device = corpus, corpus.vocab, source, device
        self._on_event = on_event
        self.dist = dist
        train, val = corpus.split(cfg.val_frac)
        check_trainable(len(train), len(val), cfg.batch_size, cfg.seq_len)
        dist.check_batch(cfg.batch_size)
        self.precision = pick_precision(device, cfg.precision)
        if device.type == "cpu":
            set_threads(cfg.threads or dist.threads())
        torch.manual_seed(cfg.seed)
        self.model = CharRNN(model_cfg).to(device)
        dist.same_start(self.model)
        dist.fork_rng(cfg.seed)
        self.optimizer = _optimizer(self.model, cfg, self.precision)
        self.averaged = Average(self.model, cfg.ema) if cfg.ema else None
        rows = dist.share(cfg.batch_size)  # this rank's rows of the batch (all of them alone)
        self.batches = Batches(train, cfg.batch_size, cfg.seq_len, cfg.seed, cfg.batching, rows=rows)
        self.val_x, self.val_y = (torch.from_numpy(a) for a in eval_streams(val, cfg.eval_chars))
        self.step = self.epoch = self.index = self.chars = 0
        self.carried = None
        self.elapsed = 0.0
        self.best_val_loss = math.inf
        self.best_step = 0
        self.last_val_loss: float | None = None
        self.evals_since_best = 0  # evaluations in a row without a new best (--patience)
        self._watch = ValidationWatch()
        self._usage = sysinfo.ProcessUsage()
        self._system: dict = {}
        self._system_at = -math.inf
        self.lr_scale = 1.0
        self.skipped_steps = self.rollbacks = 0
        self.created = _now()
        self._eval_seconds: float | None = None
        self._snapshot: tuple[dict, dict, dict | None] | None = None
        self._bad_in_a_row = self._rollbacks_in_a_row = 0
        self._take_snapshot()  # a rollback always has good weights to return to
        self._record: record.Writer | None = None
        self._lock: checkpoint.RunLock | None = None
        self.init_from: dict | None = None  # a fine-tuning run's source (meta.json's `init_from`)

    # ------------------------------------------------------------ events and the run record

    def emit(self, event: Event) -> None:
        """Report an event: into the run record (if open), then to the listener."""
        if self._record is not None:
            try:
                self._record(event)
            except OSError as exc:
                self._record = None
                self.emit(Notice(self.step, f"cannot write the run record ({exc.strerror}); it stops here", "error"))
        if self._on_event is not None:
            self._on_event(event)

    def open_record(self, lock: checkpoint.RunLock, resume_step: int | None) -> None:
        """Start (or cut back and continue) the run record, and announce the run in it."""
        self._lock = lock
        self._record = record.Writer(self.run_dir, resume_step)
        if self._record.damaged:
            lines = ", ".join(map(str, self._record.damaged[:5]))
            self.emit(Notice(self.step, f"skipped damaged lines of {record.FILENAME} (line {lines})"))
        self.emit(
            RunStarted(
                self.step,
                str(self.run_dir),
                self.corpus.identity(),
                self.model_cfg.to_dict(),
                self.cfg.to_dict(),
                self.params,
                self.describe_device(),
                resumed=resume_step is not None,
                time=_now(),
            )
        )

    def close(self) -> None:
        """Close the run record and let go of the run folder."""
        if self._record is not None:
            self._record.close()
            self._record = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def params(self) -> int:
        return self.model.num_params()

    @property
    def shown(self) -> CharRNN:
        """The weights that are evaluated, sampled, published to the app and saved: the average, if there is one."""
        return self.averaged.model if self.averaged is not None else self.model

    def describe_device(self) -> str:
        return describe(self.device, self.precision) + self.dist.describe()

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
        """One batch: one optimizer step, or early in a `short_first` run a few, one per piece of the batch.

        Returns the batch's loss, or None when a step was skipped as non-finite."""
        if self.index >= self.batches.per_epoch:
            self.epoch, self.index = self.epoch + 1, 0
        if self.index == 0 or not self.batches.carries_state:
            self.carried = None
        x, y = (
            torch.from_numpy(a).to(self.device, non_blocking=True) for a in self.batches.get(self.epoch, self.index)
        )
        self.optimizer.lr = self.lr()
        if self.cfg.dropout_ramp:
            epochs = self.epoch + self.index / self.batches.per_epoch
            self.model.set_dropout(self.model_cfg.dropout * min(1.0, epochs / self.cfg.dropout_ramp))
        rows, windows = self.pieces()
        self.index += 1
        self.step += 1
        self.chars += self.cfg.batch_size * self.cfg.seq_len
        value = self._update(x, y) if rows == windows == 1 else self._update_in_pieces(x, y, rows, windows)
        if value is None:
            return None
        self._bad_in_a_row = 0
        if self.step % SNAPSHOT_EVERY == 0:
            self._take_snapshot()
            self._rollbacks_in_a_row = 0  # a healthy stretch since the last rollback
        return value

    def pieces(self) -> tuple[int, int]:
        """Row groups and time windows the next batch is cut into, one update each: short_first's schedule.

        In the first half of the short_first fraction of the budget, 2 x 2 (four updates on half the
        rows and half the window); in the second half, 1 x 2; then the whole batch."""
        frac = self.budget_fraction() if self.cfg.short_first else None
        if frac is None or frac >= self.cfg.short_first:
            return 1, 1
        rows = 2 if frac < self.cfg.short_first / 2 and self.batches.B // self.dist.world >= 2 else 1
        return rows, 2 if self.cfg.seq_len >= 2 else 1

    def _update(self, x: torch.Tensor, y: torch.Tensor) -> float | None:
        """Forward from the carried state, backward, clip, step; the loss, or None for a skipped step."""
        with autocast(self.device, self.precision):
            logits, state = self.model(x, self.carried)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        self.optimizer.zero_grad()
        loss.backward()
        self.dist.average_gradients(self.model)  # in a job, over the ranks
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        value = self.dist.mean(loss)  # the whole batch's loss, so every rank judges the step alike
        if not (math.isfinite(value) and math.isfinite(norm.item())) or value > self.loss_ceiling:
            self._bad_step(value)
            return None
        self.optimizer.step()
        if self.averaged is not None:
            self.averaged.update(self.model, self.step)
        self.carried = detach_state(state)
        return value

    def _update_in_pieces(self, x: torch.Tensor, y: torch.Tensor, rows: int, windows: int) -> float | None:
        """One update per piece: row groups side by side, time windows in order, each group's state carried."""
        row_parts = [slice(int(r[0]), int(r[-1]) + 1) for r in torch.arange(x.shape[0]).tensor_split(rows)]
        time_parts = [slice(int(t[0]), int(t[-1]) + 1) for t in torch.arange(x.shape[1]).tensor_split(windows)]
        carried = self.carried
        states = [None if carried is None else _state_rows(carried, r) for r in row_parts]
        total = 0.0
        for t in time_parts:
            for j, r in enumerate(row_parts):
                self.carried = states[j]
                value = self._update(x[r, t], y[r, t])
                if value is None:
                    return None
                states[j] = self.carried
                total += value * (r.stop - r.start) * (t.stop - t.start) / x.numel()
        self.carried = _join_rows(states)
        return total

    @property
    def loss_ceiling(self) -> float:
        """A loss above this has diverged: it is more than twice a uniform guess's, plus a nat."""
        return 2 * math.log(len(self.vocab)) + 1

    def _take_snapshot(self) -> None:
        self._snapshot = (
            {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            self.optimizer.state_dict(),
            {k: v.clone() for k, v in self.averaged.model.state_dict().items()} if self.averaged else None,
        )

    def _bad_step(self, loss: float) -> None:
        """Skip a diverging step; after a few in a row, roll back to the last good weights and cut the rate.

        Each rollback in a row cuts harder (by 2, then 4, 8...), so even a far too high rate is
        brought down to one that trains within a few rollbacks.
        """
        self.optimizer.zero_grad()
        self.skipped_steps += 1
        self._bad_in_a_row += 1
        self.carried = None
        what = f"loss {loss:.3g}" if math.isfinite(loss) else "non-finite loss or gradient"
        if self._bad_in_a_row < BAD_STEPS_BEFORE_ROLLBACK:
            self.emit(Notice(self.step, f"{what} at step {self.step}; skipped the step"))
            return
        self.model.load_state_dict(self._snapshot[0])
        self.optimizer.load_state_dict(self._snapshot[1])
        if self.averaged is not None:
            self.averaged.model.load_state_dict(self._snapshot[2])
        self._rollbacks_in_a_row += 1
        cut = 2**self._rollbacks_in_a_row
        self.lr_scale /= cut
        self.rollbacks += 1
        self._bad_in_a_row = 0
        self.emit(
            Notice(
                self.step,
                f"{BAD_STEPS_BEFORE_ROLLBACK} diverging steps in a row at step {self.step} ({what}): rolled back to "
                f"the last good weights and cut the learning rate by {cut} (now {self.lr():.2e})",
            )
        )

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean cross-entropy (nats/char) over the validation streams, state carried along each.

        In a job each rank takes a share of the streams and the sums are added over the ranks."""
        model = self.shown
        model.eval()
        rows = self.dist.share(len(self.val_x))
        val_x, val_y = self.val_x[rows], self.val_y[rows]
        total, state = 0.0, None
        chunk = 4 * self.cfg.seq_len
        for i in range(0, val_x.shape[1] if len(val_x) else 0, chunk):
            x = val_x[:, i : i + chunk].to(self.device)
            y = val_y[:, i : i + chunk].to(self.device)
            with autocast(self.device, self.precision):
                logits, state = model(x, state)
            total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").item()
        self.model.train()
        total, count = self.dist.sum(total, val_y.numel())
        return total / count

    def generator(self) -> Generator:
        return Generator(self.model_cfg, self.vocab, train_state.model_arrays(self.shown))

    def sample(self) -> Sample:
        """The run's sample at this step: the same prompt and seed every time, so only the weights change."""
        c = self.cfg
        settings = SampleConfig(temperature=c.sample_temperature, seed=c.seed, length=c.sample_chars)
        text = self.generator().sample(c.sample_prompt, settings)
        return Sample(self.step, text, c.sample_temperature, c.seed, c.sample_prompt)

    def run(
        self, should_stop: Callable[[], bool] = lambda: False, hook: Callable[[Trainer], None] | None = None
    ) -> Finished:
        """Train until the step or time budget is spent, or `should_stop()`; then evaluate and save.

        A stop on request saves at once, without the final evaluation, so quitting is quick.
        `hook(trainer)` runs after every step, outside the timed budget (the app's trainer
        process uses it to take commands and publish weights).
        """
        c = self.cfg
        window_loss, window_steps, window_start, window_chars = 0.0, 0, time.perf_counter(), 0
        last_report = 0.0
        reason = "stopped"
        while True:
            # In a job: the longest clock and any rank's stop request, so every rank stops at the same step.
            self.elapsed, stop = self.dist.agree(self.elapsed, should_stop())
            if c.max_steps and self.step >= c.max_steps:
                reason = "max_steps"
                break
            if c.max_minutes and self.elapsed + self._reserve() >= c.max_minutes * 60:
                reason = "max_minutes"
                break
            if self._rollbacks_in_a_row >= MAX_ROLLBACKS:
                reason = "diverged"
                break
            if c.patience and self.evals_since_best >= c.patience:
                reason = "patience"
                self.emit(
                    Notice(
                        self.step,
                        f"stopped: no new best validation loss in {c.patience} evaluations (--patience); "
                        f"the best weights are in {checkpoint.BEST}/ from step {self.best_step:,}",
                        "information",
                    )
                )
                break
            if stop:
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
                self.emit(self._progress(window_loss / window_steps, window_chars / max(now - window_start, 1e-9)))
                window_loss, window_steps, window_start, window_chars, last_report = 0.0, 0, now, 0, now
            t1 = time.perf_counter()
            if self.step % c.eval_every == 0:
                self._evaluate_and_keep_best()
            if self.step % c.sample_every == 0 and self.dist.writer:
                self.emit(self.sample())
            if self.step % c.checkpoint_every == 0:
                self.save()
            self.elapsed += time.perf_counter() - t1
            if hook:
                hook(self)
            window_start += time.perf_counter() - now  # evaluation and the hook do not count as speed
        if self.step % c.eval_every and self.step and reason not in ("stopped", "diverged", "patience"):
            self._evaluate_and_keep_best()
        if self.step:
            self.save()
        best = self.best_val_loss if math.isfinite(self.best_val_loss) else None
        done = Finished(self.step, reason, best, self.elapsed)
        self.emit(done)
        return done

    def _progress(self, loss: float, chars_per_s: float) -> Progress:
        frac = self.budget_fraction()
        eta = max(0.0, self.elapsed * (1 - frac) / frac) if frac else None
        self._watch.train(loss)
        return Progress(
            self.step, self.epoch, loss, self.lr(), chars_per_s, self.elapsed, frac, eta, self.chars, **self.system()
        )

    def system(self) -> dict:
        """The trainer's CPU %, threads and memory, and its GPU's use: sampled at most once every SYSTEM_EVERY s."""
        now = time.monotonic()
        if now - self._system_at >= SYSTEM_EVERY:
            self._system_at = now
            usage = self._usage.sample()
            gpu_percent, gpu_mem_mb = gpu_usage(self.device)
            self._system = {
                "cpu_percent": usage.cpu_percent,
                "threads": usage.threads,
                "rss_mb": usage.rss_mb,
                "gpu_percent": gpu_percent,
                "gpu_mem_mb": gpu_mem_mb,
            }
        return self._system

    def _evaluate_and_keep_best(self) -> None:
        t = time.perf_counter()
        val = self.evaluate()
        self._eval_seconds = self.dist.max(time.perf_counter() - t)  # the same time reserve on every rank
        self.last_val_loss = val
        is_best = val < self.best_val_loss
        if is_best:
            self.best_val_loss, self.best_step = val, self.step
        self.evals_since_best = 0 if is_best else self.evals_since_best + 1
        self.emit(Evaluation(self.step, val, self.best_val_loss, is_best, self._eval_seconds, self.elapsed))
        if is_best:
            self.save(best=True)
        told = self._watch.evaluated(val)
        if told and self.dist.writer and math.isfinite(self.best_val_loss):
            kept = f"the best weights are kept in {checkpoint.BEST}/ from step {self.best_step:,}"
            if told == "jump":
                message = (
                    f"validation loss jumped from {self._watch.before:.3f} to {val:.3f} while training loss did not: "
                    f"the model mispredicts new text with confidence, which a learning rate too high for the run "
                    f"often causes (--lr); {kept}"
                )
            else:
                message = (
                    f"overfitting: validation loss has risen for {RISES_BEFORE_NOTICE} evaluations while training "
                    f"loss falls; {kept}"
                )
            self.emit(Notice(self.step, message))

    # ------------------------------------------------------------ checkpoints

    def save(self, best: bool = False) -> bool:
        """Write a checkpoint (the run's, or best/). A failed write is reported; training goes on.

        In a job every rank calls it (the hidden state's rows are gathered) and rank 0 writes."""
        carried = self.dist.gather_rows(self.carried)
        if not self.dist.writer:
            return True
        folder = self.run_dir / checkpoint.BEST if best else self.run_dir
        opt = {
            **train_state.optimizer_arrays(self.model, self.optimizer),
            **train_state.rng_arrays(self.device),
            **train_state.state_arrays(carried),
        }
        if self.averaged is not None:  # the folder's model is the average; the weights that train are kept here
            opt.update(train_state.trained_arrays(self.model))
        try:
            checkpoint.save(folder, train_state.model_arrays(self.shown), opt, self._meta())
        except ValueError as exc:  # non-finite weights are never saved
            self.emit(Notice(self.step, f"did not save the checkpoint: {exc}; the previous one is kept", "error"))
            return False
        except OSError as exc:
            self.emit(
                Notice(
                    self.step,
                    f"saving the checkpoint failed ({exc.strerror or exc}); the previous one is whole "
                    "and training goes on: free some space or fix the folder's permissions",
                    "error",
                )
            )
            return False
        self.emit(CheckpointSaved(self.step, str(folder), best))
        return True

    def _meta(self) -> dict:
        return {
            "model": self.model_cfg.to_dict(),
            "vocab": self.vocab.chars,
            "train": self.cfg.to_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_index": self.index,
            "train_seconds": round(self.elapsed, 3),
            "best_val_loss": self.best_val_loss if math.isfinite(self.best_val_loss) else None,
            "best_step": self.best_step,
            "evals_since_best": self.evals_since_best,
            "chars": self.chars,
            "last_val_loss": self.last_val_loss,
            "lr_scale": self.lr_scale,
            "skipped_steps": self.skipped_steps,
            "corpus": self.corpus.identity(),
            "source": self.source.to_dict(),
            **({"init_from": self.init_from} if self.init_from else {}),
            "params": self.params,
            "device": self.describe_device(),
            "created": self.created,
            "updated": _now(),
        }

    def start_from(self, source: checkpoint.Checkpoint) -> None:
        """Fine-tuning: this new run's weights are `source`'s, grown to this run's vocabulary (the new characters'
        rows made as finetune.grow says); the optimizer, schedule and step start fresh."""
        grown = finetune.grow(source.model, source.vocab, self.vocab)
        self.model.load_state_dict({k: torch.from_numpy(v) for k, v in grown.items()})
        if self.averaged is not None:
            self.averaged.model.load_state_dict(self.model.state_dict())
        self._take_snapshot()

    def restore(self, ckpt: checkpoint.Checkpoint) -> None:
        """Continue exactly where `ckpt` stopped: weights, optimizer, step, data position, RNG."""
        m = ckpt.meta
        self.model.load_state_dict(train_state.trained_weights(ckpt))
        if self.averaged is not None:
            self.averaged.model.load_state_dict({k: torch.from_numpy(v) for k, v in ckpt.model.items()})
        train_state.load_optimizer(self.model, self.optimizer, ckpt)
        self.carried = self.dist.my_rows(train_state.load_state(ckpt, self.device), self.cfg.batch_size)
        self.step, self.epoch, self.index = ckpt.step, int(m.get("epoch", 0)), int(m.get("batch_index", 0))
        self.elapsed = float(m.get("train_seconds", 0.0))
        best = m.get("best_val_loss")
        self.best_val_loss = float(best) if isinstance(best, int | float) else math.inf
        self.best_step = int(m.get("best_step", 0))
        self.evals_since_best = int(m.get("evals_since_best", 0))
        self.chars = int(m.get("chars", self.step * self.cfg.batch_size * self.cfg.seq_len))
        self.last_val_loss = m.get("last_val_loss")
        self.lr_scale = float(m.get("lr_scale", 1.0))
        self.skipped_steps = int(m.get("skipped_steps", 0))
        self.created = m.get("created", self.created)
        train_state.load_rng(ckpt, self.device)
        self.dist.fork_rng(self.cfg.seed, self.step)
        self._take_snapshot()


class ValidationWatch:
    """Says when validation loss tells of trouble that training loss does not show: "overfitting" once per
    stretch of RISES_BEFORE_NOTICE rises in a row while training falls, "jump" when it rises by more than
    JUMP of itself in one evaluation while training does not (on 12-07 a run at lr 8e-3 went from 1.56 to
    1.88 at a training loss of 1.34: 1.6 % of the validation characters got under e^-10, most of them
    predicted as characters the text hardly has; two evaluations later it was back at 1.51).

    `train(loss)` takes each training loss reported; `evaluated(val)` says what to tell after an evaluation.
    Training "falls" when its mean since the last evaluation is below the mean before it; `before` is the
    validation loss before a jump."""

    def __init__(self, rises: int = RISES_BEFORE_NOTICE, jump: float = JUMP) -> None:
        self.rises, self.jump = rises, jump
        self.before = math.nan
        self._val: list[float] = []  # validation losses of the current stretch of rises, the one before it first
        self._window: list[float] = []  # training losses since the last evaluation
        self._train: list[float] = []  # the mean training loss of each stretch between evaluations
        self._warned = False

    def train(self, loss: float) -> None:
        self._window.append(loss)

    def evaluated(self, val: float) -> str | None:
        if self._window:
            self._train.append(sum(self._window) / len(self._window))
            self._window.clear()
        last = self._val[-1] if self._val else None
        training_steady = len(self._train) < 2 or self._train[-1] <= self._train[-2] * (1 + self.jump / 2)
        if last is not None and val > last * (1 + self.jump) and training_steady:
            self.before, self._val, self._warned = last, [], False  # not a stretch of rises: it starts after
            return "jump"
        rising = last is not None and val > last
        self._val = [*self._val, val] if rising else [val]
        if not rising:
            self._warned = False
        falling = len(self._train) > self.rises and self._train[-1] < self._train[-1 - self.rises]
        if len(self._val) > self.rises and falling and not self._warned:
            self._warned = True
            return "overfitting"
        return None
