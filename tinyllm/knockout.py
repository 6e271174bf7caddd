"""Knock it out: switch parts of the real kid off and see what changes.

What does a head do? The most direct answer is to take it away. Here three
kinds of part can be switched off, each by a forward hook on the model's own
modules (as tinyllm/trace.py catches values, never a second copy of the
forward pass):

- a head: its output set to zero before the projection mixes the heads
  (a pre-hook on the projection zeroes that head's slice of what it reads,
  the heads side by side; the same on the fused and the readable path);
- a block's feed-forward layer: its addition to the stream set to zero;
- the position embedding: set to zero, so the kid reads characters with no
  idea where they stand.

The loss says how much the kid needed the part: the mean cross-entropy with
the part switched off, against the loss with everything on. The page's live
knock-out and the export's table (`knockout_table`) are the same functions.
"""

import threading
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch.nn import functional as F

IGNORE = -100  # a position with no next character: cross_entropy skips it
TOP = 5  # candidates shown before and after
BATCH = 32  # windows per forward pass in the table (bounds the memory)


@dataclass(frozen=True)
class Off:
    """What is switched off: heads as (layer, head) pairs, feed-forward
    layers by block, and whether the position embedding is."""

    heads: tuple = ()
    ffwd: tuple = ()
    positions: bool = False

    def __bool__(self):
        return bool(self.heads or self.ffwd or self.positions)


@contextmanager
def switched_off(model, off: Off):
    """Inside the `with`, `model`'s forward runs with the parts in `off`
    switched off; the hooks are removed on the way out. The app shares one
    model among its visitors: the hooks act only in the thread that set
    them, so another visitor's forward pass meanwhile runs with every part on
    (cheaper than a copy of the model per knock-out)."""
    hooks = []
    hs = model.config.head_size
    owner = threading.get_ident()

    def zero_heads(heads):
        def pre_hook(module, args):
            if threading.get_ident() != owner:
                return None
            x = args[0].clone()  # (B, T, n_embd): the heads' outputs side by side
            for h in heads:
                x[..., h * hs : (h + 1) * hs] = 0
            return (x,)

        return pre_hook

    def zero_output(module, args, out):
        return torch.zeros_like(out) if threading.get_ident() == owner else None

    for layer, block in enumerate(model.blocks):
        heads = sorted({h for b, h in off.heads if b == layer})
        if heads:
            hooks.append(block.attn.proj.register_forward_pre_hook(zero_heads(heads)))
        if layer in off.ffwd:
            hooks.append(block.ffwd.register_forward_hook(zero_output))
    if off.positions:
        hooks.append(model.position_embedding.register_forward_hook(zero_output))
    try:
        yield model
    finally:
        for hook in hooks:
            hook.remove()


def windows(ids: list, block_size: int):
    """(x, y): the ids cut into consecutive windows of block_size from the
    start (a last partial window dropped; a text shorter than one window is
    one window), each position's target the id after it (IGNORE where the
    ids end)."""
    T = max(1, min(block_size, len(ids)))
    n = len(ids) // T * T
    targets = (ids[1 : n + 1] + [IGNORE])[:n]
    return torch.tensor(ids[:n], dtype=torch.long).view(-1, T), torch.tensor(targets, dtype=torch.long).view(-1, T)


@torch.no_grad()
def mean_loss(model, x, y) -> float:
    """Mean cross-entropy of the predictions that have a target, BATCH windows at a time."""
    total, count = 0.0, 0
    for start in range(0, len(x), BATCH):
        logits, _ = model(x[start : start + BATCH])
        part, n = summed_loss(logits, y[start : start + BATCH])
        total, count = total + part, count + n
    return total / count if count else None  # no prediction to score


def summed_loss(logits, y) -> tuple:
    """(the summed cross-entropy, how many predictions) of the positions that have a target."""
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE, reduction="sum")
    return float(loss), int((y != IGNORE).sum())


def knock_out(model, vocab, text: str, pos: int, off: Off) -> dict:
    """The kid on `text` (its last block_size characters) with everything on
    and with `off` switched off: the 5 likeliest next characters at `pos`
    ([[id, prob], ...] before and after) and the loss on the text."""
    text = text[-model.config.block_size :]
    x, y = windows(vocab.encode(text), model.config.block_size)
    result = {}
    with torch.no_grad():
        for when, parts in (("before", Off()), ("after", off)):
            with switched_off(model, parts):
                logits, _ = model(x)
            probs = F.softmax(logits[0, pos], dim=-1)
            values, top = probs.topk(min(TOP, len(probs)))
            total, count = summed_loss(logits, y)
            result[when] = dict(
                top=[[i, p] for i, p in zip(top.tolist(), values.tolist())],
                loss=total / count if count else None,
            )
    return dict(text=text, pos=pos, **result)


def knockout_table(model, vocab, text: str) -> dict:
    """The loss on `text` (read as `windows` of block_size) with everything
    on, and with each part alone switched off: each head, each block's
    feed-forward layer, the position embedding."""
    cfg = model.config
    x, y = windows(vocab.encode(text), cfg.block_size)

    def loss(off=Off()):
        with switched_off(model, off):
            return mean_loss(model, x, y)

    return dict(
        slice_chars=len(text),
        base_loss=loss(),
        heads=[[loss(Off(heads=((b, h),))) for h in range(cfg.n_head)] for b in range(cfg.n_layer)],
        ffwd=[loss(Off(ffwd=(b,))) for b in range(cfg.n_layer)],
        positions=loss(Off(positions=True)),
    )


def head_costs(table: dict, labels: list) -> list:
    """One row per head, the costliest first: what switching it off alone
    adds to the loss (knockout.json's table) beside its habit (attention.json's
    labels): {layer, head, cost, label, score, clear}."""
    rows = [
        dict(
            layer=b, head=h, cost=loss - table["base_loss"], **{k: labels[b][h][k] for k in ("label", "score", "clear")}
        )
        for b, row in enumerate(table["heads"])
        for h, loss in enumerate(row)
        if loss is not None
    ]
    return sorted(rows, key=lambda row: -row["cost"])
