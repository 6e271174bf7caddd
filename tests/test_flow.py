"""The whole kid's trip, re-derived by a second path: the fused model with
forward hooks of this file's own, instead of the trace flow.py reads."""

import numpy as np
import pytest
import torch
from helpers import SMALL_CONFIGS, randomised

from tinyllm.checkpoint import load_model
from tinyllm.data import Vocab
from tinyllm.export import read_chapter
from tinyllm.flow import (
    colour_limit,
    contrast,
    contrast_pair,
    describe_stage,
    full_flow,
    head_looks,
    logit_attribution,
    neuron_contexts,
    neuron_votes,
    parts,
    stage_strips,
    stage_vector,
    stages,
    stream_overview,
)


def vocab_for(config) -> Vocab:
    chars = "".join(chr(ord("a") + i) for i in range(config.vocab_size - 1)) + "\n"
    return Vocab(chars)


def text_for(vocab, length, seed=0) -> str:
    rng = np.random.default_rng(seed)
    return "".join(vocab.chars[i] for i in rng.integers(0, len(vocab.chars), length))


@torch.no_grad()
def hooked_pass(model, vocab, text) -> dict:
    """Every stage of one forward pass of the fused model, caught by hooks."""
    model.set_fast(True).eval()
    caught = {}
    handles = []

    def keep(name):
        def hook(module, inputs, output):
            caught[name] = output[0].numpy()

        return hook

    for b, block in enumerate(model.blocks):
        for name, module in [
            ("ln1", block.ln1),
            ("attn", block.attn),
            ("ln2", block.ln2),
            ("hidden", block.ffwd.net[1]),
            ("ffwd", block.ffwd),
            ("after", block),
        ]:
            handles.append(module.register_forward_hook(keep((b, name))))
        # what the blocks read, and the heads side by side: what the projection reads
        handles.append(
            block.register_forward_pre_hook(lambda m, args, b=b: caught.update({(b, "before"): args[0][0].numpy()}))
        )
        handles.append(
            block.attn.proj.register_forward_pre_hook(
                lambda m, args, b=b: caught.update({(b, "heads"): args[0][0].numpy()})
            )
        )
    handles.append(model.ln_f.register_forward_hook(keep("ln_f")))
    try:
        logits, _ = model(torch.tensor([vocab.encode(text)]))
    finally:
        for handle in handles:
            handle.remove()
    caught["logits"] = logits[0].numpy()
    caught["probs"] = torch.softmax(logits[0], dim=-1).numpy()
    return caught


@pytest.mark.parametrize("config", SMALL_CONFIGS, ids=lambda c: f"L{c.n_layer}H{c.n_head}")
def test_every_stage_is_the_models_own(config):
    model = randomised(config, seed=1)
    vocab = vocab_for(config)
    text = text_for(vocab, config.block_size)
    flow = full_flow(model, vocab, text)
    caught = hooked_pass(model, vocab, text)
    with torch.no_grad():
        readable = model.set_fast(False)(torch.tensor([vocab.encode(text)]))[0][0]  # the readable path's logits
    pos = config.block_size // 2
    for stage in stages(config.n_layer):
        mine = stage_vector(flow, stage, pos)
        b, key = stage["block"], stage["key"]
        if key == "embedding":
            other = caught[(0, "before")][pos]
        elif key == "heads":
            other = caught[(b, "heads")][pos]
        elif b is None:
            other = caught[key][pos]
        else:
            other = caught[(b, key)][pos]
        np.testing.assert_allclose(mine, other, atol=1e-5, err_msg=stage["label"])
    for b in range(config.n_layer):
        np.testing.assert_allclose(flow["blocks"][b]["after"], caught[(b, "after")], atol=1e-5)
    np.testing.assert_allclose(flow["logits"], readable.numpy(), atol=1e-5)


@pytest.mark.parametrize("config", SMALL_CONFIGS, ids=lambda c: f"L{c.n_layer}H{c.n_head}")
def test_the_parts_add_up_to_the_final_stream(config):
    model = randomised(config, seed=2)
    vocab = vocab_for(config)
    text = text_for(vocab, config.block_size, seed=3)
    flow = full_flow(model, vocab, text)
    final = hooked_pass(model, vocab, text)[(config.n_layer - 1, "after")]
    names = [name for name, _, _ in parts(flow)]
    # every head, every block's bias and feed-forward layer, both embeddings: once each
    assert len(names) == len(set(names)) == 2 + config.n_layer * (config.n_head + 2)
    np.testing.assert_allclose(sum(v for _, _, v in parts(flow)), final, atol=1e-4)


