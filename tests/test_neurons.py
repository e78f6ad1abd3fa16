"""The neuron analysis: text features, the ranking of cells, ablation, and a planted feature found."""

import io
import sysconfig
import tokenize
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_tui import neurons
from rnn_tui.config import ModelConfig
from rnn_tui.errors import UserError
from rnn_tui.inference import Stepper
from rnn_tui.neurons import FEATURES, Analysis, Trace, text_features
from rnn_tui.text.vocab import Vocab
from rnn_tui.train.model import CharRNN
from tests.fakes import numpy_weights

# Text made of the characters the features care about, and a few others.
texts = st.text(alphabet=st.sampled_from(list("ab_ 1\t\n\n\"'#()[]{}\\:XY.")), max_size=300)


# --------------------------------------------------------------------------- features, against plain loops


@given(texts)
def test_bracket_depth_counts_open_brackets_and_never_goes_below_zero(text):
    depth, want = 0, []
    for c in text:
        depth = depth + 1 if c in "([{" else max(0, depth - 1) if c in ")]}" else depth
        want.append(depth)
    assert neurons.bracket_depth(text).tolist() == want


@given(texts)
def test_line_position_features(text):
    start, end = neurons.line_start(text), neurons.line_end(text)
    for i, c in enumerate(text):
        line_begins = text.rfind("\n", 0, i + 1) + 1
        assert start[i] == (0 if c == "\n" else i + 1 - line_begins)
        nxt = text.find("\n", i + 1)
        assert end[i] == (len(text) if nxt < 0 else nxt) - i - 1


@given(texts)
def test_word_position(text):
    run, want = 0, []
    for c in text:
        run = run + 1 if c.isalnum() or c == "_" else 0
        want.append(run)
    assert neurons.word_position(text).tolist() == want


@given(texts)
def test_indentation_is_the_leading_whitespace_read_so_far(text):
    values = neurons.indentation(text)
    for i, c in enumerate(text):
        line = text[text.rfind("\n", 0, i) + 1 : i + 1]  # this line, up to and including this character
        lead = line[: len(line) - len(line.lstrip(" \t"))]
        assert values[i] == (0 if c == "\n" else len(lead) + 3 * lead.count("\t"))


@given(texts)
def test_quotes_mark_only_spans_between_a_pair(text):
    inside = neurons.quotes(text)
    assert set(inside.tolist()) <= {0.0, 1.0}
    for p in np.flatnonzero(inside):
        # Some quote opens at or before it and the same quote closes after it, within a line (') or paragraph (").
        assert any(
            text[i] == text[j] and ("\n" if text[i] == "'" else "\n\n") not in text[i : j + 1]
            for i in range(p + 1)
            if text[i] in "\"'"
            for j in range(p + 1, len(text))
        ), p
        assert p == 0 or inside[p - 1] or text[p] in "\"'"  # a marked run starts on a quote


def test_quotes_examples():
    def marked(text):
        return "".join(c if v else "." for c, v in zip(text, neurons.quotes(text), strict=True))

    assert marked('He said "go on" and left.') == '........"go on...........'
    assert marked("don't 'stop' me") == "......'stop...."  # an apostrophe is not a quote
    assert marked('one " alone') == "..........."  # a quote with no partner marks nothing
    assert marked('"a\nb"') == '"a\nb.'  # double quotes may span lines...
    assert marked('"a\n\nb"') == "......"  # ...but not paragraphs
    assert marked("'a\nb'") == "....."  # single quotes stay on their line


def test_comment_and_string_match_pythons_tokenizer():
    """On real Python source, the feature marks exactly the tokenizer's comments and strings."""
    path = Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py"
    text = path.read_text(encoding="utf-8")
    offsets = np.cumsum([0] + [len(line) for line in text.splitlines(keepends=True)])
    want = np.zeros(len(text), np.float32)
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        start = offsets[tok.start[0] - 1] + tok.start[1]
        end = offsets[tok.end[0] - 1] + tok.end[1]
        if tok.type == tokenize.COMMENT:
            want[start:end] = 1
        elif tok.type == tokenize.STRING:
            quote = min(i for i in (tok.string.find('"'), tok.string.find("'")) if i >= 0)  # after a prefix (r, f)
            delim = 3 if tok.string[quote : quote + 3] in ('"""', "'''") else 1
            want[start + quote : end - delim] = 1
    got = neurons.code(text)
    assert want.sum() > 1000
    assert np.array_equal(got, want), np.flatnonzero(got != want)[:10]


def test_speaker_lines():
    text = "ROMEO:\nBut soft!\nFirst Citizen:\nWe are accounted poor.\n    else:\n"
    marked = "".join(c if v else "." for c, v in zip(text, neurons.speaker(text), strict=True))
    assert marked == "ROMEO:" + "." * len("\nBut soft!\n") + "First Citizen:" + "." * len(text.split(":", 2)[2])


