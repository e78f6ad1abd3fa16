"""A trainer's state as named arrays for a checkpoint, and back: weights, AdamW, RNG, carried state.

checkpoint.py writes and reads run folders without PyTorch; this module is the PyTorch
side of the same files, used only by the trainer.

    optimizer.safetensors
      exp_avg.<param>, exp_avg_sq.<param>, step.<param>   AdamW's moments and step counts
      rng.torch, rng.cuda                                  the generators' states (uint8)
      carried.state.<i>                                    the hidden state carried across batches
      trained.<param>                                      with --ema: the weights that train (the folder's
                                                           model.safetensors then holds their average)
"""

from __future__ import annotations

import base64

import numpy as np
import torch

from rnn_tui.checkpoint import Arrays, Checkpoint
from rnn_tui.train.model import CharRNN, State
from rnn_tui.train.optim import AdamW

MOMENTS = ("exp_avg", "exp_avg_sq")  # Muon's matrices have only the first


def model_arrays(model: CharRNN) -> Arrays:
    return {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}


def trained_arrays(model: CharRNN) -> Arrays:
    return {f"trained.{k}": a for k, a in model_arrays(model).items()}


def trained_weights(ckpt: Checkpoint) -> dict[str, torch.Tensor]:
    """The weights to train on from: `trained.*` where the folder's model is an average, else the model."""
    return {k: torch.from_numpy(ckpt.optimizer.get(f"trained.{k}", v)) for k, v in ckpt.model.items()}


def optimizer_arrays(model: CharRNN, optimizer: AdamW) -> Arrays:
    names = {id(p): n for n, p in model.named_parameters()}
    out: Arrays = {}
    for p, s in optimizer.state.items():
        name = names[id(p)]
        for key in MOMENTS:
            if key in s:
                out[f"{key}.{name}"] = s[key].detach().float().cpu().numpy()
        if "step" in s:
            out[f"step.{name}"] = np.array([float(s["step"])], np.float32)
    return out


def load_optimizer(model: CharRNN, optimizer: AdamW, ckpt: Checkpoint) -> None:
    """Put AdamW's moments and step counts back (older folders kept the steps in meta.json).

    `AdamW.load_state_dict` puts each on its parameter's device."""
    old_steps = ckpt.meta.get("optimizer_steps", {})
    state = {}
    for i, (name, _) in enumerate(model.named_parameters()):
        if f"exp_avg.{name}" not in ckpt.optimizer:
            continue
        step = ckpt.optimizer.get(f"step.{name}")
        state[i] = {
            "step": float(step[0]) if step is not None else old_steps.get(name, ckpt.step),
            **{k: torch.from_numpy(ckpt.optimizer[f"{k}.{name}"]) for k in MOMENTS if f"{k}.{name}" in ckpt.optimizer},
        }
    optimizer.load_state_dict(state)


def rng_arrays(device: torch.device) -> Arrays:
    out = {"rng.torch": torch.get_rng_state().numpy()}
    if device.type == "cuda":
        out["rng.cuda"] = torch.cuda.get_rng_state(device).numpy()
    return out


def load_rng(ckpt: Checkpoint, device: torch.device) -> None:
    saved = dict(ckpt.optimizer)
    for key, text in ckpt.meta.get("rng", {}).items():  # format 1 kept them in meta.json, base64
        saved.setdefault(f"rng.{key}", np.frombuffer(base64.b64decode(text), dtype=np.uint8))
    if "rng.torch" in saved:
        torch.set_rng_state(torch.from_numpy(np.array(saved["rng.torch"], dtype=np.uint8)))
    if "rng.cuda" in saved and device.type == "cuda":
        torch.cuda.set_rng_state(torch.from_numpy(np.array(saved["rng.cuda"], dtype=np.uint8)), device)


def state_arrays(state: State | None) -> Arrays:
    """The carried hidden state as named arrays."""
    if state is None:
        return {}
    parts = state if isinstance(state, tuple) else (state,)
    return {f"carried.state.{i}": p.detach().float().cpu().numpy() for i, p in enumerate(parts)}


def load_state(ckpt: Checkpoint, device: torch.device) -> State | None:
    keys = sorted(k for k in ckpt.optimizer if k.startswith("carried.state."))
    parts = [torch.from_numpy(ckpt.optimizer[k]).to(device) for k in keys]
    if not parts:
        return None
    return tuple(parts) if len(parts) == 2 else parts[0]
