"""The run folder: save atomically, load and validate, lock, list runs, pick the latest. Torch-free.

    checkpoints/<run>/
      meta.json              format version, configs, vocabulary, step, data position, corpus, times
      model.safetensors      weights, float32, CPU layout
      optimizer.safetensors  AdamW moments and steps, RNG state, the carried hidden state
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
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from rnn_tui import __version__
from rnn_tui.config import ModelConfig, param_shapes
from rnn_tui.corpus import Vocab
from rnn_tui.errors import UserError
from rnn_tui.fsutil import Lock, fsync_dir

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

Arrays = dict[str, np.ndarray]


@dataclass
class Checkpoint:
    path: Path
    meta: dict
    model: Arrays
    optimizer: Arrays

    @property
    def config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.meta["model"])

    @property
    def vocab(self) -> Vocab:
        return Vocab(self.meta["vocab"])

    @property
    def step(self) -> int:
        return self.meta["step"]


# --------------------------------------------------------------------------- writing


def save(folder: Path, model: Arrays, optimizer: Arrays, meta: dict) -> None:
    """Write one checkpoint into `folder` atomically. Refuses non-finite weights."""
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
    for name, data in files.items():
        with open(pending / name, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    fsync_dir(pending)
    os.replace(pending, folder / ".commit")  # the commit point
    fsync_dir(folder)
    recover(folder)


def recover(folder: Path) -> None:
    """Finish a committed write (roll forward) and drop an uncommitted one. For writers only."""
    commit = folder / ".commit"
    if commit.is_dir():
        for name in _FILES:
            if (commit / name).exists():
                os.replace(commit / name, folder / name)
        fsync_dir(folder)
        shutil.rmtree(commit, ignore_errors=True)
    shutil.rmtree(folder / ".pending", ignore_errors=True)


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


# --------------------------------------------------------------------------- reading


def load(folder: Path | str, *, optimizer: bool = True) -> Checkpoint:
    """Load and validate a checkpoint folder (a run, or its best/)."""
    folder = Path(folder)
    for attempt in range(5):
        try:
            return _load(folder, optimizer)
        except _Torn:
            time.sleep(0.05 * (attempt + 1))  # a trainer is moving a new checkpoint into place
    raise UserError(
        f"the files in {folder} belong to different checkpoints; "
        "the run folder was mixed by hand: restore it or use its best/ folder"
    )


class _Torn(Exception):
    pass


def _path(folder: Path, name: str) -> Path:
    committed = folder / ".commit" / name
    return committed if committed.exists() else folder / name


def _load(folder: Path, optimizer: bool) -> Checkpoint:
    meta = read_meta(folder)
    cfg = _config(folder, meta)
    model = _read_arrays(_path(folder, MODEL), meta)
    got = {k: tuple(v.shape) for k, v in model.items()}
    want = param_shapes(cfg)
    if got != want:
        diff = sorted(set(got.items()) ^ set(want.items()))[:1]
        raise UserError(
            f"{folder / MODEL} does not match its meta.json (first difference: {diff}); "
            "the run folder is damaged: use its best/ folder or another run"
        )
    if any(a.dtype != np.float32 for a in model.values()):
        raise UserError(f"{folder / MODEL} holds weights that are not float32; the run folder is damaged")
    opt = _read_arrays(_path(folder, OPTIMIZER), meta) if optimizer else {}
    return Checkpoint(folder, meta, model, opt)


def read_meta(folder: Path) -> dict:
    """A run folder's meta.json, checked for the fields every reader relies on."""
    path = _path(folder, META)
    if not path.is_file():
        raise UserError(
            f"{folder} is not an rnn-tui run folder (it has no {META}); "
            "pass a folder made by rnn-tui train (see rnn-tui runs)"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{path} is damaged (not valid JSON); use the run's best/ folder or another run") from None
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror}); check its permissions") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path} was not written by rnn-tui; pass a folder made by rnn-tui train")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise UserError(
            f"{folder} uses run format {version}, newer than this rnn-tui understands ({FORMAT_VERSION}); "
            "upgrade rnn-tui"
        )
    step = meta.get("step", 0)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise UserError(f"{path}: its step is {step!r}, not a whole number; the run folder is damaged")
    return meta


def _config(folder: Path, meta: dict) -> ModelConfig:
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
    try:
        data = path.read_bytes()
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
        raise _Torn
    return arrays


# --------------------------------------------------------------------------- finding runs


def check_name(name: str) -> str:
    """A run name is a plain folder name: no separators, no `..`, not absolute."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        raise UserError(f"--run-name {name!r} is not a plain folder name; use letters, digits, '-', '_' and '.'")
    return name


def resolve(run: str | Path, checkpoint_dir: Path | str = "checkpoints") -> Path:
    """A run folder from a path, a run name under `checkpoint_dir`, or `latest`."""
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


def list_runs(checkpoint_dir: Path | str = "checkpoints") -> list[dict]:
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
            }
        )
    rows.sort(key=lambda r: r["updated"])
    return rows
