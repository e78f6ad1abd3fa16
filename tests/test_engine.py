"""The generation engine alone: requests in, messages out, on its own thread. A frozen clock makes its
partial results deterministic (only the first character, the burst and the end are posted), and the
tests wait on the messages it posts (with deadlines), never on time."""

import threading

import pytest

from rnn_tui import generation
from rnn_tui.config import SampleConfig
from rnn_tui.generation import Generator
from rnn_tui.session import Weights
from rnn_tui.tui.messages import EngineFailed, Generated, Priming, WeightsTaken
from rnn_tui.tui.widgets.playground import engine as engine_module
from rnn_tui.tui.widgets.playground.engine import FIRST_BURST, Engine
from tests.conftest import wait_for
from tests.fakes import VOCAB, tiny_weights

SETTINGS = SampleConfig(temperature=0.8, seed=42, length=60)


def weights(seed: int = 0, step: int = 300) -> Weights:
    cfg, tensors = tiny_weights(seed)
    return Weights(step, step, cfg, VOCAB, tensors)


class Screen:
    """What the playground shows, built only from the engine's messages, as ConfidenceText edits its tokens."""

    def __init__(self) -> None:
        self.messages: list = []
        self.tokens: list = []
        self.n_prompt = 0
        self.changed = threading.Condition()
        self.gate: tuple[type, threading.Event, threading.Event] | None = None  # hold the engine at a message

    def __call__(self, message) -> None:  # the engine's `post`, on its thread
        with self.changed:
            self.messages.append(message)
            if isinstance(message, Generated):
                assert message.keep <= len(self.tokens)
                del self.tokens[message.keep :]
                self.tokens.extend(message.tokens)
                self.n_prompt = message.n_prompt
            self.changed.notify_all()
        if self.gate is not None and isinstance(message, self.gate[0]):
            _, reached, release = self.gate
            self.gate = None
            reached.set()
            assert release.wait(30)

    def wait(self, predicate, what: str, timeout: float = 30.0) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, timeout), f"timed out waiting for {what}"

    def text(self) -> str:
        return "".join(t.char for t in self.tokens)

    def generated(self) -> list:
        return [m for m in self.messages if isinstance(m, Generated)]


def reference(prompt: str, settings: SampleConfig = SETTINGS, seed: int = 0) -> str:
    """The prompt and its continuation, from a Generator of its own."""
    cfg, tensors = tiny_weights(seed)
    return prompt + Generator(cfg, VOCAB, tensors).sample(prompt, settings)


@pytest.fixture
def screen():
    return Screen()


@pytest.fixture
def make(screen):
    """An engine posting to `screen`, with a frozen clock; closed after the test."""
    made: list[Engine] = []

    def make(tail_delay: float = 0.0, start: bool = True) -> Engine:
        engine = Engine(screen, clock=lambda: 0.0, tail_delay=tail_delay)
        made.append(engine)
        if start:
            engine.start()
        return engine

    yield make
    for engine in made:
        engine.close()


def answered(engine: Engine) -> None:
    wait_for(lambda: engine.idle, "the engine to answer", 30)


def test_an_answer_is_the_prompt_and_its_continuation(make, screen):
    engine = make()
    engine.weights(weights())
    engine.settings(SETTINGS)
    engine.prompt("the cat")
    answered(engine)
    assert isinstance(screen.messages[0], WeightsTaken) and screen.messages[0].weights.step == 300
    assert screen.text() == reference("the cat") and screen.n_prompt == 7
    assert screen.generated()[-1].done
    assert all(t.prob is not None for t in screen.tokens[:7]) and all(t.generated for t in screen.tokens[7:])


def test_only_the_newest_request_of_each_kind_counts(make, screen):
    engine = make(start=False)
    engine.prompt("a")
    engine.prompt("the dog")
    engine.settings(SampleConfig(seed=1, length=60))
    engine.settings(SETTINGS)
    engine.weights(weights(seed=1, step=100))
    engine.weights(weights(step=300))
    engine.start()
    answered(engine)
    assert [m.weights.step for m in screen.messages if isinstance(m, WeightsTaken)] == [300]
    assert screen.text() == reference("the dog")
    assert len(screen.generated()) == 2  # the first character, then the rest: one answer, not one per request


