"""How the new sampling states look: word-start with copies shaded, and a branch beside the earlier text."""

import pytest

from rnn_tui.config import SampleConfig
from rnn_tui.generation import Generator
from rnn_tui.text.copies import CopyIndex
from rnn_tui.text.corpus import Corpus
from rnn_tui.text.vocab import Vocab
from rnn_tui.tui import copies as tui_copies
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.screens.branch import BranchScreen
from rnn_tui.tui.widgets.playground.prompt import PromptArea
from tests.conftest import until
from tests.fakes import VOCAB, FakeSession, tiny_weights
from tests.helpers import output, settle

pytestmark = pytest.mark.usefixtures("steady_memory")


async def type_a_prompt(pilot) -> None:
    pilot.app.query_one(PromptArea).cursor_blink = False
    await settle(pilot)
    await pilot.press(*"the cat ")
    await settle(pilot)


def test_word_start_with_copies_shaded(snap_compare, monkeypatch):
    cfg, weights = tiny_weights()
    text = Generator(cfg, VOCAB, weights).sample("the cat ", SampleConfig(draw="word-start"))
    corpus = "~" * 30 + text[20:60] + "~" * 30  # a training text that holds 40 characters of what it will write
    vocab = Vocab(corpus)
    index = CopyIndex.of(Corpus("t", "t", vocab, vocab.encode(corpus), "snapshot-corpus"))
    monkeypatch.setattr(tui_copies.copies, "for_run", lambda run_dir: index)

    async def shade(pilot):
        await type_a_prompt(pilot)
        await pilot.press("ctrl+b")
        await settle(pilot)
        await pilot.press("ctrl+n")
        await until(pilot, lambda: output(pilot.app).copied, "the shading")
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(RnnTuiApp(FakeSession()), terminal_size=(120, 36), run_before=shade)


def test_a_branch_beside_the_earlier_text(snap_compare):
    async def branch(pilot):
        await type_a_prompt(pilot)
        await pilot.press("escape", "home", *["right"] * 12, "enter", "down", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, BranchScreen) and pilot.app.screen.done, "the branch")
        await pilot.pause()

    assert snap_compare(RnnTuiApp(FakeSession()), terminal_size=(120, 36), run_before=branch)
