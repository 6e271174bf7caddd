"""Helpers the tests share: small configs, a randomised model, a learnable
text. Plain functions (fixtures live in conftest.py); tests import them
with `from helpers import ...`."""

import random
import time

import torch

from tinyllm.model import GPT, GPTConfig
from tinyllm.train import TrainConfig

TINY_MODEL = dict(block_size=16, n_embd=32, n_head=4, n_layer=2, dropout=0.0)

# Shapes that differ in every dimension, for comparing two ways of computing the same thing.
SMALL_CONFIGS = [
    GPTConfig(vocab_size=11, block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.0),
    GPTConfig(vocab_size=65, block_size=32, n_embd=48, n_head=3, n_layer=3, dropout=0.0),
    GPTConfig(vocab_size=30, block_size=20, n_embd=64, n_head=8, n_layer=2, dropout=0.0),
]


def randomised(config, seed):
    """A model with larger weights than the init, so attention is far from uniform."""
    torch.manual_seed(seed)
    model = GPT(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def make_text(n_lines=400, seed=0) -> str:
    """Short rhymes from a few templates: easy to learn, not trivial."""
    rng = random.Random(seed)
    names = ["ROMEO", "JULIET", "NURSE", "FRIAR"]
    verbs = ["loves", "sees", "calls", "fears", "finds"]
    things = ["the moon", "a rose", "the night", "my lord", "the sun"]
    lines = []
    for _ in range(n_lines):
        lines.append(f"{rng.choice(names)}:\n{rng.choice(names).title()} {rng.choice(verbs)} {rng.choice(things)}.\n")
    return "\n".join(lines)


def tiny_configs(**overrides):
    model = GPTConfig(**{**TINY_MODEL, **{k: v for k, v in overrides.items() if k in TINY_MODEL}})
    train_keys = TrainConfig.__dataclass_fields__
    settings = dict(
        steps=120,
        batch_size=16,
        lr=3e-3,
        min_lr=3e-4,
        warmup_steps=10,
        eval_interval=40,
        eval_batches=4,
        sample_chars=40,
        device="cpu",
        seed=0,
    )
    settings.update({k: v for k, v in overrides.items() if k in train_keys})
    return model, TrainConfig(**settings)


def release_fifos(paths, seconds=30.0):
    """For `seconds`, let go of anyone waiting to read one of these FIFOs (it
    opens the writing end: the reader sees an empty file), so that code that
    wrongly waits on one fails its test instead of hanging the test run."""
    import os
    import threading

    def release():
        deadline = time.time() + seconds
        while time.time() < deadline:
            for path in paths:
                try:  # succeeds only while a reader has it open, or waits to
                    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass
            time.sleep(0.05)

    threading.Thread(target=release, daemon=True).start()


def fifo_run(run_dir, names):
    """Replace these files of a run folder by FIFOs (a writer never comes);
    returns their paths."""
    import os

    fifos = []
    for name in names:
        path = run_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        os.mkfifo(path)
        fifos.append(path)
    return fifos
