"""Start-up as a new user sees it: `rnn-tui launch` in a real terminal, to the first paint and the first step.

    python benchmarks/startup.py                      # this tree, median of 5 runs, ~3 minutes
    python benchmarks/startup.py --smoke              # 1 run, a tiny model, well under a minute
    python benchmarks/startup.py --tree A --compare B # two trees, their runs interleaved

Each app runs in a fresh tmux session (120x40, a private server, COLORTERM=truecolor) from a
temporary working folder, with the tree first on PYTHONPATH. A tmux control-mode client polls
the pane's first line about every 5 ms (one command over a pipe, not a process per poll, so the
polling costs the two cores next to nothing); a figure is the time from spawning the command to
the first capture that shows it.

- launch: `rnn-tui launch` (built-in corpus, default model). first_paint_s: the header
  ("rnn-tui ● starting") is on screen; first_step_s: the header shows step N > 0; rss_mb: VmRSS
  of the app's own process (not the trainer it spawns) 2 s after the first step.
- playground: `rnn-tui launch --resume bench --no-train` on a run of the default model trained
  for 2 steps (made once per invocation and tree): first paint, and RSS 2 s after it.
- baselines, in the same run: the first paint and RSS of a minimal Textual app (one Static)
  started the same way; wall time of `python -c "import torch"` and of
  `python -c "import textual.app, numpy"`. The *_vs_minimal ratios divide by the minimal app's.

With --compare the runs of the two trees alternate (ABBA) to cancel the machine's drift.
Each app quits with ctrl+q; quit_s is ctrl+q to the process's exit. Every wait has a deadline
and fails with the last screen.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import emit, machine, table

ROOT = Path(__file__).resolve().parents[1]
SIZE = (120, 40)
POLL_S = 0.005
SETTLE_S = 2.0  # from the first step (or paint) to the memory reading
DEADLINE_S = 60.0  # any one wait: paint, step, quit, a tmux reply
STEP_DEADLINE_S = 120.0  # the first step: the trainer's process imports torch and reads the corpus first
TRAIN_DEADLINE_S = 900.0  # the 2-step run for the playground
TINY = ["--hidden", "32", "--layers", "1", "--batch-size", "8", "--seq-len", "16"]
NEVER = "1000000"
# Compiles every module of the tree the app would import, whatever the tree's layout (trees before and after a move).
WARM = "import compileall, rnn_tui; compileall.compile_dir(rnn_tui.__path__[0], quiet=1); print(rnn_tui.__file__)"
# "rnn-tui ● starting": the app's RunHeader; "rnn-tui baseline": the minimal app. Not "rnn-tui launch: error: …".
HEADER = re.compile(r"^\s*rnn-tui\s+(?:\S+\s+)?(?:starting|training|paused|saving|diverged|done|failed|playground)\b")
BASELINE_HEADER = re.compile(r"^\s*rnn-tui baseline\b")
STEP = re.compile(r"step (\d[\d,]*)")
MINIMAL_APP = """\
from textual.app import App, ComposeResult
from textual.widgets import Static


class Minimal(App):
    def compose(self) -> ComposeResult:
        yield Static("rnn-tui baseline")


if __name__ == "__main__":
    Minimal().run()
"""


class BenchError(RuntimeError):
    pass


def _quote(arg: str) -> str:
    """One argument for tmux's command parser: single quotes, as in sh (no #{} or $ expansion inside)."""
    return "'" + arg.replace("'", "'\\''") + "'"


