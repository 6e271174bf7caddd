"""Training throughput: the fused attention path vs the readable per-head path.

Runs both at the kid's default shape, alternating them in one process so
machine noise hits both alike, and prints tokens/s, the speed-up, and the
fraction of this machine's measured fp32 matmul peak that the fast path uses.

    python -m bench.train_speed [--rounds 5] [--steps 20]
"""

import argparse
import time

import torch

from tinyllm.model import GPT, GPTConfig
from tinyllm.train import TrainConfig


def matmul_peak(n=1024, repeats=20) -> float:
    """Best fp32 GFLOP/s of an n x n matmul on this machine."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def train_flops_per_token(model: GPT) -> float:
    """Forward + backward FLOPs per token, as nanoGPT's estimate_mfu counts them
    (PaLM paper, appendix B): 6 per weight of every matrix multiply, plus
    12 * n_layer * n_embd * block_size for the attention scores and sums."""
    cfg = model.config
    weights = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "embedding" not in n)
    return 6 * weights + 12 * cfg.n_layer * cfg.n_embd * cfg.block_size


def time_steps(model, optimizer, steps, batch_size, block_size, vocab_size) -> float:
    x = torch.randint(vocab_size, (batch_size, block_size))
    y = torch.randint(vocab_size, (batch_size, block_size))
    t0 = time.perf_counter()
    for _ in range(steps):
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * batch_size * block_size / (time.perf_counter() - t0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the two paths")
    parser.add_argument("--steps", type=int, default=20, help="training steps per measurement")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size, help="sequences per step")
    parser.add_argument("--dropout", type=float, default=GPTConfig.dropout, help="dropout while training")
    args = parser.parse_args()

    config = GPTConfig(vocab_size=65, dropout=args.dropout)
    batch_size = args.batch_size
    torch.manual_seed(0)
    model = GPT(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    print(f"shape: n_layer={config.n_layer} n_head={config.n_head} n_embd={config.n_embd} "
          f"block_size={config.block_size} batch_size={batch_size} dropout={config.dropout}; "
          f"{model.num_params():,} parameters; {torch.get_num_threads()} threads")
    results = {True: [], False: []}
    for fast in (True, False):  # warm-up
        time_steps(model.set_fast(fast), optimizer, 3, batch_size, config.block_size, 65)
    for _ in range(args.rounds):
        for fast in (True, False):
            results[fast].append(time_steps(model.set_fast(fast), optimizer, args.steps, batch_size,
                                            config.block_size, 65))
    fast, slow = max(results[True]), max(results[False])
    peak = matmul_peak()
    achieved = fast * train_flops_per_token(model) / 1e9
    print(f"readable per-head path: {slow:,.0f} tokens/s (best of {args.rounds})")
    print(f"fused path:             {fast:,.0f} tokens/s (best of {args.rounds})")
    print(f"speed-up:               {fast / slow:.2f}x")
    print(f"matmul peak:            {peak:.1f} GFLOP/s (fp32, 1024^3)")
    print(f"fused path achieves:    {achieved:.1f} GFLOP/s = {achieved / peak:.0%} of peak")


if __name__ == "__main__":
    main()
