"""Choosing the device, the CPU threads and the precision."""

from __future__ import annotations

import contextlib
import functools
import os
import platform
from pathlib import Path

import torch

from rnn_tui.config import DEVICES, PRECISIONS
from rnn_tui.errors import UserError


def pick_device(name: str = "auto") -> torch.device:
    """`auto` is the best available: cuda, then mps, then cpu. Asking for a missing one is a user error."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise UserError("--device cuda: this PyTorch sees no CUDA GPU; use --device cpu (or auto)")
    if name == "mps" and not mps:
        raise UserError("--device mps: Apple's Metal backend is not available here; use --device cpu (or auto)")
    if name not in DEVICES:
        raise UserError(f"--device {name}: choose one of {', '.join(DEVICES)}")
    return torch.device(name)


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True where the CPU multiplies bf16 in hardware (AVX512-BF16, AMX, or Arm's BF16)."""
    if platform.system() == "Linux":
        with contextlib.suppress(OSError):
            flags = set(Path("/proc/cpuinfo").read_text().split())
            return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    return False


def pick_precision(device: torch.device, name: str = "auto") -> str:
    """bf16 where the device does bf16 matmul natively, else fp32. `name` overrides."""
    if name not in PRECISIONS:
        raise UserError(f"--precision {name}: choose one of {', '.join(PRECISIONS)}")
    if name == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        raise UserError(
            "--precision bf16: this CPU has no bf16 arithmetic (no AVX512-BF16, AMX or Arm BF16), and PyTorch's "
            "recurrent layers cannot run in bf16 on it; use --precision fp32 (or auto)"
        )
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context for a forward pass at `precision` (a no-op for fp32)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cpu_count() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def set_threads(n: int | None = None) -> int:
    """Give PyTorch `n` threads (default: every core this process may use)."""
    n = max(1, n or cpu_count())
    torch.set_num_threads(n)
    return n


def describe(device: torch.device, precision: str) -> str:
    """E.g. "cpu (2 threads, fp32)", as the app's header and the run's meta.json show it."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)}, {precision})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'s' * (n != 1)}, {precision})"
    return f"{device.type} ({precision})"


def gpu_usage(device: torch.device) -> tuple[float | None, float | None]:
    """(utilisation %, MB of memory this process holds) of a CUDA device; None where there is none or the
    driver does not say (utilisation needs NVIDIA's management library, pynvml)."""
    if device.type != "cuda":
        return None, None
    try:
        percent: float | None = float(torch.cuda.utilization(device))
    except Exception:  # no pynvml, or a driver that does not report it
        percent = None
    return percent, round(torch.cuda.memory_reserved(device) / 2**20, 1)
