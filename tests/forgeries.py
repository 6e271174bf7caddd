"""Forged checkpoints: files that a stranger could drop in a run folder or
upload, each wrong in one way that the loader must refuse. Made from a real
checkpoint, small enough to build in a test; `python tests/forgeries.py DIR`
writes them at the sizes of the attacks found (for measuring by hand)."""

import sys

import torch

from tinyllm.checkpoint import save_checkpoint
from tinyllm.data import Vocab
from tinyllm.model import GPT, GPTConfig
from tinyllm.train import TrainConfig

META = dict(
    train=TrainConfig().to_dict(),
    step=7,
    losses={"train": 1.0, "val": 2.0},
    corpus={"name": "x", "md5": "0" * 32, "chars": 10},
    elapsed_s=1.0,
    device="cpu",
)


def real_checkpoint(path, config=None, resume=False) -> dict:
    """A genuine checkpoint saved at path (with an optimizer's state in it
    when resume is True), and its loaded dict."""
    torch.manual_seed(0)
    config = config or GPTConfig(vocab_size=6, block_size=8, n_embd=16, n_head=2, n_layer=1)
    vocab = Vocab([chr(ord("a") + i) for i in range(config.vocab_size)])
    model = GPT(config).eval()
    state = None
    if resume:
        optimizer = torch.optim.AdamW(model.parameters())
        model(torch.zeros(1, 2, dtype=torch.long))[0].sum().backward()
        optimizer.step()
        state = dict(
            optimizer=optimizer.state_dict(),
            batch_rng=torch.Generator().get_state(),
            torch_rng=torch.get_rng_state(),
            best_val=2.0,
        )
    save_checkpoint(path, model, vocab, META, resume=state)
    return torch.load(path, weights_only=True)


def stride_zero(shape) -> torch.Tensor:
    """A tensor of any shape whose storage is one number: a view with strides of 0."""
    return torch.zeros(1).expand(*shape)


def huge_context(ckpt: dict, block_size=12_000) -> dict:
    """A real model whose config claims a long context: the position table is
    real (and small for a narrow model), but every head's mask is block_size^2."""
    ckpt["config"]["block_size"] = block_size
    width = ckpt["config"]["n_embd"]
    ckpt["model"]["position_embedding.weight"] = torch.zeros(block_size, width)
    return ckpt


def stride_zero_weights(ckpt: dict, n_embd=4096, n_layer=1) -> dict:
    """A wide model whose every weight is a stride-0 view of one number."""
    ckpt["config"].update(n_embd=n_embd, n_head=1, n_layer=n_layer, block_size=8)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in GPT(GPTConfig(**ckpt["config"])).state_dict().items()}
    ckpt["model"] = {k: stride_zero(shape) for k, shape in shapes.items()}
    return ckpt


