"""A monkey at the keyboard and the mouse: 2,000 random keys, pastes, clicks and resizes through Pilot, with a real
trainer running in its process on a tiny model. No exception, and afterwards the app still answers: it continues a
prompt, and training goes on.

Seeded (RNN_TUI_MONKEY_SEED), so a failure replays. Quitting is the one thing the monkey never asks for.
"""

from __future__ import annotations

import os
import random
import time

from textual import events
from textual.command import CommandPalette

from rnn_tui.session import LocalSession
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.widgets.playground.controls import FIELDS, Controls
from rnn_tui.tui.widgets.playground.playground import Playground
from rnn_tui.tui.widgets.playground.prompt import PromptArea
from rnn_tui.tui.widgets.run_header import RunHeader
from tests.conftest import tiny_plan
from tests.test_app import output

ACTIONS = 2000
KEYS = [
    *"abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,;:!?'\"()[]{}<>/\\|-_=+*&^%$#@~`",
    *["enter", "backspace", "delete", "tab", "shift+tab", "escape", "up", "down", "left", "right"],
    *["home", "end", "pageup", "pagedown", "ctrl+a", "ctrl+e", "ctrl+k", "ctrl+u", "ctrl+w", "ctrl+c"],
    *["f2", "f3", "f4", "f5", "f8", "ctrl+t", "ctrl+p", "ctrl+s", "ctrl+r", "p", "s", "r"],
]
PASTES = [
    "",
    "the cat sat",
    "x" * 500,
    "line\nline\n\ttab",
    "🙂 emoji ✓",
    "[bold]markup[/]",
    "\x00\x1b[2J",
    "e\u0301\u202e",
]
SIZES = [(140, 44), (80, 24), (60, 16), (200, 60), (110, 30)]


async def wait_until(pilot, predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


async def monkey(pilot, rng: random.Random, n: int) -> dict[str, int]:
    app = pilot.app
    done = {"key": 0, "paste": 0, "click": 0, "resize": 0}
    while sum(done.values()) < n:
        roll = rng.random()
        width, height = app.size
        if isinstance(app.screen, CommandPalette):  # typing into the palette; never enter: it could pick "quit"
            await pilot.press(rng.choice([*"abcdefgh", "backspace", "down", "escape"]))
            done["key"] += 1
        elif roll < 0.80:  # a burst of keys, as a typist's fingers send them, then the app catches up
            burst = [rng.choice(KEYS) for _ in range(rng.randint(1, 8))]
            await pilot.press(*burst)
            done["key"] += len(burst)
        elif roll < 0.88:
            if app.focused is not None:
                app.focused.post_message(events.Paste(rng.choice(PASTES)))
                await pilot.pause()
            done["paste"] += 1
        elif roll < 0.98:  # anywhere but the footer, whose bindings include quit
            await pilot.click(offset=(rng.randrange(width), rng.randrange(max(1, height - 1))))
            done["click"] += 1
        else:
            await pilot.resize_terminal(*rng.choice(SIZES))
            done["resize"] += 1
    return done


async def test_two_thousand_random_actions_with_the_trainer_running(text_file, tmp_path):
    seed = int(os.environ.get("RNN_TUI_MONKEY_SEED", "2024"))
    rng = random.Random(seed)
    session = LocalSession(tiny_plan(text_file, tmp_path, max_steps=None, checkpoint_every=200, eval_every=100))
    app = RnnTuiApp(session)
    try:
        async with app.run_test(size=(112, 32)) as pilot:
            await wait_until(pilot, lambda: app.query_one(Playground).generator is not None, 120, "the weights")
            done = await monkey(pilot, rng, ACTIONS)
            print(f"monkey (seed {seed}): {done}")
            assert sum(done.values()) >= ACTIONS and all(done.values()), done
            assert app.is_running and app.return_code is None, f"the app stopped (seed {seed})"

            # Afterwards it still answers: back to the main screen, sane settings, a prompt.
            while not isinstance(app.screen, type(app.get_default_screen())):
                await pilot.press("escape")
            await pilot.resize_terminal(112, 32)
            controls = app.query_one(Controls)
            for name, _, _ in FIELDS:
                controls.field(name).value = controls.field(name).format(getattr(controls.initial, name))
            if not controls.follow:
                await pilot.press("f8")
            prompt = app.query_one(PromptArea)
            prompt.focus()
            prompt.clear()
            await pilot.press(*"the cat")
            await wait_until(
                pilot,
                lambda: output(app).n_prompt == 7 and len(output(app).tokens) == 7 + 300,
                30,
                f"the playground to continue the prompt (seed {seed})",
            )

            # And training goes on (resumed if the monkey left it paused, restarted if it died).
            if app.state == "paused":
                session.resume()
            elif app.state == "failed":
                await pilot.press("ctrl+r")
            step = app.query_one(RunHeader).step
            await wait_until(
                pilot, lambda: app.query_one(RunHeader).step > step, 60, f"training to go on (seed {seed})"
            )
    finally:
        session.close()
    assert not session.alive
