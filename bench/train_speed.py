"""Training throughput: the fused attention path vs the readable per-head path.

Runs both at the kid's default shape, alternating them in one process so
machine noise hits both alike, and prints tokens/s, the speed-up, and the
fraction of this machine's measured fp32 matmul peak that the fast path uses.

It also times a step with no attention at all (each block's attention
replaced by zeros), to show how much of a step attention is: the fast path
can only speed up that part (Amdahl's law), and its matrix products cannot
run faster than the machine's matmul peak.

    python -m bench.train_speed [--rounds 5] [--steps 20]

With --runs it times whole `python -m tinyllm train` runs instead, as a
user starts them: one process and two (torchrun, gloo) on the CPU, at the
same global batch; on a CUDA GPU when there is one, the kid's shape and
nanoGPT's baby GPT (bf16, with and without --compile), and beside them
nanoGPT's own train.py at the same shape, batch and dtype when --nanogpt
names a checkout of it (github.com/karpathy/nanoGPT; the bench writes its
data/shakespeare_char/*.bin from the same corpus).

    python -m bench.train_speed --runs [--run-steps 100] [--small] [--data PATH] [--nanogpt PATH]
"""

import argparse
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy
import torch

from tinyllm.data import load_corpus, split_point
from tinyllm.model import GPT, GPTConfig
from tinyllm.settings import flag
from tinyllm.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


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
    parser.add_argument("--runs", action="store_true", help="time whole training runs: 1 and 2 processes, GPU")
    parser.add_argument("--run-steps", type=int, default=100, help="steps per run (timed: those after step 50)")
    parser.add_argument("--small", action="store_true", help="CPU runs at a small shape, for a busy machine")
    parser.add_argument("--data", help="corpus for --runs (default: as tinyllm train)")
    parser.add_argument("--nanogpt", type=Path, help="a checkout of nanoGPT, to time its train.py beside peek")
    args = parser.parse_args()
    if args.runs:
        return whole_runs(args)

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


# --------------------------------------------------------------------------
# Whole runs (--runs): the command a user types, timed from its own log


SMALL = dict(n_layer=2, n_head=4, n_embd=64, block_size=32, batch_size=16, dropout=0.0)
KID = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=32, dropout=0.1)
BABY_GPT = dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, dropout=0.2)  # nanoGPT's


def run_tinyllm(shape, steps, data, launcher, env=None, extra=()) -> float:
    """tokens/s of `python -m tinyllm train` at this shape: its log's last row,
    which counts the steps after the evaluation before it (51..steps for 100),
    warm-up and evaluations left out."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = dict(shape, steps=steps, eval_interval=steps, eval_batches=2, sample_chars=10)
        flags = [word for name, value in settings.items() for word in (flag(name), str(value))]
        command = [*launcher, "-m", "tinyllm", "train", "--data", data, "--out", f"{tmp}/run", "--quiet", *flags]
        done = subprocess.run(
            [*command, *extra], cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True
        )
        if done.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        rows = [json.loads(line) for line in Path(f"{tmp}/run/log.jsonl").read_text().splitlines()]
        return rows[-1]["tokens_per_s"]


def torchrun(n: int) -> list:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}"]


def run_nanogpt(checkout: Path, shape, steps, text: str, compile: bool) -> float:
    """tokens/s of nanoGPT's own train.py at the same shape, batch and dtype,
    over the same steps (51..steps), from the time it prints for every iteration."""
    data = checkout / "data" / "shakespeare_char"  # nanoGPT's prepare.py, without its download
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = numpy.array([stoi[c] for c in text], dtype=numpy.uint16)
    n = split_point(len(text))
    ids[:n].tofile(data / "train.bin")
    ids[n:].tofile(data / "val.bin")
    with open(data / "meta.pkl", "wb") as f:
        pickle.dump(dict(vocab_size=len(chars), itos=dict(enumerate(chars)), stoi=stoi), f)
    with tempfile.TemporaryDirectory() as tmp:
        overrides = dict(shape, max_iters=steps, lr_decay_iters=steps, eval_interval=10**6, eval_iters=1)
        overrides.update(log_interval=1, compile=compile, dtype="bfloat16", out_dir=tmp, always_save_checkpoint=False)
        command = [sys.executable, "train.py", "config/train_shakespeare_char.py"]
        command += [f"--{k}={v}" for k, v in overrides.items()]
        done = subprocess.run(command, cwd=checkout, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"nanoGPT failed:\n{done.stderr[-2000:]}")
    ms = {int(i): float(t) for i, t in re.findall(r"iter (\d+): loss [\d.]+, time ([\d.]+)ms", done.stdout)}
    timed = [t for i, t in ms.items() if 50 < i <= steps]
    return shape["batch_size"] * shape["block_size"] * len(timed) / (sum(timed) / 1000)


def whole_runs(args):
    corpus = load_corpus(args.data)  # downloaded once here, not by every process
    data = corpus.path
    shape = SMALL if args.small else KID
    print(f"CPU, {os.cpu_count()} cores, {'small shape' if args.small else 'the kid'}: {shape}, {args.run_steps} steps")
    one = [sys.executable]
    figures = {
        "1 process, all threads": run_tinyllm(shape, args.run_steps, data, one),
        "1 process, 1 thread": run_tinyllm(shape, args.run_steps, data, one, {"OMP_NUM_THREADS": "1"}),
        "2 processes (torchrun), 1 thread each": run_tinyllm(shape, args.run_steps, data, torchrun(2)),
    }
    for name, tokens in figures.items():
        print(f"  {name:<40}{tokens:>10,.0f} tokens/s")
    if not torch.cuda.is_available():
        print("no CUDA GPU here: the GPU figures need one")
        return
    print(f"GPU: {torch.cuda.get_device_name()}, bf16 autocast, {args.run_steps} steps")
    for name, gpu_shape in (("the kid", dict(KID, device="cuda")), ("baby GPT", dict(BABY_GPT, device="cuda"))):
        for compile in (False, True):
            extra = ["--compile"] if compile else []
            peek = run_tinyllm(gpu_shape, args.run_steps, data, one, extra=extra)
            line = f"  {name:<9} compile={compile!s:<6} peek {peek:>10,.0f} tokens/s"
            if args.nanogpt:
                shape_only = {k: v for k, v in gpu_shape.items() if k != "device"}
                theirs = run_nanogpt(args.nanogpt, shape_only, args.run_steps, corpus.text, compile)
                line += f"   nanoGPT {theirs:>10,.0f} tokens/s   peek/nanoGPT {peek / theirs:.2f}x"
            print(line)
    gpus = [n for n in range(2, torch.cuda.device_count() + 1) if BABY_GPT["batch_size"] % n == 0]
    if gpus:  # one process per GPU; the global batch must divide among them
        peek = run_tinyllm(dict(BABY_GPT, device="cuda"), args.run_steps, data, torchrun(gpus[-1]))
        print(f"  baby GPT on {gpus[-1]} GPUs (torchrun, NCCL), the same global batch: {peek:,.0f} tokens/s")


if __name__ == "__main__":
    main()