def forged(ckpt: dict, change: str) -> dict:
    """The checkpoint with one thing wrong, as an untrusted file might have it."""
    ckpt = {**ckpt, "config": dict(ckpt["config"]), "model": dict(ckpt["model"])}
    weights = ckpt["model"]
    if change == "config not a dict":
        ckpt["config"] = [1, 2]
    elif change == "an unknown config key":
        ckpt["config"]["n_experts"] = 8
    elif change == "a huge model claimed":  # small weights, a config of about 10**12 parameters
        ckpt["config"].update(n_embd=100_000, n_layer=100)
    elif change == "a size that is a string":
        ckpt["config"]["n_layer"] = "1"
    elif change == "vocab too short":
        ckpt["vocab"] = ckpt["vocab"][:-1]
    elif change == "vocab of words":
        ckpt["vocab"] = ["ab"] * len(ckpt["vocab"])
    elif change == "a lone surrogate in the vocab":
        ckpt["vocab"] = ckpt["vocab"][:-1] + ["\ud800"]
    elif change == "a weight missing":
        weights.pop("lm_head.bias")
    elif change == "a weight reshaped":
        weights["lm_head.weight"] = weights["lm_head.weight"].T.contiguous()
    elif change == "a context of 12,000":
        huge_context(ckpt)
    elif change == "stride-0 views":
        stride_zero_weights(ckpt, n_embd=64)
    elif change == "a view into a larger storage":
        weights["lm_head.bias"] = torch.zeros(100)[10 : 10 + weights["lm_head.bias"].numel()]
    elif change == "a transposed view":
        weights["lm_head.weight"] = weights["lm_head.weight"].T.contiguous().T
    elif change == "two weights on one storage":
        weights["ln_f.bias"] = weights["ln_f.weight"]
    elif change == "a NaN weight":
        weights["lm_head.bias"] = weights["lm_head.bias"].clone().fill_(float("nan"))
    elif change == "an infinite weight":
        weights["ln_f.weight"] = weights["ln_f.weight"].clone().fill_(float("inf"))
    elif change == "integer weights":
        weights["lm_head.bias"] = weights["lm_head.bias"].long()
    elif change == "step not a count":
        ckpt["step"] = "7"
    elif change == "no losses":
        del ckpt["losses"]
    elif change == "a loss that is a string":
        ckpt["losses"] = {"train": "1.0", "val": 2.0}
    elif change == "a NaN loss":
        ckpt["losses"] = {"train": 1.0, "val": float("nan")}
    elif change == "elapsed time a string":
        ckpt["elapsed_s"] = "60"
    elif change == "training settings without steps":
        ckpt["train"] = {k: v for k, v in ckpt["train"].items() if k != "steps"}
    elif change == "a training setting of the wrong kind":
        ckpt["train"] = {**ckpt["train"], "batch_size": "32"}
    elif change == "corpus chars a string":
        ckpt["corpus"] = {**ckpt["corpus"], "chars": "many"}
    elif change == "corpus without md5":
        ckpt["corpus"] = {"name": "x", "chars": 10}
    elif change == "corpus name a list":
        ckpt["corpus"] = {**ckpt["corpus"], "name": ["x"]}
    elif change == "device a number":
        ckpt["device"] = 3
    else:
        raise ValueError(change)
    return ckpt


CHANGES = [
    "config not a dict",
    "an unknown config key",
    "a huge model claimed",
    "a size that is a string",
    "vocab too short",
    "vocab of words",
    "a lone surrogate in the vocab",
    "a weight missing",
    "a weight reshaped",
    "a context of 12,000",
    "stride-0 views",
    "a view into a larger storage",
    "a transposed view",
    "two weights on one storage",
    "a NaN weight",
    "an infinite weight",
    "integer weights",
    "step not a count",
    "no losses",
    "a loss that is a string",
    "a NaN loss",
    "elapsed time a string",
    "training settings without steps",
    "a training setting of the wrong kind",
    "corpus chars a string",
    "corpus without md5",
    "corpus name a list",
    "device a number",
]

# Forged resume states (latest.pt), checked when a run is resumed.
RESUME_CHANGES = ["no resume state", "a random-number state too short", "optimizer moments of the wrong shape"]


def forged_resume(ckpt: dict, change: str) -> dict:
    ckpt = {**ckpt, "resume": dict(ckpt["resume"])}
    if change == "no resume state":
        del ckpt["resume"]
    elif change == "a random-number state too short":
        ckpt["resume"]["torch_rng"] = ckpt["resume"]["torch_rng"][:10].clone()
    elif change == "optimizer moments of the wrong shape":
        optimizer = ckpt["resume"]["optimizer"]
        state = {i: dict(m) for i, m in optimizer["state"].items()}
        state[0]["exp_avg"] = torch.zeros(3)
        ckpt["resume"]["optimizer"] = {**optimizer, "state": state}
    else:
        raise ValueError(change)
    return ckpt


if __name__ == "__main__":  # the attacks at full size, for measuring `show` by hand
    from pathlib import Path

    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    base = real_checkpoint(out / "real.pt", GPTConfig(vocab_size=6, block_size=8, n_embd=4, n_head=4, n_layer=1))
    torch.save(forged(base, "a context of 12,000"), out / "context.pt")
    torch.save(stride_zero_weights(forged(base, "a NaN weight") | {"model": {}}, n_embd=4096), out / "stride0.pt")
    for path in sorted(out.glob("*.pt")):
        print(f"{path}  {path.stat().st_size:,} bytes")
