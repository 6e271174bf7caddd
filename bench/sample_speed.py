"""Sampling speed: KV cache vs recomputing the window for every character.

    python -m bench.sample_speed [--checkpoint artifacts/kid/model.pt] [--length 1000]

Alternates the two in one process and prints characters/s for each, and
checks that both wrote the same text.
"""

import argparse
import time

import torch

from tinyllm.checkpoint import load_model
from tinyllm.sample import SampleSettings, sample_text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="artifacts/kid/model.pt", help="the model to sample from")
    parser.add_argument("--length", type=int, default=1000, help="characters per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternations")
    args = parser.parse_args()

    model, vocab, _ = load_model(args.checkpoint)
    print(
        f"{model.num_params():,} parameters, block_size {model.config.block_size}, "
        f"{torch.get_num_threads()} threads, {args.length} characters per run"
    )
    speeds = {True: [], False: []}
    texts = {}
    for _ in range(args.rounds):
        for cached in (True, False):
            t0 = time.perf_counter()
            texts[cached] = sample_text(model, vocab, "ROMEO:", SampleSettings(args.length, seed=0), cached)
            speeds[cached].append(args.length / (time.perf_counter() - t0))
    cached, uncached = max(speeds[True]), max(speeds[False])
    print(f"without cache: {uncached:,.0f} characters/s")
    print(f"with KV cache: {cached:,.0f} characters/s")
    print(f"speed-up:      {cached / uncached:.1f}x; same text: {texts[True] == texts[False]}")
    t0 = time.perf_counter()
    sample_text(model, vocab, "ROMEO:", SampleSettings(500, seed=1))
    print(f"500 characters (the playground's default) in {time.perf_counter() - t0:.3f} s")


if __name__ == "__main__":
    main()
