"""The copy index ("is it copying?"): its build time and memory, and a query against the plain way.

    python benchmarks/copy_index.py              # tinyshakespeare, then a 100 MB text (about 3 minutes)
    python benchmarks/copy_index.py --mb 20      # a smaller big text
    python benchmarks/copy_index.py --smoke

The 100 MB text is made here, offline, in a temporary folder: the stdlib corpus (4.6 MB of Python
source and docs) and tinyshakespeare (1.1 MB), concatenated, then again and again with their lines
in a new random order each time, until it is the size asked for. So it has long verbatim repeats
(the hard case for a suffix array: many suffixes agree on all 32 characters) and code's indentation.

Each corpus is indexed in a process of its own, with a fresh cache. Its memory is sampled every 20 ms
during the build: `peak_rss_mb` is the highest resident memory, pages of the memory-mapped corpus and of
the array being written included (the kernel drops those when memory is short); `peak_anon_mb` the
highest anonymous memory, what the build itself holds; `before_build_*` the same just before it. The
query is a 300-character text, 150 characters from the corpus then 150 of made-up words, with
`copies(text, 20)`; the baseline, in the same run, is the plain way: every 20-character window looked
up with `in` on the training text.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import SHAKESPEARE, emit, machine, smoke_corpus, table, timeit

RESULT = "copy_index result: "


def options() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=float, default=100.0, help="size of the big text in MB (default 100)")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # index this file, in this process
    args = p.parse_args()
    if args.smoke:
        args.mb = 1.0
    return args


def big_text(mb: float, folder: Path, smoke: bool) -> Path:
    """The stdlib corpus and tinyshakespeare, then their lines shuffled again and again, to `mb` MB."""
    from rnn_tui.text.sources import stdlib_source

    shakespeare = smoke_corpus() if smoke else SHAKESPEARE
    base = (stdlib_source().text()[: 200_000 if smoke else None] + shakespeare.read_text()).splitlines(keepends=True)
    rng = random.Random(0)
    path = folder / f"mixed-{mb:g}mb.txt"
    size, lines = 0, list(base)
    with path.open("w", encoding="utf-8") as fh:
        while size < mb * 1e6:
            chunk = "".join(lines)
            fh.write(chunk)
            size += len(chunk.encode())
            rng.shuffle(lines)
    return path


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory now (VmRSS), or its anonymous part (RssAnon: not the mapped files)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Peaks:
    """The highest RSS and anonymous RSS seen, sampled every 20 ms in a thread while it is open."""

    def __enter__(self) -> Peaks:
        self.rss = self.anon = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.rss, self.anon = max(self.rss, rss_mb()), max(self.anon, rss_mb("RssAnon"))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def worker(path: Path) -> dict:
    """Index `path` afresh in this process; time a query against the plain way."""
    from rnn_tui.text.copies import CopyIndex, cache_path
    from rnn_tui.text.corpus import load_corpus
    from rnn_tui.text.sources import file_source

    started = time.perf_counter()
    corpus = load_corpus(file_source(path))
    encode_s = time.perf_counter() - started
    train_end = len(corpus.data) - int(len(corpus.data) * 0.1)
    before, before_anon = rss_mb(), rss_mb("RssAnon")
    started = time.perf_counter()
    with Peaks() as peaks:
        index = CopyIndex.of(corpus, train_end)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    CopyIndex.of(corpus, train_end)  # from the cache
    open_ms = (time.perf_counter() - started) * 1e3
    train = corpus.vocab.decode(corpus.data[:train_end])
    rng = random.Random(1)
    at = rng.randrange(0, train_end - 150)
    words = "".join(rng.choice(["quoth ", "zebra ", "lantern ", "of ", "the ", "wimble "]) for _ in range(40))
    text = train[at : at + 150] + words[:150]
    found = index.copies(text)
    query_ms = timeit(lambda: index.copies(text), 30) * 1e3
    repeat = 3 if len(train) < 20_000_000 else 1
    plain_ms = timeit(lambda: [text[i : i + 20] in train for i in range(len(text) - 19)], repeat, warmup=0) * 1e3
    return {
        "chars": len(corpus.data),
        "encode_s": round(encode_s, 2),
        "build_s": round(build_s, 2),
        "before_build_mb": round(before, 1),
        "peak_rss_mb": round(peaks.rss, 1),
        "before_build_anon_mb": round(before_anon, 1),
        "peak_anon_mb": round(peaks.anon, 1),
        "index_mb": round(cache_path(corpus).stat().st_size / 1e6, 1),
        "open_cached_ms": round(open_ms, 2),
        "query_300_ms": round(query_ms, 2),
        "plain_300_ms": round(plain_ms, 1),
        "query_speedup": round(plain_ms / query_ms, 1),
        "novel": round(found.novel, 3),
    }


def main() -> None:
    args = options()
    if args.worker:
        print(RESULT + json.dumps(worker(args.worker)), flush=True)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="rnn-tui-copies-") as tmp:
        folder = Path(tmp)
        corpora = {"tinyshakespeare": smoke_corpus() if args.smoke else SHAKESPEARE}
        corpora[f"mixed {args.mb:g} MB"] = big_text(args.mb, folder, args.smoke)
        for name, path in corpora.items():
            env = dict(os.environ, RNN_TUI_CACHE=str(folder / f"cache-{len(rows)}"))
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", str(path)], env=env, capture_output=True, text=True, check=True
            )
            line = next(line for line in proc.stdout.splitlines() if line.startswith(RESULT))
            figures = json.loads(line.removeprefix(RESULT))
            emit({"bench": "copy_index", "corpus": name, **figures, **machine()})
            rows.append((name, f"{figures['chars']:,}", f"{figures['build_s']:.1f}", f"{figures['peak_rss_mb']:.0f}",
                         f"{figures['peak_anon_mb']:.0f}", f"{figures['before_build_anon_mb']:.0f}",
                         f"{figures['index_mb']:.0f}", f"{figures['query_300_ms']:.1f}",
                         f"{figures['plain_300_ms']:.0f}"))  # fmt: skip
    header = ("corpus", "chars", "build s", "peak RSS MB", "peak anon MB", "anon before", "index MB", "query ms")
    table(rows, (*header, "plain ms"))


if __name__ == "__main__":
    main()