class Tmux:
    """A private tmux server, driven through one control-mode client (`tmux -C`) attached to a keeper session."""

    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"rnn-tui-bench-{os.getpid()}"
        self.env = env
        self._n = 0
        self._broken = ""  # after a lost reply the replies would be out of step: no more commands
        self._client: subprocess.Popen | None = None
        self.socket_path: Path | None = None
        subprocess.run(
            [*self._tmux(), "-f", "/dev/null", "new-session", "-d", "-s", "keeper", "sleep", "2147483647"],
            env=env, check=True, capture_output=True, timeout=DEADLINE_S,
        )  # fmt: skip
        try:
            self._client = subprocess.Popen(
                [*self._tmux(), "-C", "attach-session", "-t", "=keeper"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
            )  # fmt: skip
            self._lines: queue.Queue[str | None] = queue.Queue()
            threading.Thread(target=self._read, daemon=True).start()
            self.socket_path = Path(self.cmd("display-message -p '#{socket_path}'")[0])
            self.cmd("set-option -g remain-on-exit on")  # a dead pane keeps its last screen, for the error message
            self.cmd("set-option -g default-terminal tmux-256color")
        except BaseException:
            self.close()
            raise

    def _tmux(self) -> list[str]:
        return ["tmux", "-L", self.socket]

    def _read(self) -> None:
        for line in self._client.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def cmd(self, line: str) -> list[str]:
        """Run one tmux command; its output lines. Replies to our commands are %begin…%end blocks flagged 1."""
        if self._broken:
            raise BenchError(self._broken)
        self._client.stdin.write(line + "\n")
        self._client.stdin.flush()
        end = time.monotonic() + DEADLINE_S
        out: list[str] | None = None
        while True:
            try:
                got = self._lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                self._broken = f"tmux did not answer {line!r} within {DEADLINE_S:.0f} s"
                raise BenchError(self._broken) from None
            if got is None:
                self._broken = f"tmux's control client exited while running {line!r}"
                raise BenchError(self._broken)
            if out is None:
                if got.startswith("%begin ") and got.split()[-1] == "1":
                    out = []
                continue  # a notification, or the reply to attach-session
            if got.startswith(("%end ", "%error ")) and got.split()[-1] == "1":
                if got.startswith("%error "):
                    raise BenchError(f"tmux {line!r}: {' '.join(out)}")
                return out
            out.append(got)

    def spawn(self, argv: list[str], cwd: str, env: dict[str, str]) -> tuple[str, float]:
        """Start `argv` (no shell) in a new session; its name and the time of the spawn."""
        self._n += 1
        name = f"run-{self._n}"
        flags = " ".join(f"-e {_quote(f'{k}={v}')}" for k, v in env.items())
        line = f"new-session -d -s {name} -x {SIZE[0]} -y {SIZE[1]} -c {_quote(cwd)} {flags} -- " + " ".join(
            _quote(a) for a in argv
        )
        t0 = time.perf_counter()
        self.cmd(line)
        return name, t0

    def first_line(self, name: str) -> str:
        out = self.cmd(f"capture-pane -p -t ={name}: -S 0 -E 0")
        return out[0] if out else ""

    def screen(self, name: str) -> str:
        """The pane's screen and scroll-back (a dead pane's last lines can be scrolled off), blank runs squeezed."""
        try:
            text = "\n".join(self.cmd(f"capture-pane -p -S - -t ={name}:"))
        except BenchError as exc:
            return f"(no screen: {exc})"
        return re.sub(r"\n\s*\n(\s*\n)+", "\n\n", text).strip()

    def pane(self, name: str) -> tuple[int, bool, str]:
        """The pane's pid, whether its process has exited, and its exit status."""
        fmt = "'#{pane_pid} #{pane_dead} #{pane_dead_status}'"
        pid, dead, status = self.cmd(f"display-message -p -t ={name}: {fmt}")[0].split(" ")
        return int(pid), dead == "1", status

    def keys(self, name: str, *keys: str) -> None:
        self.cmd(f"send-keys -t ={name}: " + " ".join(keys))

    def kill(self, name: str) -> None:
        with contextlib.suppress(BenchError):
            self.cmd(f"kill-session -t ={name}")

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.stdin.close()
        subprocess.run(
            [*self._tmux(), "kill-server"], check=False, env=self.env, capture_output=True, timeout=DEADLINE_S
        )
        if self._client is not None:
            try:
                self._client.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._client.kill()
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)  # tmux 3.3 leaves it behind


# --------------------------------------------------------------------------- one app in one pane


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def app_pid(pane_pid: int, marker: str) -> int:
    """The app's own process: the pane's process if it runs the app, else the topmost descendant that does.

    Robust to a shell in between; the trainer (a multiprocessing spawn child) is below the app, so never picked.
    """
    todo = [pane_pid]
    while todo:
        pid = todo.pop(0)
        if any(marker in a for a in _cmdline(pid)):
            return pid
        todo += _children(pid)
    raise BenchError(f"no process running {marker!r} under the pane's process {pane_pid}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for process {pid}")


