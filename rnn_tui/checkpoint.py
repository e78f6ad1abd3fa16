"""The run folder: save atomically, load and validate, lock, list runs, pick the latest. Torch-free.

    checkpoints/<run>/
      meta.json              format version, configs, vocabulary, step, data position, corpus, times
      model.safetensors      weights, float32, CPU layout (with --ema: their moving average; a shipped model: float16)
      optimizer.safetensors  AdamW moments and steps, RNG state, the carried hidden state
                             (with --ema: the weights that train, `trained.<name>`)
      best/                  the same three files for the lowest validation loss so far
      events.jsonl           the run record (record.py)
      train.log              the trainer's own output (in the app)
      .lock                  held by the process that trains the run

A checkpoint is three files that must change together. They are written into `.pending/`
and fsynced; renaming `.pending/` to `.commit/` is the commit point; then the files are
moved into place, meta.json last. A crash before the commit leaves the old checkpoint; a
crash after it leaves the new one in `.commit/`, which readers prefer and the next writer
moves into place (`recover`). Readers never change the folder, so they can read while a
trainer writes; the checkpoint id in every file tells them if they caught it mid-move.

Tensors are NumPy arrays here, read and written with safetensors: nothing is unpickled,
and the app, `runs` and `watch` read run folders without importing PyTorch.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rnn_tui import __version__
from rnn_tui.config import ModelConfig, param_shapes
from rnn_tui.errors import UserError
from rnn_tui.fsutil import Lock, fsync_dir
from rnn_tui.text.sources import SourceSpec

if TYPE_CHECKING:
    import numpy as np

    from rnn_tui.text.vocab import Vocab

# NumPy and safetensors are imported where tensors are read or written, not here: the app's first frame
# (and `runs`, `launch`'s planning) reach this module and need neither (tests/test_startup.py).

CHECKPOINT_DIR = "checkpoints"  # where runs live unless --checkpoint-dir says otherwise
FORMAT = "rnn-tui-run"
FORMAT_VERSION = 2  # 2: RNG and optimizer steps as tensors, history in events.jsonl
META, MODEL, OPTIMIZER, BEST, LOG, LOCK = (
    "meta.json",
    "model.safetensors",
    "optimizer.safetensors",
    "best",
    "train.log",
    ".lock",
)
_FILES = (OPTIMIZER, MODEL, META)  # the order they are moved into place: meta.json last

Arrays = dict[str, "np.ndarray"]


@dataclass
class Checkpoint:
    """A loaded checkpoint: its meta.json, the model config and vocabulary parsed from it once, its arrays."""

    path: Path
    meta: dict
    config: ModelConfig
    vocab: Vocab
    model: Arrays
    optimizer: Arrays

    @classmethod
    def of(cls, path: Path, meta: dict, model: Arrays, optimizer: Arrays) -> Checkpoint:
        """A checkpoint from its parts (e.g. sent by another process), its config and vocabulary parsed here."""
        return cls(path, meta, model_config(path, meta), _vocab(meta), model, optimizer)

    @property
    def step(self) -> int:
        return self.meta["step"]


# --------------------------------------------------------------------------- writing


def save(folder: Path, model: Arrays, optimizer: Arrays, meta: dict) -> None:
    """Write one checkpoint into `folder` atomically. Refuses non-finite weights."""
    import numpy as np
    from safetensors.numpy import save as st_save

    model = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in model.items()}
    for name, a in model.items():
        if not np.isfinite(a).all():
            raise ValueError(f"refusing to save non-finite weights ({name})")
    optimizer = {k: np.ascontiguousarray(v) for k, v in optimizer.items()}
    ckpt_id = secrets.token_hex(8)
    header = {"format": FORMAT, "checkpoint_id": ckpt_id}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rnn_tui_version": __version__,
        **meta,
        "checkpoint_id": ckpt_id,
    }
    _write_set(
        folder,
        {
            MODEL: st_save(model, metadata=header),
            OPTIMIZER: st_save(optimizer, metadata=header),
            META: json.dumps(meta, indent=1, ensure_ascii=False).encode(),
        },
    )


def _write_set(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    recover(folder)
    pending = folder / ".pending"
    pending.mkdir()
    try:
        for name, data in files.items():
            with open(pending / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        fsync_dir(pending)
        os.replace(pending, folder / ".commit")  # the commit point
    except BaseException:  # e.g. the disk filled up: give the space back; the old checkpoint is untouched
        shutil.rmtree(pending, ignore_errors=True)
        raise
    fsync_dir(folder)
    recover(folder)


def recover(folder: Path) -> None:
    """Finish a committed write (roll forward), drop an uncommitted one and stray temporary files. For writers only."""
    commit = folder / ".commit"
    if commit.is_dir():
        for name in _FILES:
            if (commit / name).exists():
                os.replace(commit / name, folder / name)
        fsync_dir(folder)
        shutil.rmtree(commit, ignore_errors=True)
    shutil.rmtree(folder / ".pending", ignore_errors=True)
    for stray in folder.glob(".*.tmp"):  # an atomic write (the run record's) cut short by a crash
        stray.unlink(missing_ok=True)


def has_checkpoint(folder: Path) -> bool:
    """Whether `folder` holds a checkpoint, in place or committed but not yet moved there."""
    return (folder / META).exists() or (folder / ".commit" / META).exists()


def check_writable(folder: Path) -> None:
    """A UserError now, before any training, if `folder` (or the nearest existing folder above it) is not writable."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot save runs in {folder}: {existing} is not a folder; choose another --checkpoint-dir")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".rnn-tui-probe-"):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot save runs in {folder}: {existing} is not writable ({exc.strerror or exc}); "
            "fix its permissions or choose another --checkpoint-dir"
        ) from None