@given(texts)
def test_every_feature_has_one_value_per_character(text):
    features = text_features(text)
    assert set(features) == {f.name for f in FEATURES}
    for values in features.values():
        assert values.shape == (len(text),) and values.dtype == np.float32 and np.all(values >= 0)


# --------------------------------------------------------------------------- running the model

VOCAB = Vocab("\n abcdefgh()\"'.:ROMEO")
TEXT = ('ROMEO:\nabc (def "gh") a\'b.\n    (hh (ab) "c") ' * 40)[:1500]


def model(cell: str = "lstm", layers: int = 2) -> tuple[ModelConfig, dict]:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=len(VOCAB), cell=cell, hidden=12, layers=layers, embedding=6)
    return cfg, numpy_weights(CharRNN(cfg))


def stepper(cell: str = "lstm", layers: int = 2) -> Stepper:
    return Stepper(*model(cell, layers))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_columns_run_like_separate_sequences(cell):
    s = stepper(cell)
    ids = VOCAB.encode(TEXT[:90]).astype(np.int64)
    logits, states = s.run(ids, s.initial_state())
    cols = np.stack([ids[:45], ids[45:]], 1)
    first = s.run(ids[45:], s.initial_state())
    c_logits, c_states = s.run_columns(cols, s.initial_columns(2))
    np.testing.assert_allclose(c_states[:, 0], states[:45], atol=1e-5)
    np.testing.assert_allclose(c_logits[:, 0], logits[:45], atol=1e-5)
    np.testing.assert_allclose(c_states[:, 1], first[1], atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_an_ablated_unit_stays_zero_and_only_changes_what_follows_it(cell):
    s = stepper(cell)
    ids = VOCAB.encode(TEXT[:60]).astype(np.int64)
    _, intact = s.run(ids, s.initial_state())
    _, ablated = s.run(ids, s.initial_state(), zero=(1, 3))
    assert not ablated[:, 1, s.unit_rows(3)].any()
    np.testing.assert_array_equal(ablated[:, 0], intact[:, 0])  # the layer below does not see it
    assert not np.allclose(ablated[:, 1], intact[:, 1])
    rows, cols = np.repeat(s.unit_rows(3), 2), np.tile([0, 1], len(s.unit_rows(3)))
    _, col_states = s.run_columns(np.stack([ids, ids], 1), s.initial_columns(2), {1: (rows, cols)})
    np.testing.assert_allclose(col_states[:, 0], ablated, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 3000), burn_in=st.integers(1, 200), streams=st.integers(1, 40))
def test_the_streams_count_every_character_once(n, burn_in, streams):
    a = Analysis(stepper(layers=1), VOCAB, ("ab (c) " * 500)[:n], streams=streams, burn_in=burn_in)
    counted = np.sort(a.pos[a.counted] - 1)
    assert np.array_equal(counted, np.arange(n))


def test_correlations_match_numpy_on_the_exact_activations():
    s = stepper()
    a = Analysis(s, VOCAB, TEXT, streams=1)
    for _ in a.correlate():
        pass
    trace = Trace(s, VOCAB, TEXT)
    for _ in trace.run():
        pass
    acts = trace.values.reshape(len(TEXT), -1).astype(np.float64)
    ranking = a.ranking(top=3)
    for k, feature in enumerate(FEATURES):
        f = a.features[feature.name]
        if f.std() == 0:
            assert ranking.top[feature.name] == []
            continue
        want = np.array([np.corrcoef(acts[:, i], f)[0, 1] for i in range(acts.shape[1])])
        np.testing.assert_allclose(ranking.r[k].ravel(), want, atol=2e-3)  # the trace is float16
        best = ranking.top[feature.name][0]
        assert abs(best.r) == pytest.approx(np.abs(want).max(), abs=2e-3)


def test_the_ranking_table_has_each_feature_in_order_and_says_which_are_absent():
    r = np.zeros((len(FEATURES), 1, 4))
    top = {f.name: [] for f in FEATURES}
    top["quotes"] = [neurons.CellScore(0, 2, 0.9), neurons.CellScore(0, 1, -0.5), neurons.CellScore(0, 3, 0.1)]
    rows = neurons.Ranking(100, top, r).rows(per_feature=2)
    assert [(row.feature.name, row.cell, row.first) for row in rows[:3]] == [
        ("quotes", top["quotes"][0], True),
        ("quotes", top["quotes"][1], False),
        ("brackets", None, True),  # absent from the text: one row that says so
    ]
    assert [row.feature for row in rows if row.first] == list(FEATURES)
    assert len(neurons.Ranking(100, top, r).rows()) == len(FEATURES) + 2  # every cell without a limit