class Pane:
    """One app in its own tmux session: wait for what its first line shows, read its memory, quit it."""

    def __init__(self, tmux: Tmux, argv: list[str], cwd: str, env: dict[str, str], what: str) -> None:
        self.tmux, self.what = tmux, what
        self.name, self.t0 = tmux.spawn(argv, cwd, env)

    def fail(self, why: str) -> BenchError:
        return BenchError(f"{self.what}: {why}; the last screen:\n{self.tmux.screen(self.name)}")

    def wait_line(self, test, what: str, deadline_s: float = DEADLINE_S) -> tuple[float, str]:
        """Seconds from the spawn to the first capture whose first line passes `test`, and that line."""
        end = self.t0 + deadline_s
        polls = 0
        while True:
            line = self.tmux.first_line(self.name)
            now = time.perf_counter()
            if test(line):
                return now - self.t0, line
            polls += 1
            if polls % 20 == 0 and self.tmux.pane(self.name)[1]:
                raise self.fail(f"the app exited before {what}")
            if now > end:
                raise self.fail(f"no {what} within {deadline_s:.0f} s")
            time.sleep(POLL_S)

    def memory(self, marker: str) -> float:
        pane_pid, dead, _ = self.tmux.pane(self.name)
        if dead:
            raise self.fail("the app exited before its memory was read")
        return rss_mb(app_pid(pane_pid, marker))

    def quit(self) -> float:
        """ctrl+q, then wait for the process to exit (a second ctrl+q half-way: it quits at once). Seconds."""
        t = time.perf_counter()
        self.tmux.keys(self.name, "C-q")
        again = False
        while True:
            _, dead, status = self.tmux.pane(self.name)
            elapsed = time.perf_counter() - t
            if dead:
                if status not in ("0", ""):
                    raise self.fail(f"the app exited with status {status} after ctrl+q")
                return elapsed
            if elapsed > DEADLINE_S / 2 and not again:
                self.tmux.keys(self.name, "C-q")
                again = True
            if elapsed > DEADLINE_S:
                raise self.fail(f"the app did not exit within {DEADLINE_S:.0f} s of ctrl+q")
            time.sleep(0.02)

    def close(self) -> None:
        self.tmux.kill(self.name)  # SIGHUP to whatever is left


# --------------------------------------------------------------------------- the scenarios