class RunLock:
    """Keeps a second trainer out of a run folder. A crashed trainer's lock goes with its process."""

    def __init__(self, folder: Path):
        self._lock = Lock(Path(folder) / LOCK)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        if not self._lock.acquire():
            name = self._lock.path.parent.name
            raise UserError(
                f"run {name!r} is being trained by another process (pid {self._lock.holder()}); "
                f"wait for it to finish, or watch it with rnn-tui watch {name}"
            )

    def release(self) -> None:
        self._lock.release()

    @classmethod
    def check_free(cls, folder: Path) -> None:
        """A UserError now if a trainer holds `folder`, so a second one is refused before it starts anything.

        The trainer takes the lock for itself later (training.prepare); this only reports early.
        """
        with cls(folder):
            pass


# --------------------------------------------------------------------------- reading


TORN_RETRY_SECONDS = 3.0  # how long a reader keeps trying while a trainer moves a new checkpoint into place


def load(folder: Path | str, *, optimizer: bool = True) -> Checkpoint:
    """Load and validate a checkpoint folder (a run, or its best/)."""
    folder = Path(folder)
    return _retrying(lambda: _load(folder, optimizer))


class _Torn(Exception):
    """The files were caught mid-change (a trainer is saving): read again. The message is for a folder that stays so."""


def _path(folder: Path, name: str) -> Path:
    committed = folder / ".commit" / name
    return committed if committed.exists() else folder / name


def _load(folder: Path, optimizer: bool) -> Checkpoint:
    import numpy as np

    meta = _read_meta(folder)
    cfg = model_config(folder, meta)
    model = _read_arrays(_path(folder, MODEL), meta)
    got = {k: tuple(v.shape) for k, v in model.items()}
    want = param_shapes(cfg)
    if got != want:
        diff = sorted(set(got.items()) ^ set(want.items()))[:1]
        raise UserError(
            f"{folder / MODEL} does not match its meta.json (first difference: {diff}); "
            "the run folder is damaged: use its best/ folder or another run"
        )
    if any(a.dtype not in (np.float32, np.float16) for a in model.values()):
        raise UserError(f"{folder / MODEL} holds weights that are not float32 or float16; the run folder is damaged")
    model = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in model.items()}  # a shipped model's
    opt = _read_arrays(_path(folder, OPTIMIZER), meta) if optimizer else {}
    if problem := _optimizer_problem(opt, cfg, want):
        raise UserError(
            f"{folder / OPTIMIZER}: {problem}; the run folder is damaged: use its best/ folder or another run"
        )
    return Checkpoint(folder, meta, cfg, _vocab(meta), model, opt)


def _vocab(meta: dict) -> Vocab:
    from rnn_tui.text.vocab import Vocab  # NumPy: see above

    return Vocab(meta["vocab"])


