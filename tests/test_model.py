"""The readable attention is the reference; the fused path must match it."""

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
