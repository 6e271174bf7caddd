"""Sampling: the kid writes one character at a time.

`generate` is a generator: it yields each new character as soon as it is
chosen, with the probability the kid gave it and the candidates it weighed,
so the CLI can print and the app can stream the very same thing.

The context window. The kid learned positions 0..block_size-1 only, so it
can never read more than block_size characters. When the window is full,
it slides by half: the last block_size // 2 characters are kept and read
again from position 0. With a KV cache each character then costs one new
position instead of a pass over the whole window. Both modes follow this
same rule, so for the same seed they write the same text (a test checks).
The cached mode runs tinyllm/decoder.py; the other runs the model itself.
"""

import random
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from tinyllm.decoder import CachedDecoder
from tinyllm.errors import TinyLLMError


@dataclass
class SampleSettings:
    length: int = 500  # characters to write
    temperature: float = 1.0  # <1: safer, more repetitive; >1: bolder, more errors
    top_k: int | None = None  # sample only among the k likeliest characters
    top_p: float | None = None  # ... or among the fewest whose probabilities sum to p
    seed: int | None = None  # the same seed writes the same text

    def validate(self):
        if self.length < 0:
            raise TinyLLMError(f"--length must be 0 or more, not {self.length}.")
        if not self.temperature > 0:
            raise TinyLLMError(f"--temperature must be above 0, not {self.temperature}.")
        if self.top_k is not None and self.top_k < 1:
            raise TinyLLMError(f"--top-k must be at least 1, not {self.top_k}.")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise TinyLLMError(f"--top-p must be in (0, 1], not {self.top_p}.")


@dataclass
class SampledChar:
    char: str
    id: int
    prob: float  # what the kid believed (temperature 1, no filtering)
    sampled_prob: float  # the probability it was drawn with, after the settings
    top: list  # [(char, prob), ...] the kid's likeliest candidates, at temperature 1
    drawn: list  # the same candidates' probabilities in the distribution it was drawn from


def prompt_ids(vocab, prompt: str, block_size: int) -> list:
    """Encode a prompt: an empty one starts from a newline (or, for a corpus
    without newlines, from its first character), a long one keeps its last
    block_size characters."""
    if not prompt:
        prompt = "\n" if "\n" in vocab.stoi else vocab.chars[0]
    return vocab.encode(prompt)[-block_size:]


def filter_probs(logits, settings: SampleSettings):
    """Turn logits into the distribution to draw from: temperature, top-k, top-p."""
    logits = logits / settings.temperature
    if settings.top_k is not None:
        kth = torch.topk(logits, min(settings.top_k, logits.size(-1))).values[..., -1, None]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    if settings.top_p is not None:
        sorted_probs, order = torch.sort(probs, descending=True)
        # keep a candidate if the ones before it do not yet reach top_p
        before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
        sorted_probs = sorted_probs.masked_fill(before >= settings.top_p, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


@torch.inference_mode()
def generate(model, vocab, prompt: str, settings: SampleSettings, use_cache=True, n_top=5):
    """Yield SampledChar, one per new character."""
    settings.validate()
    model.eval()
    block_size = model.config.block_size
    device = next(model.parameters()).device
    seed = settings.seed if settings.seed is not None else random.randrange(2**31)
    gen = torch.Generator().manual_seed(seed)

    window = prompt_ids(vocab, prompt, block_size)
    decoder = CachedDecoder(model) if use_cache else None
    for _ in range(settings.length):
        if not use_cache:
            logits, _ = model(torch.tensor([window], device=device))
            logits = logits[0, -1]
        elif decoder.length == 0:  # read the whole window from position 0
            logits = decoder.feed(window)
        else:  # only the newest character is new
            logits = decoder.feed(window[-1:])
        logits = logits.float().cpu()  # (vocab,)

        probs = filter_probs(logits, settings)
        next_id = int(torch.multinomial(probs, 1, generator=gen))
        raw = F.softmax(logits, dim=-1)
        top = torch.topk(raw, min(n_top, raw.numel()))
        yield SampledChar(
            char=vocab.chars[next_id],
            id=next_id,
            prob=float(raw[next_id]),
            sampled_prob=float(probs[next_id]),
            top=[(vocab.chars[i], p) for p, i in zip(top.values.tolist(), top.indices.tolist())],
            drawn=probs[top.indices].tolist(),
        )

        window.append(next_id)
        if len(window) > block_size:
            window = window[-max(1, block_size // 2) :]
            if use_cache:
                decoder.reset()


def sample_text(model, vocab, prompt: str, settings: SampleSettings, use_cache=True) -> str:
    return "".join(c.char for c in generate(model, vocab, prompt, settings, use_cache))
