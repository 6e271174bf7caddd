"""Knock it out: each part switched off is the part meant, and the export's table is the live knock-out's."""

import copy
from pathlib import Path

import pytest
import torch
from helpers import SMALL_CONFIGS, randomised
from torch.nn import functional as F

from tinyllm.checkpoint import load_model
from tinyllm.export import read_chapter
from tinyllm.knockout import Off, knock_out, knockout_table, switched_off
from tinyllm.runfolder import RunFolder


def silenced(model, off: Off):
    """The same parts switched off another way: by zeroing weights of a copy.
    A head whose values are 0 outputs 0; a feed-forward layer whose last
    Linear is 0 adds 0; a zero position table is a zero position embedding."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        for layer, head in off.heads:
            model.blocks[layer].attn.heads[head].value.weight.zero_()
        for layer in off.ffwd:
            last = model.blocks[layer].ffwd.net[2]
            last.weight.zero_()
            last.bias.zero_()
        if off.positions:
            model.position_embedding.weight.zero_()
    return model


@pytest.mark.parametrize("config", SMALL_CONFIGS[1:], ids=["3 layers x 3 heads", "2 layers x 8 heads"])
@pytest.mark.parametrize("fast", [True, False], ids=["fused", "readable"])
def test_each_part_switched_off_is_the_part_meant(config, fast):
    model = randomised(config, seed=1).eval().set_fast(fast)
    idx = torch.randint(config.vocab_size, (2, config.block_size), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        everything, _ = model(idx)
    last = config.n_head - 1
    cases = [
        Off(heads=((0, 1),)),
        Off(heads=((config.n_layer - 1, last), (1, 0))),
        Off(ffwd=(1,)),
        Off(positions=True),
        Off(heads=((0, 0),), ffwd=(0,), positions=True),
    ]
    for off in cases:
        with torch.no_grad(), switched_off(model, off):
            knocked, _ = model(idx)
        expected, _ = silenced(model, off)(idx)
        assert not torch.allclose(knocked, everything, atol=1e-4), off  # it changed something
        torch.testing.assert_close(knocked, expected, atol=1e-5, rtol=1e-5, msg=str(off))
    with torch.no_grad():
        after, _ = model(idx)
    torch.testing.assert_close(after, everything, atol=0, rtol=0)  # the hooks are gone


def slice_loss(model, vocab, text: str) -> float:
    """The loss the export describes, by the model's own forward pass and
    nothing of knockout.py: consecutive windows of block_size (a last partial
    one dropped), each position predicting the next character of the slice."""
    T = model.config.block_size
    ids = vocab.encode(text)
    n = len(ids) // T * T
    with torch.no_grad():
        logits, _ = model(torch.tensor(ids[:n]).view(-1, T))
    targets = torch.tensor(ids[1 : n + 1])  # one short when the slice ends with a window
    losses = F.cross_entropy(logits.reshape(n, -1)[: len(targets)], targets, reduction="none")
    return float(losses.mean())


@pytest.mark.parametrize("run", ["tiny_run", "smallest_run"])
def test_the_exported_table_is_the_live_knock_out(run, request):
    run_dir = request.getfixturevalue(run)
    table = read_chapter(run_dir, "knockout")
    model, vocab, _ = load_model(RunFolder(run_dir).model)
    text = RunFolder(run_dir).read_object(RunFolder(run_dir).corpus)["val_slice"]
    cfg = model.config
    assert table["slice_chars"] == len(text) and len(text) >= cfg.block_size
    assert len(table["heads"]) == cfg.n_layer and all(len(row) == cfg.n_head for row in table["heads"])
    assert len(table["ffwd"]) == cfg.n_layer

    def close(exported, off):
        assert exported == pytest.approx(slice_loss(silenced(model, off), vocab, text), rel=1e-3), off

    close(table["base_loss"], Off())
    close(table["positions"], Off(positions=True))
    for layer in range(cfg.n_layer):
        close(table["ffwd"][layer], Off(ffwd=(layer,)))
        for head in range(cfg.n_head):
            close(table["heads"][layer][head], Off(heads=((layer, head),)))
    # the page's function and the table's agree on a text of one window
    window = text[: cfg.block_size]
    live = knock_out(model, vocab, window, 0, Off(heads=((0, 0),)))
    one = knockout_table(model, vocab, window)
    assert live["before"]["loss"] == pytest.approx(one["base_loss"], rel=1e-6)
    assert live["after"]["loss"] == pytest.approx(one["heads"][0][0], rel=1e-6)


def test_the_live_knock_out_shows_the_top_five_before_and_after(tiny_run):
    model, vocab, _ = load_model(RunFolder(tiny_run).model)
    text = "ROMEO:\nJuliet s"  # within the tiny run's block_size
    pos = 10
    result = knock_out(model, vocab, text, pos, Off(ffwd=(0,), positions=True))
    ids = torch.tensor([vocab.encode(text)])
    for when, off in (("before", Off()), ("after", Off(ffwd=(0,), positions=True))):
        with torch.no_grad():
            logits, _ = silenced(model, off)(ids)
        probs = F.softmax(logits[0, pos], dim=-1)
        top = result[when]["top"]
        assert [i for i, _ in top] == probs.topk(5).indices.tolist()
        assert [p for _, p in top] == pytest.approx(probs.topk(5).values.tolist(), abs=1e-6)
        assert result[when]["loss"] == pytest.approx(float(F.cross_entropy(logits[0, :-1], ids[0, 1:])), rel=1e-5)
    assert result["after"]["loss"] != pytest.approx(result["before"]["loss"])


def test_the_whole_kid_knocks_out_and_attention_prices_each_head(tiny_run, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("PEEK_KID_DIR", str(tiny_run))
    monkeypatch.setenv("PEEK_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "streamlit_app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/whole_kid.py").run()
    assert not at.exception

    def losses():  # the knock-out panel's two metrics (the page has others: the contrast's probabilities)
        return [m.value for m in at.metric if m.label == "Loss on this text"]

    before = losses()
    assert len(before) == 2 and before[0] == before[1]  # nothing switched off yet
    at.multiselect(key="knock_ffwd").select(0).run()
    assert not at.exception
    after = losses()
    assert after[0] == before[0] and after[1] != after[0]
    at.switch_page("pages/attention.py").run()
    assert not at.exception
    table = read_chapter(tiny_run, "knockout")
    costs = sorted(
        (
            (loss - table["base_loss"], f"L{b}H{h}")
            for b, row in enumerate(table["heads"])
            for h, loss in enumerate(row)
        ),
        reverse=True,
    )
    words = " ".join(m.value for m in at.markdown)
    assert f"**{costs[0][1]}** changes the loss most: by {costs[0][0]:+.3f}" in words
    frame = at.dataframe[-1].value
    assert list(frame["head"]) == [name for _, name in costs]


def test_one_chapter_can_be_written_alone(tiny_run):
    """How the committed kid got its knockout.json without its other files being rewritten."""
    from tinyllm.export import export_run

    others = {p.name: p.stat().st_mtime_ns for p in (tiny_run / "export").glob("*.json") if p.stem != "knockout"}
    before = read_chapter(tiny_run, "knockout")
    assert export_run(tiny_run, names=("knockout",)) == [RunFolder(tiny_run).chapter("knockout")]
    assert read_chapter(tiny_run, "knockout") == before
    assert {
        p.name: p.stat().st_mtime_ns for p in (tiny_run / "export").glob("*.json") if p.stem != "knockout"
    } == others