@pytest.mark.parametrize("config", SMALL_CONFIGS, ids=lambda c: f"L{c.n_layer}H{c.n_head}")
def test_the_pushes_sum_to_the_logit(config):
    model = randomised(config, seed=4)
    vocab = vocab_for(config)
    text = text_for(vocab, config.block_size, seed=5)
    flow = full_flow(model, vocab, text)
    logits = hooked_pass(model, vocab, text)["logits"]
    for pos in (0, config.block_size - 1):
        for char_id in (int(logits[pos].argmax()), int(logits[pos].argmin())):
            why = logit_attribution(model, flow, pos, char_id)
            assert sum(push for _, push in why["pushes"]) + why["constant"] == pytest.approx(
                float(logits[pos, char_id]), abs=1e-4
            )


def test_one_character_and_more_than_a_window(tiny_run):
    model, vocab, _ = load_model(tiny_run / "model.pt")
    T = model.config.block_size
    one = full_flow(model, vocab, "R")
    assert one["text"] == "R" and one["final"].shape == (1, model.config.n_embd)
    view = describe_stage(one, stages(model.config.n_layer)[5], 0)  # block 0's hidden layer
    assert view["of"] == 4 * model.config.n_embd and 0 <= view["fired"] <= view["of"]
    long_text = "ROMEO:\nJuliet sees the moon.\n" * 4
    assert full_flow(model, vocab, long_text)["text"] == long_text[-T:]


