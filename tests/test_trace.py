"""The one trace: every value it keeps is the real model's, caught while the
model's own forward runs, and the model is left as it was."""

import math

import pytest
import torch
from helpers import SMALL_CONFIGS, randomised

from tinyllm.trace import STREAM, trace


def test_trace_holds_every_head_and_layer():
    config = SMALL_CONFIGS[1]
    model = randomised(config, 3).eval()
    idx = torch.randint(config.vocab_size, (2, 10), generator=torch.Generator().manual_seed(0))
    seen = trace(model, idx)
    assert len(seen["blocks"]) == config.n_layer
    assert all(len(block["heads"]) == config.n_head for block in seen["blocks"])
    head = seen["blocks"][1]["heads"][2]
    assert head["q"].shape == head["out"].shape == (2, 10, config.head_size)
    weights = head["weights"]
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 10))
    assert torch.all(weights.triu(1) == 0)  # no position sees the future
    assert weights.tril(-1).abs().max() > 0.01  # not a trivially empty comparison
    # the scores really are q k^T / sqrt(head_size), before the mask
    expected = head["q"] @ head["k"].transpose(-2, -1) / math.sqrt(config.head_size)
    torch.testing.assert_close(head["scores"], expected)
    torch.testing.assert_close(head["out"], weights @ head["v"])
    # the heads side by side, through the projection, are what attention added
    block = seen["blocks"][1]
    heads = torch.cat([h["out"] for h in block["heads"]], dim=-1)
    torch.testing.assert_close(model.blocks[1].attn.proj(heads), block["attn"])
    # the trace's logits are the model's logits (fast path), and the last
    # stream through the logit lens gives them too
    with torch.no_grad():
        logits, _ = model.set_fast(True)(idx)
    torch.testing.assert_close(seen["logits"], logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(model.logit_lens(seen["blocks"][-1]["after"]), logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("config", SMALL_CONFIGS, ids=lambda c: f"L{c.n_layer}H{c.n_head}")
def test_the_stream_adds_up_block_by_block(config):
    model = randomised(config, 5).eval()
    idx = torch.randint(config.vocab_size, (3, config.block_size), generator=torch.Generator().manual_seed(1))
    seen = trace(model, idx)
    stream = seen["token"] + seen["position"]
    torch.testing.assert_close(seen["embedding"], stream)
    for block in seen["blocks"]:
        torch.testing.assert_close(block["before"], stream)
        torch.testing.assert_close(block["mid"], block["before"] + block["attn"])
        torch.testing.assert_close(block["after"], block["mid"] + block["ffwd"])
        assert block["hidden"].shape == (3, config.block_size, 4 * config.n_embd) and block["hidden"].min() == 0
        stream = block["after"]
    torch.testing.assert_close(seen["ln_f"], model.ln_f(stream))


def test_the_model_is_left_as_it_was():
    """The app shares one model among its visitors: the trace must not switch
    its attention path, its mode, or leave a hook behind."""
    config = SMALL_CONFIGS[2]
    model = randomised(config, 7).train()
    idx = torch.randint(config.vocab_size, (1, 6))
    for heads in (True, False):
        seen = trace(model, idx, heads=heads)
        assert model.training and all(block.attn.fast for block in model.blocks)
        assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
        assert (seen["blocks"][0]["heads"] is None) != heads
    # in train mode dropout is on: the trace still reads the model as it predicts (eval)
    assert torch.equal(trace(model, idx)["logits"], trace(model, idx)["logits"])


def test_only_the_values_asked_for_are_kept():
    config = SMALL_CONFIGS[0]
    model = randomised(config, 8).eval()
    idx = torch.randint(config.vocab_size, (4, config.block_size))
    few = trace(model, idx, heads=False, keep_only=("hidden",))
    full = trace(model, idx, heads=False)
    assert set(few["blocks"][0]) == {"hidden", "heads"} and set(full["blocks"][0]) == {*STREAM, "heads"}
    assert torch.equal(few["blocks"][0]["hidden"], full["blocks"][0]["hidden"])
