"""Training throughput: the fused attention path vs the readable per-head path.

Runs both at the kid's default shape, alternating them in one process so
machine noise hits both alike, and prints tokens/s, the speed-up, and the
fraction of this machine's measured fp32 matmul peak that the fast path uses.

It also times a step with no attention at all (each block's attention
replaced by zeros), to show how much of a step attention is: the fast path
can only speed up that part (Amdahl's law), and its matrix products cannot
run faster than the machine's matmul peak.

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


def attention_flops_per_step(config, batch_size) -> float:
    """Forward + backward FLOPs of attention's matrix products in one step:
    q, k, v and the output projection (6 per weight per token) plus the
    scores and weighted sums (12 * n_embd * block_size per token), per layer."""
    C, tokens = config.n_embd, batch_size * config.block_size
    return config.n_layer * tokens * (6 * 4 * C * C + 12 * C * config.block_size)


class NoAttention(torch.nn.Module):
    """Stands in for a block's attention: adds nothing to the residual stream."""

    def forward(self, x):
        return torch.zeros_like(x)


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
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the paths")
    parser.add_argument("--steps", type=int, default=20, help="training steps per measurement")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size, help="sequences per step")
    parser.add_argument("--dropout", type=float, default=GPTConfig.dropout, help="dropout while training")
    args = parser.parse_args()

    config = GPTConfig(vocab_size=65, dropout=args.dropout)
    batch_size = args.batch_size
    torch.manual_seed(0)
    model = GPT(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    print(
        f"shape: n_layer={config.n_layer} n_head={config.n_head} n_embd={config.n_embd} "
        f"block_size={config.block_size} batch_size={batch_size} dropout={config.dropout}; "
        f"{model.num_params():,} parameters; {torch.get_num_threads()} threads"
    )
    attention = [block.attn for block in model.blocks]

    def use(path):
        for block, attn in zip(model.blocks, attention):
            block.attn = NoAttention() if path == "none" else attn.train()
            attn.fast = path == "fused"
        return model

    paths = ("fused", "readable", "none")
    results = {path: [] for path in paths}
    for path in paths:  # warm-up
        time_steps(use(path), optimizer, 3, batch_size, config.block_size, 65)
    for _ in range(args.rounds):
        for path in paths:
            results[path].append(time_steps(use(path), optimizer, args.steps, batch_size, config.block_size, 65))
    best = {path: max(results[path]) for path in paths}
    ms = {path: 1000 * batch_size * config.block_size / best[path] for path in paths}  # per step
    fast, slow = best["fused"], best["readable"]
    peak = matmul_peak()
    achieved = fast * train_flops_per_token(use("fused")) / 1e9
    print(f"readable per-head path: {slow:,.0f} tokens/s (best of {args.rounds})")
    print(f"fused path:             {fast:,.0f} tokens/s (best of {args.rounds})")
    print(f"speed-up:               {fast / slow:.2f}x")
    print(f"matmul peak:            {peak:.1f} GFLOP/s (fp32, 1024^3)")
    print(f"fused path achieves:    {achieved:.1f} GFLOP/s = {achieved / peak:.0%} of peak")
    print()
    print(
        f"one step: readable {ms['readable']:.1f} ms, fused {ms['fused']:.1f} ms, "
        f"no attention at all {ms['none']:.1f} ms"
    )
    readable_attn, fused_attn = ms["readable"] - ms["none"], ms["fused"] - ms["none"]
    floor = attention_flops_per_step(config, batch_size) / (peak * 1e9) * 1000
    print(
        f"attention's share:      readable {readable_attn:.1f} ms ({readable_attn / ms['readable']:.0%} "
        f"of its step), fused {fused_attn:.1f} ms"
    )
    print(f"attention's matrix products at the matmul peak would take {floor:.1f} ms")
    for target in (1.15, 1.25):
        budget = ms["readable"] / target - ms["none"]
        print(f"for {target:.2f}x the fused attention must take at most {budget:.1f} ms")


if __name__ == "__main__":
    main()
