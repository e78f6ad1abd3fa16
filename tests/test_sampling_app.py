"""The playground's sampling controls (top-p, penalty, word-start) and its copies toggle, under Pilot."""

import dataclasses

import pytest

from rnn_tui.config import SampleConfig
from rnn_tui.generation import Generator
from rnn_tui.text.copies import CopyIndex
from rnn_tui.text.corpus import Corpus
from rnn_tui.text.vocab import Vocab
from rnn_tui.tui import copies as tui_copies
from rnn_tui.tui.app import RnnTuiApp
from rnn_tui.tui.widgets.playground.controls import Controls
from rnn_tui.tui.widgets.playground.playground import Playground
from tests.conftest import until
from tests.fakes import VOCAB, FakeSession, tiny_weights
from tests.helpers import generated_text, output, settle


async def test_top_p_penalty_and_word_start_drive_the_continuation(settled):
    app = RnnTuiApp(FakeSession())
    async with settled(app) as pilot:
        await pilot.press(*"the ")
        await settle(pilot)
        controls = app.query_one(Controls)
        controls.field("top_p").value = "0.6"
        controls.field("repetition_penalty").value = "2.5"
        await pilot.press("ctrl+b")
        await until(pilot, lambda: controls.word_start, "word-start on")
        await settle(pilot)
        want = SampleConfig(top_p=0.6, repetition_penalty=2.5, draw="word-start")
        assert controls.settings == want
        cfg, weights = tiny_weights()
        assert generated_text(app) == Generator(cfg, VOCAB, weights).sample("the ", want)
        assert "word-start" in str(controls.query_one("#draw").render())
        await pilot.press("ctrl+b")
        await until(pilot, lambda: not controls.word_start, "word-start off")
        await settle(pilot)
        every = dataclasses.replace(want, draw="every")
        assert generated_text(app) == Generator(cfg, VOCAB, weights).sample("the ", every)


BAD_FIELDS = [
    ("top_p", "0", ["--top-p 0", "greater than 0"]),
    ("top_p", "1.5", ["--top-p 1.5", "at most 1"]),
    ("repetition_penalty", "0", ["--repetition-penalty 0"]),
]


@pytest.mark.parametrize(("field", "typed", "words"), BAD_FIELDS)
async def test_a_bad_top_p_or_penalty_is_named_and_generation_waits(settled, field, typed, words):
    app = RnnTuiApp(FakeSession())
    async with settled(app) as pilot:
        await pilot.press(*"ab")
        await settle(pilot)
        controls = app.query_one(Controls)
        before = generated_text(app)
        controls.field(field).value = typed
        await settle(pilot)
        shown = str(controls.query_one("#follow").render())
        assert all(w in shown for w in words), shown
        assert controls.settings is None and generated_text(app) == before


def planted_index(text: str) -> CopyIndex:
    """An index of a corpus that holds `text` between characters the model never writes."""
    corpus_text = "~" * 30 + text + "~" * 30
    vocab = Vocab(corpus_text)
    return CopyIndex.of(Corpus("t", "t", vocab, vocab.encode(corpus_text), f"planted-{hash(corpus_text)}"))


async def test_the_copies_toggle_shades_what_occurs_in_the_training_text(settled, monkeypatch):
    cfg, weights = tiny_weights()
    text = Generator(cfg, VOCAB, weights).sample("the ", SampleConfig())  # what the playground will write
    index = planted_index(text[10:45])
    monkeypatch.setattr(tui_copies.copies, "for_run", lambda run_dir: index)
    app = RnnTuiApp(FakeSession())
    async with settled(app) as pilot:
        await pilot.press(*"the ")
        await settle(pilot)
        out = output(app)
        assert generated_text(app) == text
        playground = app.query_one(Playground)
        await pilot.press("ctrl+n")
        await until(pilot, lambda: out.copied, "the copied characters shaded")
        assert out.copied == list(range(out.n_prompt + 10, out.n_prompt + 45))
        assert f"{1 - 35 / len(text):.0%} novel" in str(playground.border_subtitle)
        assert "1 copied stretch (20+ characters" in str(playground.border_subtitle)
        app.query_one(Controls).field("seed").value = "7"  # a new continuation is checked again
        await settle(pilot)
        assert generated_text(app) != text

        def marked() -> list[int]:
            return [i for a, b in index.copies(generated_text(app)).spans for i in range(a + 4, b + 4)]

        await until(pilot, lambda: out.copied == marked(), "the new continuation checked")
        await pilot.press("ctrl+n")
        await until(pilot, lambda: not out.copied and not playground.border_subtitle, "the shading gone")


async def test_the_copies_toggle_says_why_when_the_run_has_no_text(settled):
    app = RnnTuiApp(FakeSession())  # its run folder is not there
    async with settled(app) as pilot:
        await pilot.press(*"ab")
        await settle(pilot)
        playground = app.query_one(Playground)
        await pilot.press("ctrl+n")
        await until(pilot, lambda: "copies: " in str(playground.border_subtitle), "the reason")
        assert "checkpoints/demo" in str(playground.border_subtitle) or "demo" in str(playground.border_subtitle)
        assert not output(app).copied


