"""One forward pass of the real kid, with every value inside it kept.

The chapters show more than the logits: the stream between blocks, each
head's queries, keys and weights, the feed-forward neurons. Rather than
write the forward pass a second time, `trace` runs the model's own
`forward` (tinyllm/model.py) and catches each module's output with forward
hooks. Inside a Head, the scores and the weights are local variables, not a
module's output: a TorchFunctionMode notes the `masked_fill` and the
`softmax` the Head itself calls, as headcheck.Recorder does for a learner's
Head. What model.py computes is what every chapter shows, and a change
there reaches them all.

Each head's values exist only on the readable path (each Head run on its
own); the fused path computes all heads in one call. So with heads=True the
trace runs the readable path (the same numbers: tests/test_model.py), on a
copy when the model given runs the fused one: the app shares one model
among its visitors, and the trace never changes it.
"""

import copy
from functools import partial

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode


class HeadSteps(TorchFunctionMode):
    """Between `enter` and `leave` (a Head's forward pre-hook and hook),
    notes into that Head's record the scores its masked_fill reads and the
    weights its softmax returns."""

    def __init__(self):
        super().__init__()
        self.inside = None

    def enter(self, record, module, args):
        self.inside = record

    def leave(self, record, module, args, out):
        record["out"] = out
        self.inside = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.inside is not None:
            name = getattr(func, "__name__", "")
            if name == "masked_fill":
                self.inside["scores"] = args[0]
            elif name == "softmax":
                self.inside["weights"] = out
        return out


def relu_of(block) -> nn.Module:
    """The feed-forward layer's ReLU: its outputs are the neurons."""
    return next(m for m in block.ffwd.modules() if isinstance(m, nn.ReLU))


STREAM = ("before", "ln1", "attn", "mid", "ln2", "hidden", "ffwd", "after")  # a block's values, in order


@torch.no_grad()
def trace(model, idx, heads: bool = True, keep_only=STREAM) -> dict:
    """Run `model` on idx (B, T) and keep every intermediate, as tensors
    with the batch first:

      token (B, T, C), position (T, C): the two embeddings
      embedding (B, T, C): their sum, what the first block reads
      blocks[layer]: dict of
        before (B, T, C): the residual stream the block reads
        ln1: through its first LayerNorm, what its heads read
        heads[head]: dict of q, k, v, out (B, T, hs), scores and weights (B, T, T)
                     (the scores before the mask; None unless heads=True)
        attn: what attention adds to the stream (after the projection)
        mid: the stream after that addition
        ln2: through the second LayerNorm
        hidden (B, T, 4 C): the feed-forward neurons, after the ReLU
        ffwd: what the feed-forward layer adds
        after: the stream the block passes on
      ln_f (B, T, C): the last stream through the final LayerNorm
      logits (B, T, vocab)

    keep_only: the block values to keep (a large batch may need only some).
    """
    if model.training or (heads and any(block.attn.fast for block in model.blocks)):
        model = copy.deepcopy(model).eval().set_fast(not heads)
    caught, hooks, steps = {}, [], HeadSteps()

    def keep(module, key, what="output"):
        def hook(module, args, output):
            caught[key] = args[0] if what == "input" else output

        hooks.append(module.register_forward_hook(hook))

    keep(model.token_embedding, "token")
    keep(model.position_embedding, "position")
    keep(model.drop, "embedding")
    for b, block in enumerate(model.blocks):
        parts = dict(before=block, ln1=block.ln1, attn=block.attn, mid=block.ln2, ln2=block.ln2)
        parts.update(hidden=relu_of(block), ffwd=block.ffwd, after=block)
        for key in keep_only:
            keep(parts[key], (b, key), "input" if key in ("before", "mid") else "output")
        for h, head in enumerate(block.attn.heads if heads else []):
            record = caught[(b, "head", h)] = {}
            for name, part in (("q", head.query), ("k", head.key), ("v", head.value)):
                keep(part, (b, h, name))
            hooks.append(head.register_forward_pre_hook(partial(steps.enter, record)))
            hooks.append(head.register_forward_hook(partial(steps.leave, record)))
    keep(model.ln_f, "ln_f")
    try:
        with steps:
            logits, _ = model(idx)
    finally:
        for hook in hooks:
            hook.remove()
    blocks = []
    for b, block in enumerate(model.blocks):
        values = {key: caught[(b, key)] for key in keep_only}
        values["heads"] = (
            [
                dict(caught[(b, "head", h)], **{n: caught[(b, h, n)] for n in "qkv"})
                for h in range(len(block.attn.heads))
            ]
            if heads
            else None
        )
        blocks.append(values)
    return dict(
        token=caught["token"],
        position=caught["position"],
        embedding=caught["embedding"],
        blocks=blocks,
        ln_f=caught["ln_f"],
        logits=logits,
    )