def _optimizer_problem(opt: Arrays, cfg: ModelConfig, shapes: dict[str, tuple[int, ...]]) -> str | None:
    """What is wrong with the optimizer's arrays for a model of `shapes`, or None (train_state.py reads them)."""
    import numpy as np

    carried = 0
    for key, a in opt.items():
        kind, _, name = key.partition(".")
        if kind in ("exp_avg", "exp_avg_sq", "trained"):
            if name not in shapes or a.shape != shapes[name] or a.dtype != np.float32:
                return f"{key} is {a.dtype} {a.shape}, not float32 {shapes.get(name, 'of a known weight')}"
        elif kind == "step" and (a.shape != (1,) or a.dtype.kind != "f" or not np.isfinite(a).all() or a[0] < 0):
            return f"{key} is not one step count"
        elif kind == "rng" and (a.ndim != 1 or a.dtype != np.uint8):
            return f"{key} is not a random generator's state (bytes)"
        elif kind == "carried":
            carried += 1
            if a.dtype != np.float32 or a.ndim != 3 or (a.shape[0], a.shape[2]) != (cfg.layers, cfg.hidden):
                return f"{key} has shape {a.shape}, not (layers {cfg.layers}, batch, hidden {cfg.hidden})"
    if carried not in (0, cfg.spec.state_parts):
        return f"it carries {carried} state arrays, but a {cfg.cell} has {cfg.spec.state_parts}"
    return None


def read_meta(folder: Path) -> dict:
    """A run folder's meta.json, checked for the fields every reader relies on."""
    return _retrying(lambda: _read_meta(Path(folder)))


def _retrying(read):
    """`read()`, again while a trainer is moving a new checkpoint into place (for up to a few seconds)."""
    deadline = time.monotonic() + TORN_RETRY_SECONDS
    delay = 0.01
    while True:
        try:
            return read()
        except _Torn as torn:
            if time.monotonic() > deadline:
                raise UserError(str(torn)) from None
        time.sleep(delay)
        delay = min(2 * delay, 0.2)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)


# What each field of meta.json must be, where it is present: a test and what to call it.
# (The vocabulary and the model config are checked together, in model_config.)
_FIELDS = {
    "step": (lambda v: _is_int(v) and v >= 0, "a whole number"),
    "epoch": (lambda v: _is_int(v) and v >= 0, "a whole number"),
    "batch_index": (lambda v: _is_int(v) and v >= 0, "a whole number"),
    "best_step": (lambda v: _is_int(v) and v >= 0, "a whole number"),
    "skipped_steps": (lambda v: _is_int(v) and v >= 0, "a whole number"),
    "params": (lambda v: _is_int(v) and v >= 0, "a whole number"),
    "train_seconds": (lambda v: _is_number(v) and v >= 0, "a number of seconds"),
    "lr_scale": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "best_val_loss": (lambda v: v is None or _is_number(v), "a number or null"),
    "last_val_loss": (lambda v: v is None or _is_number(v), "a number or null"),
    "train": (lambda v: isinstance(v, dict), "an object"),
    "corpus": (lambda v: isinstance(v, dict), "an object"),
    "source": (SourceSpec.fits, "an object naming the text"),
    "checkpoint_id": (lambda v: isinstance(v, str), "text"),
    "created": (lambda v: isinstance(v, str), "text"),
    "updated": (lambda v: isinstance(v, str), "text"),
    "device": (lambda v: isinstance(v, str), "text"),
    "shipped": (lambda v: isinstance(v, dict), "an object"),
    "init_from": (
        lambda v: isinstance(v, dict) and isinstance(v.get("source"), str) and _is_int(v.get("step")),
        "an object with the source run and its step",
    ),
}


def _read_meta(folder: Path) -> dict:
    path = _path(folder, META)
    if not path.is_file():
        if has_checkpoint(folder):  # it was moved from .commit into place between the two looks
            raise _Torn(f"{folder}'s {META} keeps moving; is something else changing {folder}?")
        raise UserError(
            f"{folder} is not an rnn-tui run folder (it has no {META}); "
            "pass a folder made by rnn-tui train (see rnn-tui runs)"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:  # moved into place between the look and the read
        raise _Torn(f"{path} keeps disappearing; is something else changing {folder}?") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise UserError(f"{path} is damaged (not valid JSON); use the run's best/ folder or another run") from None
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror}); check its permissions") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path} was not written by rnn-tui; pass a folder made by rnn-tui train")
    version = meta.get("format_version")
    if not _is_int(version) or version < 1:
        raise UserError(f"{path}: its format_version is {version!r}, not a whole number; the run folder is damaged")
    if version > FORMAT_VERSION:
        raise UserError(
            f"{folder} uses run format {version}, newer than this rnn-tui understands ({FORMAT_VERSION}); "
            "upgrade rnn-tui"
        )
    for name, (ok, what) in _FIELDS.items():
        if name in meta and not ok(meta[name]):
            raise UserError(f"{path}: its {name} is {_short(meta[name])}, not {what}; the run folder is damaged")
    return meta


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def model_config(folder: Path, meta: dict) -> ModelConfig:
    """The model config of a run folder's meta.json, checked against its vocabulary."""
    chars = meta.get("vocab")
    if not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1 for c in chars):
        raise UserError(
            f"{folder / META}: its vocabulary is not a list of single characters; the run folder is damaged"
        )
    if len(set(chars)) != len(chars):
        raise UserError(f"{folder / META}: its vocabulary repeats a character; the run folder is damaged")
    try:
        cfg = ModelConfig.from_dict(meta.get("model"))
    except UserError as exc:
        raise UserError(f"{folder / META} has no valid model config ({exc}); the run folder is damaged") from None
    if cfg.vocab_size != len(chars) + 1:
        raise UserError(
            f"{folder / META}: vocabulary size {len(chars) + 1} does not match the model's {cfg.vocab_size}; "
            "the run folder is damaged"
        )
    return cfg


