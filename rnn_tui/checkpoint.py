"""The run folder: save atomically, load and validate, list runs, pick the latest.

    checkpoints/<run>/
      meta.json              everything that is not a tensor (see DESIGN.md)
      model.safetensors      weights, float32, CPU layout
      optimizer.safetensors  optimizer moments and the trainer's carried hidden state
      best/                  the same three files for the lowest validation loss so far
      train.log              the trainer's own output (in the app)

A checkpoint is three files that must change together. They are written into `.pending/`
and fsynced; renaming `.pending/` to `.commit/` is the commit point; then the files are
moved into place, meta.json last. A crash before the commit leaves the old checkpoint; a
crash after it leaves the new one in `.commit/`, which readers prefer and the next writer
moves into place (`recover`). Readers never change the folder, so they can read while a
trainer writes; the checkpoint id in every file tells them if they caught it mid-move.
Nothing is ever unpickled.
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

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from rnn_tui import __version__
from rnn_tui.corpus import Vocab, fsync_dir
from rnn_tui.errors import UserError
from rnn_tui.model import CharRNN, ModelConfig

FORMAT = "rnn-tui-run"
FORMAT_VERSION = 1
META, MODEL, OPTIMIZER, BEST, LOG = "meta.json", "model.safetensors", "optimizer.safetensors", "best", "train.log"
_FILES = (OPTIMIZER, MODEL, META)  # the order they are moved into place: meta.json last


@dataclass
class Checkpoint:
    path: Path
    meta: dict
    model: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]

    @property
    def config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.meta["model"])

    @property
    def vocab(self) -> Vocab:
        return Vocab(self.meta["vocab"])

    def build_model(self, device: torch.device | str = "cpu") -> CharRNN:
        model = CharRNN(self.config)
        model.load_state_dict(self.model)
        return model.to(device)


# --------------------------------------------------------------------------- writing


def save(folder: Path, model: dict[str, torch.Tensor], optimizer: dict[str, torch.Tensor], meta: dict) -> None:
    """Write one checkpoint into `folder` atomically. Refuses non-finite weights."""
    model = {k: v.detach().float().cpu().contiguous() for k, v in model.items()}
    for name, t in model.items():
        if not torch.isfinite(t).all():
            raise ValueError(f"refusing to save non-finite weights ({name})")
    optimizer = {k: v.detach().cpu().contiguous() for k, v in optimizer.items()}
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


# --------------------------------------------------------------------------- reading


def load(folder: Path | str, *, optimizer: bool = True) -> Checkpoint:
    """Load and validate a checkpoint folder (a run, or its best/). Tensors land on the CPU."""
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
    model = _read_tensors(_path(folder, MODEL), meta)
    with torch.device("meta"):
        expected = CharRNN(cfg).state_dict()
    got = {k: tuple(v.shape) for k, v in model.items()}
    want = {k: tuple(v.shape) for k, v in expected.items()}
    if got != want:
        diff = sorted(set(got.items()) ^ set(want.items()))[:1]
        raise UserError(
            f"{folder / MODEL} does not match its meta.json (first difference: {diff}); "
            "the run folder is damaged: use its best/ folder or another run"
        )
    opt = _read_tensors(_path(folder, OPTIMIZER), meta) if optimizer else {}
    return Checkpoint(folder, meta, model, opt)


def read_meta(folder: Path) -> dict:
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
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path} was not written by rnn-tui; pass a folder made by rnn-tui train")
    if not isinstance(meta.get("format_version"), int) or meta["format_version"] > FORMAT_VERSION:
        raise UserError(
            f"{folder} uses checkpoint format {meta.get('format_version')}, newer than this "
            f"rnn-tui understands ({FORMAT_VERSION}); upgrade rnn-tui"
        )
    return meta


def _config(folder: Path, meta: dict) -> ModelConfig:
    try:
        cfg = ModelConfig.from_dict(meta["model"])
        vocab = Vocab(meta["vocab"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(
            f"{folder / META} has no valid model config or vocabulary ({exc}); the run folder is damaged"
        ) from None
    if cfg.vocab_size != len(vocab):
        raise UserError(f"{folder / META}: vocabulary size {len(vocab)} does not match the model's {cfg.vocab_size}")
    return cfg


def _read_tensors(path: Path, meta: dict) -> dict[str, torch.Tensor]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror}); the run folder is incomplete") from None
    try:
        tensors = st_load(data)
        header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")]).get("__metadata__") or {}
    except (SafetensorError, ValueError, OverflowError) as exc:
        raise UserError(
            f"{path} is damaged or not a safetensors file ({exc}); use the run's best/ folder or another run"
        ) from None
    if header.get("checkpoint_id") != meta.get("checkpoint_id"):
        raise _Torn
    return tensors


# --------------------------------------------------------------------------- finding runs


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
    """Every run folder under `checkpoint_dir`, oldest first, with its corpus, step and best loss."""
    root = Path(checkpoint_dir)
    rows = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            meta = read_meta(folder)
        except UserError:
            continue
        best = meta.get("best_val_loss")
        rows.append(
            {
                "name": folder.name,
                "path": str(folder),
                "corpus": (meta.get("corpus") or {}).get("name", "?"),
                "step": meta.get("step", 0),
                "best_val_loss": best if isinstance(best, float) and math.isfinite(best) else None,
                "updated": meta.get("updated", ""),
                "model": meta.get("model", {}),
            }
        )
    rows.sort(key=lambda r: r["updated"])
    return rows
