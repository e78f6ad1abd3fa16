"""Big corpora: a 100 MB text loads from the cache in seconds and trains in little memory.

    python benchmarks/scale.py           # 100 MB synthesised from tinyshakespeare (~2 minutes)
    python benchmarks/scale.py --smoke

Each step runs in its own process, so its peak RSS is its own. The baseline, in the same
run, is what nanoGPT's shakespeare_char/prepare.py does: read the whole text, build the
vocabulary with set(), and encode with a list comprehension.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import SHAKESPEARE, emit, machine, table

LOAD = """
import sys, time
from rnn_tui.text.corpus import load_corpus
from rnn_tui.text.sources import file_source
t = time.perf_counter()
c = load_corpus(file_source(sys.argv[1]))
print(time.perf_counter() - t, len(c), type(c.data).__name__)
"""

NAIVE = """
import sys, time
import numpy as np
t = time.perf_counter()
data = open(sys.argv[1], encoding="utf-8").read()
chars = sorted(set(data))
stoi = {ch: i for i, ch in enumerate(chars)}
ids = np.array([stoi[c] for c in data], dtype=np.uint16)
print(time.perf_counter() - t, len(ids), "ndarray")
"""


REPORT_RSS = "\nimport resource, sys\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"


def child(code: str, *args: str, env: dict | None = None) -> tuple[float, str]:
    """Run `code` in a fresh Python; return its own peak RSS in MiB and its stdout."""
    out = subprocess.run(
        [sys.executable, "-c", code + REPORT_RSS, *args], capture_output=True, text=True, check=True, env=env
    )
    return int(out.stderr.strip().splitlines()[-1]) / 1024, out.stdout.strip()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=100)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    import os

    if args.smoke:
        args.mb = 1
    tmp = Path(tempfile.mkdtemp(prefix="rnn-tui-scale-"))
    env = dict(os.environ, RNN_TUI_CACHE=str(tmp / "cache"))
    seed = SHAKESPEARE.read_text() if SHAKESPEARE.exists() else "To be, or not to be.\n" * 50_000
    big = tmp / "big.txt"
    with big.open("w", encoding="utf-8") as fh:
        written, i = 0, 0
        while written < args.mb * 1_000_000:
            block = f"\n=== part {i} ===\n" + seed
            fh.write(block)
            written += len(block.encode())
            i += 1
    size_mb = big.stat().st_size / 1e6
    info = machine()
    cache_flag = [] if args.mb >= 50 else ["--cache"]
    code = (
        LOAD.replace("load_corpus(file_source(sys.argv[1]))", "load_corpus(file_source(sys.argv[1]), cache=True)")
        if cache_flag
        else LOAD
    )
    rss_first, first = child(code, str(big), env=env)
    rss_second, second = child(code, str(big), env=env)
    rss_naive, naive = child(NAIVE, str(big), env=env)
    t_first, t_second, t_naive = (float(x.split()[0]) for x in (first, second, naive))
    steps = "3" if args.smoke else "30"
    train = "import sys\nfrom rnn_tui.cli import main\nassert main(sys.argv[1:]) == 0"
    t = time.perf_counter()
    rss_train, _ = child(
        train,
        "train",
        "--data",
        str(big),
        "--max-steps",
        steps,
        "--eval-chars",
        "100000",
        "--checkpoint-dir",
        str(tmp / "ck"),
        "--json",
        env=env,
    )
    t_train = time.perf_counter() - t
    rows = [
        ("load, first time (encode + cache)", f"{t_first:.1f}", f"{rss_first:.0f}"),
        ("load, second time (cache)", f"{t_second:.1f}", f"{rss_second:.0f}"),
        ("baseline: nanoGPT-style prepare", f"{t_naive:.1f}", f"{rss_naive:.0f}"),
        (f"train {steps} steps, whole process", f"{t_train:.1f}", f"{rss_train:.0f}"),
    ]
    emit(
        {
            "bench": "scale",
            "corpus_mb": round(size_mb, 1),
            "load_first_s": round(t_first, 2),
            "load_cached_s": round(t_second, 2),
            "baseline_load_s": round(t_naive, 2),
            "speedup_cached_vs_baseline": round(t_naive / t_second, 1),
            "rss_first_mib": round(rss_first),
            "rss_cached_mib": round(rss_second),
            "baseline_rss_mib": round(rss_naive),
            "train_peak_rss_mib": round(rss_train),
            **info,
        }
    )
    table(rows, (f"{size_mb:.0f} MB corpus", "seconds", "peak RSS (MiB)"))


if __name__ == "__main__":
    main()
