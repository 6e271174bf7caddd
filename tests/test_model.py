"""The readable attention is the reference; the fused path must match it."""

import math

import pytest
import torch
from helpers import SMALL_CONFIGS, randomised

from tinyllm.model import GPT, GPTConfig, param_table


@pytest.mark.parametrize("config", SMALL_CONFIGS)
@pytest.mark.parametrize("seed", [0, 1])
def test_fast_path_equals_readable_path(config, seed):
    model = randomised(config, seed)
    T = config.block_size - seed  # full and shorter-than-block contexts
    idx = torch.randint(config.vocab_size, (3, T), generator=torch.Generator().manual_seed(seed))
    targets = torch.randint(config.vocab_size, (3, T), generator=torch.Generator().manual_seed(9))

    results = {}
    for fast in (False, True):
        model.set_fast(fast)
        model.zero_grad()
        logits, loss = model(idx, targets)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        results[fast] = (logits.detach(), grads)

    (slow_logits, slow_grads), (fast_logits, fast_grads) = results[False], results[True]
    assert slow_logits.abs().max() > 0.1  # not a trivially zero comparison
    torch.testing.assert_close(fast_logits, slow_logits, atol=1e-5, rtol=0)
    for name in slow_grads:
        torch.testing.assert_close(fast_grads[name], slow_grads[name], atol=1e-4, rtol=0, msg=name)


def test_trace_holds_every_head_and_layer():
    config = SMALL_CONFIGS[1]
    model = randomised(config, 3).eval()
    idx = torch.randint(config.vocab_size, (2, 10))
    trace = model.trace(idx)
    assert len(trace["heads"]) == config.n_layer
    assert all(len(layer) == config.n_head for layer in trace["heads"])
    head = trace["heads"][1][2]
    assert head["q"].shape == (2, 10, config.head_size)
    weights = head["weights"]
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 10))
    assert torch.all(weights.triu(1) == 0)  # no position sees the future
    # the scores really are q k^T / sqrt(head_size)
    expected = head["q"] @ head["k"].transpose(-2, -1) / math.sqrt(config.head_size)
    torch.testing.assert_close(head["scores"], expected)
    # the trace's logits are the model's logits (fast path), and the last
    # residual through the logit lens gives them too
    logits, _ = model.set_fast(True)(idx)
    torch.testing.assert_close(trace["logits"], logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(model.logit_lens(trace["residual"][-1]), logits, atol=1e-5, rtol=0)


def test_context_longer_than_block_size_is_refused():
    model = GPT(SMALL_CONFIGS[0])
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, SMALL_CONFIGS[0].block_size + 1, dtype=torch.long))


def test_param_table_adds_up():
    model = GPT(SMALL_CONFIGS[1])
    rows = param_table(model)
    assert sum(count for _, count in rows) == model.num_params()
    assert rows[0][0] == "token_embedding" and rows[-1][0] == "lm_head"
    assert any(name == "blocks.2.attn" for name, _ in rows)


@pytest.mark.parametrize("config", SMALL_CONFIGS + [GPTConfig()], ids=lambda c: f"L{c.n_layer}C{c.n_embd}")
def test_counting_parameters_by_hand_matches_the_model(config):
    from tinyllm.model import count_params

    assert count_params(config) == GPT(config).num_params()
