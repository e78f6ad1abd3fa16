"""The shipped models: trained run folders inside the package, named `pretrained:NAME`. Torch-free.

    rnn_tui/models/<name>/meta.json           a run's meta.json, plus `shipped` (validation loss, how it was trained)
    rnn_tui/models/<name>/model.safetensors   its best weights, in half precision (float32 once loaded)
    rnn_tui/models/<name>/events.jsonl        its run record up to that step (the app's curves and samples)

They are read-only: nothing ever writes here (a fine-tuned model is a new run folder, `--init-from`).
`scripts/train_pretrained.py` trains and packages them. `$RNN_TUI_MODELS` names another folder of them
(the tests build tiny ones there).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rnn_tui.errors import UserError
from rnn_tui.events import CheckpointSaved, Event, RunStarted
from rnn_tui.fsutil import atomic_write_bytes

if TYPE_CHECKING:
    from rnn_tui.checkpoint import Checkpoint

PREFIX = "pretrained:"


def models_dir() -> Path:
    """Where the shipped models are: $RNN_TUI_MODELS, else this package's folder."""
    return Path(os.environ.get("RNN_TUI_MODELS") or Path(__file__).parent)


def is_pretrained(run: str | os.PathLike) -> bool:
    return isinstance(run, str) and run.startswith(PREFIX)


def names() -> list[str]:
    """The shipped models' names, sorted."""
    root = models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "meta.json").is_file())


def folder(run: str) -> Path:
    """The folder of `pretrained:NAME`, or a UserError that lists the names there are."""
    name = run.removeprefix(PREFIX)
    if name in names():
        return models_dir() / name
    known = ", ".join(f"{PREFIX}{n}" for n in names()) or "none are installed"
    raise UserError(f"no shipped model named {name!r}; choose one of: {known} (see rnn-tui models)")


def listing() -> list[dict]:
    """Each shipped model's name, model, corpus, validation loss (nats/char), size and folder: `rnn-tui models`,
    the runs screen and `rnn-tui runs --json` show these. A damaged one is left out, as `runs` leaves out a run."""
    from rnn_tui import checkpoint
    from rnn_tui.config import ModelConfig

    rows = []
    for name in names():
        path = models_dir() / name
        try:
            meta = checkpoint.read_meta(path)
            cfg = checkpoint.model_config(path, meta)
        except UserError:
            continue
        shipped = meta.get("shipped") if isinstance(meta.get("shipped"), dict) else {}
        val = shipped.get("val_loss", meta.get("best_val_loss"))
        rows.append(
            {
                "name": f"{PREFIX}{name}",
                "path": str(path),
                "model": ModelConfig.to_dict(cfg),
                "model_summary": cfg.summary(),
                "corpus": (meta.get("corpus") or {}).get("name", "?"),
                "step": meta.get("step", 0),
                "val_loss": val if isinstance(val, float) else None,
                "best_val_loss": val if isinstance(val, float) else None,  # as checkpoint.list_runs names it
                "train_seconds": meta.get("train_seconds"),
                "updated": "shipped",
                "params": meta.get("params"),
                "bytes": sum(f.stat().st_size for f in path.iterdir() if f.is_file()),
                "shipped": True,
            }
        )
    return rows


def is_shipped(meta: dict) -> bool:
    """Whether a run folder's meta.json is a shipped model's (which never trains in place)."""
    return isinstance(meta.get("shipped"), dict)


def _unplaced(event: Event, run_dir: Path) -> Event:
    """`event` without the folder the run trained in: the package must not carry the trainer's paths. (A start
    event read back names the folder it is read from.)"""
    if isinstance(event, RunStarted):
        return dataclasses.replace(event, run_dir=".")
    if isinstance(event, CheckpointSaved):
        return dataclasses.replace(event, path=os.path.relpath(event.path, run_dir))
    return event


def ship(ckpt: Checkpoint, out: Path, record_of: Path | None = None, **shipped: object) -> Path:
    """Write `ckpt` as a shipped model into the folder `out`: its weights in half precision, its meta.json with a
    `shipped` entry (`shipped`'s items: the validation loss, how it was trained), no optimizer; and the run record
    of the run folder `record_of` up to the checkpoint's step (the app shows its curves and samples). Returns `out`."""
    import json

    import numpy as np
    from safetensors.numpy import save as st_save

    from rnn_tui import checkpoint, record

    for name, a in ckpt.model.items():
        if not np.isfinite(a.astype(np.float16)).all():
            raise ValueError(f"{name} does not fit in half precision")
    out.mkdir(parents=True, exist_ok=True)
    ckpt_id = ckpt.meta["checkpoint_id"]
    weights = {k: np.ascontiguousarray(v, dtype=np.float16) for k, v in ckpt.model.items()}
    header = {"format": checkpoint.FORMAT, "checkpoint_id": ckpt_id}
    meta = dict(ckpt.meta)
    meta["shipped"] = {"name": out.name, "weights": "float16", **shipped}
    if record_of is not None and (record_of / record.FILENAME).is_file():
        kept = [_unplaced(e, record_of) for e in record.read(record_of, upto_step=ckpt.step).events]
        lines = [json.dumps(record.HEADER), *(json.dumps(e.to_json(), ensure_ascii=False) for e in kept)]
        atomic_write_bytes(out / record.FILENAME, "".join(f"{line}\n" for line in lines).encode())
    atomic_write_bytes(out / checkpoint.MODEL, st_save(weights, metadata=header))
    atomic_write_bytes(out / checkpoint.META, (json.dumps(meta, indent=1, ensure_ascii=False) + "\n").encode())
    checkpoint.load(out, optimizer=False)  # it validates like any run folder
    return out
