"""The whole kid's trip, re-derived by a second path: the fused model with
forward hooks of this file's own, instead of the trace flow.py reads."""

import numpy as np
import pytest
import torch
from helpers import SMALL_CONFIGS, randomised

from tinyllm.checkpoint import load_model
from tinyllm.data import Vocab
from tinyllm.export import read_chapter
from tinyllm.flow import describe_stage, full_flow, logit_attribution, neuron_contexts, parts, stage_vector, stages


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