def _read_arrays(path: Path, meta: dict) -> Arrays:
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    try:
        data = path.read_bytes()
    except FileNotFoundError:  # missing, or moved into place between the look and the read: look again
        raise _Torn(f"{path} is missing; the run folder is incomplete: use its best/ folder or another run") from None
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror}); the run folder is incomplete") from None
    try:
        arrays = st_load(data)
        header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")]).get("__metadata__") or {}
    except (SafetensorError, ValueError, OverflowError, TypeError, AttributeError) as exc:
        raise UserError(
            f"{path} is damaged or not a safetensors file ({exc}); use the run's best/ folder or another run"
        ) from None
    if header.get("checkpoint_id") != meta.get("checkpoint_id"):
        raise _Torn(
            f"the files in {path.parent} belong to different checkpoints; "
            "the run folder was mixed by hand: restore it or use its best/ folder"
        )
    return arrays


# --------------------------------------------------------------------------- finding runs


def check_name(name: str) -> str:
    """A run name is a plain folder name: no separators, no `..`, not absolute."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        raise UserError(f"--run-name {name!r} is not a plain folder name; use letters, digits, '-', '_' and '.'")
    return name


def resolve(run: str | Path, checkpoint_dir: Path | str = CHECKPOINT_DIR) -> Path:
    """A run folder from a path, a run name under `checkpoint_dir`, `latest`, or `pretrained:NAME` (a shipped model)."""
    from rnn_tui import models  # the shipped models' folder

    if models.is_pretrained(run):
        found = models.folder(str(run))
        read_meta(found)
        return found
    root = Path(checkpoint_dir)
    for candidate in (Path(run), root / str(run)):
        if candidate.is_dir():
            read_meta(candidate)
            return candidate
    if str(run) == "latest":
        runs = list_runs(root)
        if runs:
            return Path(max(runs, key=lambda r: r["updated"])["path"])
        raise UserError(f"there are no runs in {root}/ yet; train one with rnn-tui train")
    raise UserError(
        f"no run named {str(run)!r} in {root}/ and no such folder; "
        f"see rnn-tui runs --checkpoint-dir {root} for the runs there"
    )


def list_runs(checkpoint_dir: Path | str = CHECKPOINT_DIR) -> list[dict]:
    """Every run folder under `checkpoint_dir`, oldest change first: what `rnn-tui runs` and the runs screen show."""
    root = Path(checkpoint_dir)
    rows = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            meta = read_meta(folder)
        except UserError:
            continue
        best = meta.get("best_val_loss")
        seconds = meta.get("train_seconds")
        model = meta.get("model") if isinstance(meta.get("model"), dict) else {}
        try:
            summary = ModelConfig.from_dict(model).summary()
        except UserError:
            summary = "?"
        rows.append(
            {
                "name": folder.name,
                "path": str(folder),
                "corpus": (meta.get("corpus") or {}).get("name", "?"),
                "model": model,
                "model_summary": summary,
                "step": meta.get("step", 0),
                "best_val_loss": best if isinstance(best, float) and math.isfinite(best) else None,
                "train_seconds": seconds if isinstance(seconds, int | float) else None,
                "updated": meta.get("updated", "") if isinstance(meta.get("updated"), str) else "",
                "init_from": meta.get("init_from"),  # a fine-tuned run's source (checked by read_meta)
            }
        )
    rows.sort(key=lambda r: r["updated"])
    return rows
