"""Figures as people read them: durations, sizes and amounts of text."""

from __future__ import annotations


def duration(seconds: float) -> str:
    """12s, 3m05s, 2h07m."""
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def size(n: float) -> str:
    """Bytes as kB or MB."""
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def chars(n: int) -> str:
    """2.05 M characters; 3,840 characters."""
    return f"{n / 1e6:.2f} M characters" if n >= 100_000 else f"{n:,} characters"