class Bench:
    def __init__(self, args, tmux: Tmux, env: dict[str, str], tmp: Path) -> None:
        self.args, self.tmux, self.env, self.tmp = args, tmux, env, tmp
        self.py = sys.executable
        self.flags = TINY if args.smoke else []
        self.runs: dict[str, dict[str, list[float]]] = {}  # scenario key -> figure -> values
        self.headers: dict[str, str] = {}

    def record(self, key: str, **figures: float) -> None:
        for fig, value in figures.items():
            self.runs.setdefault(key, {}).setdefault(fig, []).append(value)

    def cwd(self) -> str:
        return tempfile.mkdtemp(prefix="cwd-", dir=self.tmp)

    def tree_env(self, tree: Path) -> dict[str, str]:
        return {**self.env, "PYTHONPATH": str(tree)}

    def check_tree(self, tree: Path) -> None:
        """The tree's rnn_tui is the one imported (not the editable install); compiles its .pyc files too."""
        out = subprocess.run(
            [self.py, "-c", WARM],
            check=False, cwd=self.cwd(), env=self.tree_env(tree), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        where = out.stdout.strip()
        if out.returncode or not Path(where).resolve().is_relative_to(tree):
            raise BenchError(f"--tree {tree}: python imports rnn_tui from {where or '?'}\n{out.stderr[-2000:]}")

    def train_run(self, tree: Path) -> Path:
        """A run of the default model (or the tiny one in --smoke) trained for 2 steps: for the playground."""
        folder = Path(tempfile.mkdtemp(prefix="ckpt-", dir=self.tmp))
        cmd = [self.py, "-m", "rnn_tui", "train", "--max-steps", "2", "--eval-every", NEVER, "--sample-every", NEVER,
               "--run-name", "bench", "--checkpoint-dir", str(folder), *self.flags]  # fmt: skip
        try:
            out = subprocess.run(
                cmd, check=False, cwd=self.cwd(), env=self.tree_env(tree), capture_output=True, text=True,
                timeout=TRAIN_DEADLINE_S,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise BenchError(f"{' '.join(cmd)}: not done within {TRAIN_DEADLINE_S:.0f} s") from None
        if out.returncode:
            raise BenchError(f"{' '.join(cmd)} failed ({out.returncode}):\n{(out.stdout + out.stderr)[-3000:]}")
        return folder

    def app(self, key: str, argv: list[str], env: dict[str, str], marker: str, *, header=HEADER, step=False) -> None:
        cwd = self.cwd()
        pane = Pane(self.tmux, argv, cwd, env, f"{key}: {' '.join(argv[1:])}")
        try:
            paint, line = pane.wait_line(header.search, "header")
            figures = {"first_paint_s": paint}
            if step:
                figures["first_step_s"], line = pane.wait_line(
                    lambda s: header.search(s) and (m := STEP.search(s)) and int(m[1].replace(",", "")) > 0,
                    "step > 0 in the header",
                    STEP_DEADLINE_S,
                )
            time.sleep(SETTLE_S)
            figures["rss_mb"] = pane.memory(marker)
            figures["quit_s"] = pane.quit()
            self.headers[key] = line.strip()
            self.record(key, **figures)
        finally:
            pane.close()
            shutil.rmtree(cwd, ignore_errors=True)

    def launch(self, tree: Path) -> None:
        argv = [self.py, "-m", "rnn_tui", "launch", *self.flags]
        self.app(f"launch|{tree}", argv, self.tree_env(tree), "rnn_tui", step=True)

    def playground(self, tree: Path, folder: Path) -> None:
        argv = [self.py, "-m", "rnn_tui", "launch", "--resume", "bench", "--no-train", "--checkpoint-dir", str(folder),
                *self.flags]  # fmt: skip
        self.app(f"playground|{tree}", argv, self.tree_env(tree), "rnn_tui")

    def minimal(self) -> None:
        script = self.tmp / "minimal_app.py"
        script.write_text(MINIMAL_APP)
        self.app("minimal_app", [self.py, str(script)], self.env, "minimal_app.py", header=BASELINE_HEADER)

    def imports(self, key: str, code: str) -> None:
        t = time.perf_counter()
        subprocess.run([self.py, "-c", code], cwd=self.cwd(), env=self.env, check=True, timeout=DEADLINE_S)
        self.record(key, import_s=time.perf_counter() - t)


# --------------------------------------------------------------------------- main


def _median(values: list[float], digits: int) -> float:
    return round(statistics.median(values), digits)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", type=Path, default=ROOT, help="the source tree to run (default: this repository)")
    p.add_argument("--compare", type=Path, metavar="PATH", help="a second tree, its runs interleaved with --tree's")
    p.add_argument("--repeat", type=int, default=5, help="runs per figure; the figures are medians (default 5)")
    p.add_argument("--smoke", action="store_true", help="1 run and a tiny model")
    args = p.parse_args()
    if args.smoke:
        args.repeat = 1
    trees = [t.resolve() for t in [args.tree, args.compare] if t is not None]
    for t in trees:
        if not (t / "rnn_tui" / "__init__.py").exists():
            p.error(f"{t} has no rnn_tui package: give --tree/--compare a checkout of rnn-tui")
    if len(set(trees)) < len(trees):
        p.error("--compare names the same tree as --tree")
    if shutil.which("tmux") is None:
        p.error("tmux is not installed (apt-get install tmux)")

    info = machine()
    # Python as a user has it: .pyc files written and reused (PYTHONDONTWRITEBYTECODE, set on some
    # build machines, made every start compile every module of the tree, about 0.1 s more).
    drop = ("PYTHONPATH", "TMUX", "TMUX_PANE", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(COLORTERM="truecolor")  # as most terminals set it
    tmp = Path(tempfile.mkdtemp(prefix="rnn-tui-startup-"))
    env["RNN_TUI_CACHE"] = str(tmp / "cache")  # a new user's empty cache; the built-in corpus does not use it
    tmux = Tmux(env)
    bench = Bench(args, tmux, env, tmp)
    try:
        # Page cache and .pyc files warm before the first timed run, so that it is like the others.
        subprocess.run([sys.executable, "-c", "import torch, textual.app, numpy"], env=env, check=True, timeout=300)
        for t in trees:
            bench.check_tree(t)
        folders = {}
        for t in trees:
            print(f"startup: training the run for the playground ({t})…", file=sys.stderr, flush=True)
            folders[t] = bench.train_run(t)
        for i in range(args.repeat):
            print(f"startup: round {i + 1}/{args.repeat}", file=sys.stderr, flush=True)
            order = trees if i % 2 == 0 else trees[::-1]  # ABBA: drift cancels out of the comparison
            bench.minimal()
            bench.imports("import_torch", "import torch")
            bench.imports("import_textual_numpy", "import textual.app, numpy")
            for t in order:
                bench.launch(t)
            for t in order:
                bench.playground(t, folders[t])
    finally:
        tmux.close()
        shutil.rmtree(tmp, ignore_errors=True)

    runs = bench.runs
    base = {"bench": "startup", "repeat": args.repeat, "smoke": args.smoke}
    minimal = {fig: statistics.median(v) for fig, v in runs["minimal_app"].items()}
    emit({**base, "scenario": "minimal_app",
          **{f: _median(v, 3 if f.endswith("_s") else 1) for f, v in runs["minimal_app"].items()},
          "header": bench.headers["minimal_app"], "runs": runs["minimal_app"], **info})  # fmt: skip
    for key, fig in (("import_torch", "import_torch_s"), ("import_textual_numpy", "import_textual_numpy_s")):
        values = runs[key]["import_s"]
        emit({**base, "scenario": key, fig: _median(values, 3), "runs": {fig: values}, **info})
    rows = []
    for scenario in ("launch", "playground"):
        for t in trees:
            key = f"{scenario}|{t}"
            figs = runs[key]
            rec = {**base, "scenario": scenario, "tree": str(t)}
            rec.update({f: _median(v, 3 if f.endswith("_s") else 1) for f, v in figs.items()})
            for f in ("first_paint_s", "first_step_s", "rss_mb"):
                if f in figs:
                    ref = minimal["rss_mb" if f == "rss_mb" else "first_paint_s"]
                    rec[f.removesuffix("_s").removesuffix("_mb") + "_vs_minimal"] = round(
                        statistics.median(figs[f]) / ref, 2
                    )
            emit({**rec, "header": bench.headers[key], "runs": figs, **info})

    # The table: one column per tree; the baselines are shared.
    def cell(key: str, fig: str, fmt: str) -> str:
        v = runs.get(key, {}).get(fig)
        if not v:
            return ""
        m = statistics.median(v)
        ref = minimal.get("rss_mb" if fig == "rss_mb" else "first_paint_s")
        ratio = f" ({m / ref:.1f}x min)" if key.startswith(("launch", "playground")) and fig != "quit_s" else ""
        return format(m, fmt) + ratio

    for scenario, fig, label, fmt in (
        ("launch", "first_paint_s", "launch: first paint (s)", ".2f"),
        ("launch", "first_step_s", "launch: first step > 0 (s)", ".2f"),
        ("launch", "rss_mb", "launch: app RSS (MB)", ".0f"),
        ("launch", "quit_s", "launch: ctrl+q to exit (s)", ".2f"),
        ("playground", "first_paint_s", "playground: first paint (s)", ".2f"),
        ("playground", "rss_mb", "playground: app RSS (MB)", ".0f"),
        ("playground", "quit_s", "playground: ctrl+q to exit (s)", ".2f"),
    ):
        rows.append((label, *(cell(f"{scenario}|{t}", fig, fmt) for t in trees)))
    blank = ("",) * (len(trees) - 1)
    rows += [
        ("minimal Textual app: first paint (s)", cell("minimal_app", "first_paint_s", ".2f"), *blank),
        ("minimal Textual app: RSS (MB)", cell("minimal_app", "rss_mb", ".0f"), *blank),
        ('python -c "import torch" (s)', cell("import_torch", "import_s", ".2f"), *blank),
        ('python -c "import textual.app, numpy" (s)', cell("import_textual_numpy", "import_s", ".2f"), *blank),
    ]
    what = "smoke, tiny model" if args.smoke else "default model"
    table(rows, (f"startup, median of {args.repeat} ({what})", *(str(t) for t in trees)))


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        sys.exit(f"startup: {exc}")