def test_a_keystroke_gets_its_first_character_at_once_and_the_rest_once_the_prompt_is_still(make, screen):
    engine = make(tail_delay=3600)  # still for an hour: never, in this test
    engine.weights(weights())
    engine.settings(SETTINGS)
    engine.prompt("the")
    answered(engine)
    before = len(screen.messages)

    engine.prompt("the c", typing=True)
    screen.wait(lambda: screen.text().startswith("the c") and len(screen.tokens) == 5 + FIRST_BURST, "the burst")
    first, burst = screen.messages[before:]
    assert (first.keep, [t.char for t in first.tokens], first.n_prompt) == (3, [" ", "c", reference("the c")[5]], 5)
    assert burst.keep == 6 and len(burst.tokens) == FIRST_BURST - 1 and not burst.done  # only what is new
    assert not engine.idle  # the tail waits for the prompt to be still

    engine.prompt("the ca", typing=True)  # the next key abandons the tail
    screen.wait(lambda: screen.text().startswith("the ca") and len(screen.tokens) == 6 + FIRST_BURST, "its burst")
    assert all(len(m.tokens) <= FIRST_BURST for m in screen.generated()[2:])  # the first key's tail never came
    assert screen.text() == reference("the ca")[: 6 + FIRST_BURST]

    engine.settings(SETTINGS)  # not a keystroke: the whole continuation, at once
    answered(engine)
    assert screen.generated()[-1].done and screen.text() == reference("the ca")


def test_the_tail_comes_when_the_prompt_is_still(make, screen):
    engine = make(tail_delay=0.0)
    engine.weights(weights())
    engine.settings(SETTINGS)
    engine.prompt("the ")
    answered(engine)
    before = len(screen.generated())
    engine.prompt("the d", typing=True)
    answered(engine)
    first, burst, rest = screen.generated()[before:]
    assert len(first.tokens) == 2 and len(burst.tokens) == FIRST_BURST - 1
    assert rest.done and len(rest.tokens) == SETTINGS.length - FIRST_BURST and rest.keep == 5 + FIRST_BURST
    assert screen.text() == reference("the d")


def test_a_key_on_a_long_prompt_sends_only_what_is_new(make, screen, monkeypatch):
    calls = []
    common_prefix = generation._common_prefix
    monkeypatch.setattr(generation, "_common_prefix", lambda a, b: calls.append(1) or common_prefix(a, b))
    prompt = "the cat sat on the mat. " * 100
    engine = make()
    engine.weights(weights())
    engine.settings(SETTINGS)
    engine.prompt(prompt)
    answered(engine)
    before, calls[:] = len(screen.generated()), []
    engine.prompt(prompt + "a", typing=True)
    answered(engine)
    new = screen.generated()[before:]
    assert len(calls) == 1  # the common prefix is looked for once per request
    assert new[0].keep == len(prompt) and sum(len(m.tokens) for m in new) == 1 + SETTINGS.length
    assert screen.text() == reference(prompt + "a")


def test_settings_and_again_keep_the_prompt_on_screen(make, screen):
    engine = make()
    engine.weights(weights())
    engine.settings(SETTINGS)
    engine.prompt("the cat")
    answered(engine)
    tokens = list(screen.tokens)
    before = len(screen.generated())
    engine.again()
    answered(engine)
    assert all(m.keep >= 7 for m in screen.generated()[before:])  # the prompt's tokens were not sent again
    assert screen.tokens[:7] == tokens[:7] and screen.text() == reference("the cat")  # same settings, same text
    hotter = SampleConfig(temperature=1.5, seed=7, length=40)
    engine.settings(hotter)
    answered(engine)
    assert screen.text() == reference("the cat", hotter) and len(screen.tokens) == 47


@pytest.fixture
def long_prompt(monkeypatch):
    """A prompt long enough to be scored a chunk at a time, with progress after every chunk."""
    monkeypatch.setattr(engine_module, "LONG_PROMPT", 100)
    monkeypatch.setattr(engine_module, "PRIME_CHUNK", 16)
    monkeypatch.setattr(engine_module, "PROGRESS_EVERY", 0.0)
    return "the cat sat on the mat. the dog sat on the log.\n" * 10


