import pytest
import torch

from tinyllm.data import Vocab
from tinyllm.errors import TinyLLMError
from tinyllm.model import GPT, GPTConfig
from tinyllm.sample import SampleSettings, filter_probs, generate, prompt_ids, sample_text

VOCAB = Vocab(list("\n abcdefgh"))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(VOCAB), block_size=12, n_embd=32, n_head=4, n_layer=2))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)  # an opinionated, non-uniform model
    return model.eval()


@pytest.mark.parametrize("prompt", ["", "abc", "abcdefgh abcdefgh abcdefgh"])
def test_cached_and_uncached_write_the_same_text(model, prompt):
    # 100 characters cross the 12-character window many times
    settings = SampleSettings(length=100, seed=7, temperature=1.2)
    cached = list(generate(model, VOCAB, prompt, settings, use_cache=True))
    uncached = list(generate(model, VOCAB, prompt, settings, use_cache=False))
    assert "".join(c.char for c in cached) == "".join(c.char for c in uncached)
    for a, b in zip(cached, uncached):
        assert a.prob == pytest.approx(b.prob, abs=1e-5)
    assert len({c.char for c in cached}) > 3  # really sampled, not a constant


def test_same_seed_same_text_other_seed_other_text(model):
    a = sample_text(model, VOCAB, "ab", SampleSettings(60, seed=1))
    b = sample_text(model, VOCAB, "ab", SampleSettings(60, seed=1))
    c = sample_text(model, VOCAB, "ab", SampleSettings(60, seed=2))
    assert a == b and a != c and len(a) == 60


def test_each_step_reports_probability_and_candidates(model):
    steps = list(generate(model, VOCAB, "abc", SampleSettings(20, seed=3), n_top=4))
    for s in steps:
        assert 0 < s.prob <= 1 and len(s.top) == 4
        probs = [p for _, p in s.top]
        assert probs == sorted(probs, reverse=True)
        assert s.top[0][1] >= s.prob


def test_top_k_one_is_greedy(model):
    steps = list(generate(model, VOCAB, "abc", SampleSettings(30, top_k=1, seed=5)))
    assert all(s.char == s.top[0][0] for s in steps)


def test_top_p_keeps_the_fewest_likeliest():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    probs = filter_probs(logits, SampleSettings(top_p=0.7))
    assert probs.tolist() == pytest.approx([0.625, 0.375, 0.0, 0.0])
    probs = filter_probs(logits, SampleSettings(top_k=3, temperature=0.5))
    assert probs[3] == 0 and probs[0] > 0.5


def test_prompts_empty_long_and_unknown():
    assert prompt_ids(VOCAB, "", 12) == VOCAB.encode("\n")
    long_prompt = "abcdefgh" * 3
    assert prompt_ids(VOCAB, long_prompt, 12) == VOCAB.encode(long_prompt[-12:])
    with pytest.raises(TinyLLMError, match="'Z'"):
        prompt_ids(VOCAB, "abZ", 12)


@pytest.mark.parametrize(
    "settings, flag",
    [
        (SampleSettings(temperature=0), "--temperature"),
        (SampleSettings(top_k=0), "--top-k"),
        (SampleSettings(top_p=1.5), "--top-p"),
        (SampleSettings(length=-1), "--length"),
    ],
)
def test_bad_settings_are_refused(model, settings, flag):
    with pytest.raises(TinyLLMError, match=flag):
        next(generate(model, VOCAB, "a", settings))


def test_the_drawn_distribution_is_the_one_after_the_knobs(model):
    cold = list(generate(model, VOCAB, "ab", SampleSettings(length=5, temperature=0.5, seed=0), n_top=4))
    for s in cold:
        believed = [p for _, p in s.top]
        assert s.drawn[0] >= believed[0] and abs(sum(s.drawn) - 1) <= abs(sum(believed) - 1) + 1e-6
    k1 = list(generate(model, VOCAB, "ab", SampleSettings(length=5, top_k=1, seed=0), n_top=3))
    assert all(s.drawn == pytest.approx([1.0, 0.0, 0.0]) for s in k1)