async def test_enter_on_a_candidate_branches_beside_the_earlier_text(settled):
    from rnn_tui.tui.screens.branch import BranchScreen
    from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText
    from rnn_tui.tui.widgets.playground.inspector import Inspector

    app = RnnTuiApp(FakeSession())
    async with settled(app) as pilot:
        await pilot.press(*"the ")
        await settle(pilot)
        earlier = list(output(app).tokens)
        await pilot.press("escape")  # to the coloured text
        await pilot.press("home", *["right"] * 9)  # generated character 6
        await until(pilot, lambda: output(app).cursor == 9, "the cursor on it")
        await pilot.press("enter")
        inspector = app.query_one(Inspector)
        await until(pilot, lambda: inspector.has_focus and inspector.index == 9, "the inspector picking")
        await pilot.press("down", "down")
        assert inspector.choice == 2
        chosen = earlier[9].top[2][0]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, BranchScreen) and app.screen.done, "the branch")
        screen = app.screen
        left, right = screen.query_one("#earlier", ConfidenceText), screen.query_one("#branch", ConfidenceText)
        text = "".join(t.char for t in earlier)
        assert "".join(t.char for t in left.tokens) == text  # the earlier text, kept
        branch = "".join(t.char for t in right.tokens)
        cfg, weights = tiny_weights()
        rest = Generator(cfg, VOCAB, weights).sample(text[:9] + chosen, SampleConfig(length=len(text) - 10))
        assert branch == text[:9] + chosen + rest and len(branch) == len(text)
        assert right.n_prompt == left.n_prompt == 9  # the shared text, underlined in both
        assert right.tokens[9].prob == pytest.approx(earlier[9].top[2][1], rel=1e-4)
        assert chosen in str(screen.query_one("#branch-title").render())
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.default_screen, "back to the playground")
        assert output(app).tokens == earlier  # the playground's text is as it was


async def test_the_timeline_and_the_temperatures_give_each_text_its_copies(settled, monkeypatch):
    from rnn_tui.tui.screens.temperatures import TemperaturesScreen
    from rnn_tui.tui.screens.timeline import TimelineScreen
    from rnn_tui.tui.widgets.chargrid.confidence_text import ConfidenceText
    from rnn_tui.tui.widgets.timeline.sample_timeline import SampleTimeline

    index = planted_index("\nWhat [light] through yonder window")  # in every training sample of the fake run
    monkeypatch.setattr(tui_copies.copies, "for_run", lambda run_dir: index)
    app = RnnTuiApp(FakeSession())
    async with settled(app) as pilot:
        await pilot.press(*"the ")
        await settle(pilot)
        await pilot.press("f7")
        await until(pilot, lambda: isinstance(app.screen, TimelineScreen), "the timeline")
        timeline = app.screen.query_one(SampleTimeline)
        await until(pilot, lambda: timeline.entries and len(timeline.copies) == len(timeline.entries), "checked")
        for i, (sample, val) in enumerate(timeline.entries):
            want = index.copies(sample.text)
            assert timeline.copies[i] == want and want.spans == ((6, 41),)  # after "ROMEO:", the 35 planted characters
            assert f"{want.novel:.0%} novel" in timeline.entry_text(sample, val, want).plain
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.default_screen, "the playground")
        await pilot.press("f9")
        await until(pilot, lambda: isinstance(app.screen, TemperaturesScreen) and app.screen.result.done, "columns")
        screen = app.screen
        views = list(screen.query(ConfidenceText))
        await until(pilot, lambda: "novel" in str(screen.query_one(".temperature-title").render()), "novel shares")
        for view in views:
            text = "".join(t.char for t in view.tokens[view.n_prompt :])
            marked = [i + view.n_prompt for a, b in index.copies(text).spans for i in range(a, b)]
            assert view.copied == marked


async def test_a_training_sample_after_the_index_is_ready_gives_its_novel_share(settled, monkeypatch):
    from rnn_tui.events import Sample
    from rnn_tui.tui.widgets.training.sample_feed import SampleFeed

    index = planted_index("\nWhat [light] through yonder window")
    monkeypatch.setattr(tui_copies.copies, "for_run", lambda run_dir: index)
    session = FakeSession()
    app = RnnTuiApp(session)
    async with settled(app) as pilot:
        await settle(pilot)
        await until(pilot, lambda: tui_copies.indexes(app).get() is index, "the index")
        text = "ROMEO:\nWhat [light] through yonder window breaks? (step 999)"
        session.inbox.append(Sample(999, text, 0.8, 1337))
        feed = app.query_one(SampleFeed)
        want = f"── step 999 · temperature 0.8 · {index.copies(text).novel:.0%} novel ──"
        await until(pilot, lambda: any(want in line.text for line in feed.lines), "the sample with its share")