@torch.no_grad()
def test_the_exported_neuron_contexts_are_the_strongest(tiny_run):
    """The export's contexts, re-found by hooking the fused model's ReLUs over
    the same validation slice, window by window."""
    model, vocab, _ = load_model(tiny_run / "model.pt")
    exported = read_chapter(tiny_run, "flow")
    text, T = exported["slice"], exported["window"]
    assert text and T == model.config.block_size
    assert exported["neurons"] == neuron_contexts(model, vocab, text)  # live = exported
    usable = len(text) // T * T
    windows = torch.tensor(vocab.encode(text[:usable])).view(-1, T)
    for b, block in enumerate(model.blocks):
        caught = []
        handle = block.ffwd.net[1].register_forward_hook(lambda m, i, out, caught=caught: caught.append(out))
        model.set_fast(True)(windows)
        handle.remove()
        fired = caught[0].reshape(usable, -1).numpy()
        for n in (0, fired.shape[1] // 2, fired.shape[1] - 1):
            offsets = [o for o, _ in exported["neurons"][b][n]]
            values = [a for _, a in exported["neurons"][b][n]]
            np.testing.assert_allclose(values, fired[offsets, n], rtol=1e-3, atol=1e-6)
            assert values == sorted(values, reverse=True)
            assert values[-1] >= np.sort(fired[:, n])[-len(values)] - 1e-3  # none stronger left out


# --------------------------------------------------------------------------
# What the chapter shows at each stage, and why: re-derived from the model


@pytest.mark.parametrize("config", SMALL_CONFIGS, ids=lambda c: f"L{c.n_layer}H{c.n_head}")
def test_the_contrast_pushes_sum_to_the_logit_difference(config):
    """The pushes on logit(a) - logit(b) sum to that difference (from the
    hooked fused model) minus the constant terms, computed here from the
    weights; each group is the sum of its parts."""
    model = randomised(config, seed=6)
    vocab = vocab_for(config)
    text = text_for(vocab, config.block_size, seed=7)
    flow = full_flow(model, vocab, text)
    logits = hooked_pass(model, vocab, text)["logits"]
    W, bias = model.lm_head.weight.detach().numpy(), model.lm_head.bias.detach().numpy()
    beta = model.ln_f.bias.detach().numpy()
    for pos in (0, config.block_size - 1):
        order = np.argsort(-logits[pos])
        for a, b in ((order[0], order[-1]), (order[0], order[1]), (order[-1], order[0])):
            c = contrast(model, flow, pos, int(a), int(b))
            constant = (W[a] - W[b]) @ beta + bias[a] - bias[b]
            pushes = sum(p for _, p in c["pushes"])
            assert pushes == pytest.approx(float(logits[pos, a] - logits[pos, b] - constant), abs=1e-4)
            assert abs(pushes) > 1e-3  # not trivially zero
            assert [part for g in c["groups"] for part in g["parts"]] == c["pushes"]
            for group in c["groups"]:
                assert group["push"] == pytest.approx(sum(p for _, p in group["parts"]))
            assert len(c["groups"]) == 1 + 2 * config.n_layer  # the embeddings, each block's attention and ffwd


def test_the_contrast_is_with_what_came_next_or_the_runner_up():
    config = SMALL_CONFIGS[0]
    model = randomised(config, seed=8)
    vocab = vocab_for(config)
    flow = full_flow(model, vocab, text_for(vocab, config.block_size, seed=9))
    order = np.argsort(-flow["logits"][3])
    assert contrast_pair(flow, 3, int(order[4])) == (order[0], order[4], "next")
    assert contrast_pair(flow, 3, int(order[0])) == (order[0], order[1], "runner-up")
    assert contrast_pair(flow, 3, None) == (order[0], order[1], "runner-up")


@pytest.mark.parametrize("config", SMALL_CONFIGS[:2], ids=lambda c: f"L{c.n_layer}H{c.n_head}")
def test_a_neurons_votes_are_its_column_through_the_gain_and_lm_head(config):
    model = randomised(config, seed=10)
    with torch.no_grad():
        for block in range(config.n_layer):
            for n in (0, 4 * config.n_embd - 1):
                column = model.blocks[block].ffwd.net[2].weight[:, n]  # what one unit of the neuron adds
                by_module = model.lm_head(model.ln_f.weight * column) - model.lm_head.bias
                votes = neuron_votes(model, block, n)
                np.testing.assert_allclose(votes, by_module.numpy(), rtol=1e-5, atol=1e-6)
                assert np.abs(votes).max() > 1e-3


@pytest.mark.parametrize("config", SMALL_CONFIGS, ids=lambda c: f"L{c.n_layer}H{c.n_head}")
def test_every_stage_shows_before_change_after_on_one_scale(config):
    """The strips: an addition's before + added = after (the hooked model's
    stream), a LayerNorm's normalised vector (mean 0, spread 1) times the
    gain plus the bias = its output; every strip of every stage within
    the one colour scale, which one of them reaches."""
    model = randomised(config, seed=11)
    vocab = vocab_for(config)
    text = text_for(vocab, config.block_size, seed=12)
    flow = full_flow(model, vocab, text)
    caught = hooked_pass(model, vocab, text)
    for pos in (0, config.block_size - 1):
        limit = colour_limit(flow, pos)
        largest = 0.0
        for stage in stages(config.n_layer):
            strips = dict(stage_strips(flow, stage, pos))
            for vector in strips.values():
                assert np.abs(vector).max() <= limit
                largest = max(largest, float(np.abs(vector).max()))
            b, key = stage["block"], stage["key"]
            if stage["kind"] == "add":
                after = caught[(b, "after")] if key == "ffwd" else caught[(b, "after")] - caught[(b, "ffwd")]
                np.testing.assert_allclose(strips["stream after"], after[pos], atol=1e-5)
            if stage["kind"] == "norm":
                module = model.ln_f if b is None else getattr(model.blocks[b], key)
                normalised = strips["normalised"]
                assert normalised.mean() == pytest.approx(0, abs=1e-5) and normalised.std() == pytest.approx(
                    1, abs=1e-3
                )
                out = normalised * module.weight.detach().numpy() + module.bias.detach().numpy()
                np.testing.assert_allclose(out, strips["× gain + bias"], atol=1e-5)
        assert largest == limit


@torch.no_grad()
def test_where_each_head_looked_is_its_largest_weights():
    """The heads' looks, against weights computed here from each head's own
    query and key on the hooked LayerNorm's output."""
    config = SMALL_CONFIGS[2]
    model = randomised(config, seed=13)
    vocab = vocab_for(config)
    text = text_for(vocab, config.block_size, seed=14)
    flow = full_flow(model, vocab, text)
    caught = hooked_pass(model, vocab, text)
    T = config.block_size
    for b, block in enumerate(model.blocks):
        x = torch.tensor(caught[(b, "ln1")])
        for h, head in enumerate(block.attn.heads):
            scores = head.query(x) @ head.key(x).T * config.head_size**-0.5
            weights = torch.softmax(scores.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf")), -1).numpy()
            for pos in (0, 1, T - 1):
                looked = head_looks(flow, b, pos)[h]
                expected = np.argsort(-weights[pos], kind="stable")[: min(3, pos + 1)]
                assert [j for j, _ in looked] == list(expected)
                np.testing.assert_allclose([w for _, w in looked], weights[pos, expected], atol=1e-5)


def test_the_overview_follows_the_stream():
    config = SMALL_CONFIGS[1]
    model = randomised(config, seed=15)
    vocab = vocab_for(config)
    text = text_for(vocab, config.block_size, seed=16)
    flow = full_flow(model, vocab, text)
    caught = hooked_pass(model, vocab, text)
    pos = 5
    rows = stream_overview(flow, pos)
    assert [r["stage"] for r in rows] == [s["label"] for s in stages(config.n_layer)]
    last = config.n_layer - 1
    assert rows[-1]["stream"] == pytest.approx(float(np.linalg.norm(caught[(last, "after")][pos])), rel=1e-5)
    ffwd_rows = [r for r in rows if r["what"] == "feed-forward"]
    for b, row in enumerate(ffwd_rows):
        assert row["added"] == pytest.approx(float(np.linalg.norm(caught[(b, "ffwd")][pos])), rel=1e-5)