def test_a_long_prompt_fills_in_with_progress(make, screen, long_prompt):
    engine = make()
    engine.weights(weights())
    engine.settings(SETTINGS)
    answered(engine)  # an empty prompt's continuation, in these weights' colours
    before = len(screen.generated())
    engine.prompt(long_prompt)
    answered(engine)
    done = [m.done for m in screen.messages if isinstance(m, Priming)]
    assert done == sorted(done) and done[-1] == len(long_prompt) and len(done) > 10
    partial = [m for m in screen.generated()[before:] if m.n_prompt < len(long_prompt)]
    assert len(partial) > 10 and all(m.keep + len(m.tokens) == m.n_prompt for m in partial)  # only prompt tokens
    assert screen.text() == reference(long_prompt)


def test_new_weights_wait_for_a_long_scoring_to_end(make, screen, long_prompt):
    reached, release = threading.Event(), threading.Event()
    screen.gate = (Priming, reached, release)
    engine = make()
    engine.weights(weights())
    engine.settings(SETTINGS)
    engine.prompt(long_prompt)
    assert reached.wait(30)  # the engine is holding at the scoring's first progress report
    engine.weights(weights(seed=1, step=400))
    release.set()
    answered(engine)
    taken = [i for i, m in enumerate(screen.messages) if isinstance(m, WeightsTaken)]
    first = screen.messages[taken[0] : taken[1]]
    done = [m.done for m in first if isinstance(m, Priming)]
    assert done == sorted(done) and done[-1] == len(long_prompt)  # scored to its end, never started again
    assert any(isinstance(m, Generated) and m.n_prompt == len(long_prompt) for m in first)  # and shown
    rescored = screen.messages[taken[1] :]
    assert screen.messages[taken[1]].weights.step == 400
    assert all(m.n_prompt == len(long_prompt) and m.keep in (0, len(long_prompt) + 1)
               for m in rescored if isinstance(m, Generated))  # fmt: skip
    assert screen.text() == reference(long_prompt, seed=1)


def test_a_newer_prompt_cancels_a_scoring(make, screen, long_prompt):
    reached, release = threading.Event(), threading.Event()
    screen.gate = (Priming, reached, release)
    engine = make()
    engine.weights(weights())
    engine.settings(SETTINGS)
    engine.prompt(long_prompt)
    assert reached.wait(30)
    engine.prompt("the owl", typing=True)
    release.set()
    answered(engine)
    progress = [(m.done, m.total) for m in screen.messages if isinstance(m, Priming)]
    assert progress[-1] == (0, 0) and all(done < len(long_prompt) for done, _ in progress[:-1])  # cancelled
    assert screen.text() == reference("the owl")


def test_a_failure_on_the_engines_thread_reaches_the_playground(make, screen):
    engine = make()
    broken = weights()
    engine.weights(Weights(1, 1, broken.config, VOCAB, {}))  # no tensors at all
    screen.wait(lambda: any(isinstance(m, EngineFailed) for m in screen.messages), "the failure")
    failure = screen.messages[-1]
    assert isinstance(failure, EngineFailed) and isinstance(failure.error, Exception)  # the broken weights' error


def test_closing_stops_the_thread(make, screen):
    engine = make(tail_delay=3600)
    engine.weights(weights())
    engine.settings(SETTINGS)
    engine.prompt("the", typing=True)
    screen.wait(lambda: len(screen.tokens) == 3 + FIRST_BURST, "the burst")
    engine.close()
    assert not any(t.name == "generation-engine" for t in threading.enumerate())


def test_a_keystroke_can_wait_for_its_first_character(make, screen):
    engine = make(tail_delay=3600)
    assert engine.first(30)  # nothing asked yet: nothing to wait for
    engine.settings(SETTINGS)
    engine.prompt("the")
    assert engine.first(30)  # no weights yet: no answer to wait for
    engine.weights(weights())
    assert engine.first(30)
    with screen.changed:  # the first message was posted before `first` returned
        assert screen.text().startswith("the") and len(screen.tokens) > 3
    engine.prompt("the c", typing=True)
    assert engine.first(30)
    with screen.changed:
        assert screen.text().startswith("the c") and len(screen.tokens) > 5