def test_streams_side_by_side_give_the_same_ranking_as_one():
    s = stepper()
    text = TEXT * 4
    one, many = Analysis(s, VOCAB, text, streams=1), Analysis(s, VOCAB, text, streams=8, burn_in=64)
    for a in (one, many):
        for _ in a.correlate():
            pass
    assert many.streams == 8 and many.steps < one.steps / 5
    np.testing.assert_allclose(many.ranking().r, one.ranking().r, atol=0.02)
    np.testing.assert_allclose(many.base_bits, one.base_bits, atol=0.05)


def test_ablation_effect_is_the_loss_rise_of_the_zeroed_model():
    s = stepper()
    a = Analysis(s, VOCAB, TEXT, streams=1)
    progress = list(a.ablate([(1, 3), (0, 5)]))  # the intact model comes along, as none ran yet
    assert progress[-1] == 1.0 and progress == sorted(progress)
    ids = VOCAB.encode("\n" + TEXT).astype(np.int64)

    def bits(zero):
        logits, _ = s.run(ids[:-1], s.initial_state(), zero=zero)
        logits[:, Vocab.UNK] = -np.inf
        top = logits.max(1, keepdims=True)
        logp = logits - top - np.log(np.exp(logits - top).sum(1, keepdims=True))
        return -logp[np.arange(len(TEXT)), ids[1:]] / np.log(2)

    rise = bits((1, 3)) - bits(None)
    inside = a.features["brackets"] > 0
    e = a.effect((1, 3), "brackets")
    assert e.chars_holds == inside.sum() and e.chars_elsewhere == (~inside).sum()
    assert e.rise_holds == pytest.approx(rise[inside].mean(), abs=1e-4)
    assert e.rise_elsewhere == pytest.approx(rise[~inside].mean(), abs=1e-4)
    assert e.loss_holds == pytest.approx(bits(None)[inside].mean(), abs=1e-4)
    with pytest.raises(RuntimeError):
        a.effect((1, 4), "brackets")


def test_an_analysis_can_stop_between_chunks():
    a = Analysis(stepper(), VOCAB, TEXT, streams=1, chunk=100)
    passes = a.correlate()
    assert 0 < next(passes) < 0.1  # the first chunk of many
    passes.close()  # a cancelled worker stops iterating
    with pytest.raises(RuntimeError):
        a.ranking()


def test_an_empty_text_is_a_user_error():
    with pytest.raises(UserError):
        Analysis(stepper(), VOCAB, "")


def test_a_trace_is_what_the_playground_computes():
    from rnn_tui.generation import Generator

    cfg, weights = model()
    s = Stepper(cfg, weights)
    trace = Trace(s, VOCAB, TEXT[:300], chunk=64)
    steps = list(trace.run())
    assert len(steps) == 5 and steps[-1] == 1.0
    gen = Generator(cfg, VOCAB, weights)
    gen.score(TEXT[:300])
    state = gen._states[300]  # the prompt cache keeps the state after the whole text
    np.testing.assert_allclose(trace.values[-1], s.kernel.shown(np.stack(state), 12), atol=1e-3)


# --------------------------------------------------------------------------- a planted feature is found


def quoted_text(n: int, rng: np.random.Generator) -> str:
    """Words in lower case outside quotes and in upper case inside; numbers and spaces in both.

    Whether a quote is open is the only structure, and after a number only memory tells.
    """
    out, inside, size = [], False, 0
    while size < n:
        k = int(rng.integers(1, 6))
        letters = "0123456789" if rng.random() < 0.3 else "ABCDE" if inside else "abcde"
        word = "".join(rng.choice(list(letters), k))
        mark = '"' if rng.random() < 0.15 else " "
        inside ^= mark == '"'
        out += [word, mark]
        size += k + 1
    return "".join(out)


def test_a_planted_quote_cell_is_ranked_first():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    text = quoted_text(20_000, rng)
    vocab = Vocab(text)
    cfg = ModelConfig(vocab_size=len(vocab), hidden=16, layers=1, embedding=8, dropout=0.0)
    model = CharRNN(cfg)
    held_out = quoted_text(5000, np.random.default_rng(1))

    def best_quote_cell():
        a = Analysis(Stepper(cfg, numpy_weights(model)), vocab, held_out)
        for _ in a.correlate():
            pass
        return a.ranking(top=1).top["quotes"][0]

    assert abs(best_quote_cell().r) < 0.8  # an untrained model has no such cell
    ids = torch.from_numpy(vocab.encode(text).astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        starts = torch.randint(0, len(ids) - 49, (16,))
        window = torch.stack([ids[s : s + 49] for s in starts])
        logits, _ = model(window[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), window[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert abs(best_quote_cell().r) >= 0.8
