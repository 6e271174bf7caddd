"""The kid, laid out for writing one character at a time: the KV cache.

Training reads a whole window at once. Writing adds one character at a
time, and what the model computed for the earlier characters stays true:
a position's key and value depend only on the characters up to it (the
causal mask sees to that). So each layer keeps the keys and values it has
made so far (the cache), and a new character costs only its own row: one
query scored against the cached keys, instead of a pass over the window.

This is GPT.forward's arithmetic with the modules unrolled into plain
tensor operations on weights laid out once. At one position per call the
arithmetic is tiny and each PyTorch call costs about the same whatever its
size, so the number of calls sets the speed (bench/sample_speed.py measures
it; docs/experiments.md has the figures).
tests/test_decoder.py proves it gives the model's logits.
"""

import math

import torch

from tinyllm.model import stacked_weight


def laid_out(linear):
    """A Linear's (weight, bias) as plain tensors, the weight laid out for
    `x @ w` (in, out). At one position per call, reading a module's attribute
    or transposing a matrix costs about as much as the arithmetic itself."""
    return linear.weight.detach().T.contiguous(), linear.bias.detach()


class CachedDecoder:
    """Feeds characters to the kid one position after another.

    decoder = CachedDecoder(model)
    logits = decoder.feed([ids of the prompt])   # reads them all at once
    logits = decoder.feed([next_id])             # then one at a time
    decoder.reset()                              # start again from position 0
    """

    def __init__(self, model):
        self.config = model.config
        self.token_embedding = model.token_embedding.weight.detach()
        self.position_embedding = model.position_embedding.weight.detach()
        self.layers = [CachedLayer(block, model.config) for block in model.blocks]
        self.ln_f = (model.ln_f.weight.detach(), model.ln_f.bias.detach())
        self.w_head, self.b_head = laid_out(model.lm_head)
        self.length = 0  # positions read so far

    def reset(self):
        self.length = 0

    def feed(self, ids: list) -> torch.Tensor:
        """Read `ids` at the next positions; return the logits (vocab,) that
        predict the character after the last of them."""
        start, end = self.length, self.length + len(ids)
        if not ids or end > self.config.block_size:
            raise ValueError(f"can read 1 to {self.config.block_size - start} more characters, not {len(ids)}")
        ids = torch.tensor(ids, device=self.token_embedding.device)
        x = self.token_embedding[ids] + self.position_embedding[start:end]  # (T, C)
        for layer in self.layers:
            x = layer(x, start, end)
        self.length = end
        last = torch.layer_norm(x[-1:], x.shape[-1:], *self.ln_f)  # (1, C)
        return torch.addmm(self.b_head, last, self.w_head)[0]


class CachedLayer:
    """One Block's weights, and the keys and values of the positions read so far."""

    def __init__(self, block, config):
        nh, hs, C = config.n_head, config.head_size, config.n_embd
        self.n_head, self.head_size = nh, hs
        # w_qkv: every head's query, key and value weights side by side, so
        # one product makes them all: columns [q of every head, k..., v...].
        per_head = stacked_weight(block.attn.heads).detach().view(nh, 3, hs, C)
        qkv = per_head.transpose(0, 1).clone()  # (3, nh, hs, C)
        # Scaling every score by 1/sqrt(head_size) is the same as scaling the
        # query weights once: q @ k / s == (q / s) @ k.
        qkv[0] /= math.sqrt(hs)
        self.w_qkv = qkv.reshape(3 * C, C).T.contiguous()  # (C, 3C)
        self.w_proj, self.b_proj = laid_out(block.attn.proj)
        self.w_fc1, self.b_fc1 = laid_out(block.ffwd.net[0])
        self.w_fc2, self.b_fc2 = laid_out(block.ffwd.net[2])
        self.ln1 = (block.ln1.weight.detach(), block.ln1.bias.detach())
        self.ln2 = (block.ln2.weight.detach(), block.ln2.bias.detach())
        # The cache, room for a full window. Keys are kept transposed,
        # (nh, hs, position), so that scores = q @ keys needs no transpose.
        self.keys = self.w_qkv.new_zeros(nh, hs, config.block_size)
        self.values = self.w_qkv.new_zeros(nh, config.block_size, hs)
        # future[i, j] is True where position i must not see position j (j > i).
        self.future = torch.ones(config.block_size, config.block_size, dtype=torch.bool, device=self.w_qkv.device).triu(
            1
        )

    def __call__(self, x, start: int, end: int):
        """x: (T, C) the new positions start..end-1. Returns the residual stream after the block."""
        T, C = x.shape
        # Queries, keys and values of the new positions, for every head: (nh, T, hs) each.
        h = torch.layer_norm(x, (C,), *self.ln1)
        qkv = torch.mm(h, self.w_qkv).view(T, 3, self.n_head, self.head_size)
        q, k, v = qkv.permute(1, 2, 0, 3).unbind(0)
        self.keys[:, :, start:end] = k.transpose(1, 2)  # remember them
        self.values[:, start:end] = v
        # A Head's steps, every head at once (bmm: one matrix product per head),
        # against every position so far: scores, mask, softmax, weighted sum.
        scores = torch.bmm(q, self.keys[:, :, :end])  # (nh, T, end), already scaled
        if T > 1:  # several new positions at once: each sees only up to itself
            scores = scores.masked_fill(self.future[start:end, :end], float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        heads_out = torch.bmm(weights, self.values[:, :end])  # (nh, T, hs)
        heads_out = heads_out.transpose(0, 1).reshape(T, C)  # heads side by side
        x = torch.addmm(x, heads_out, self.w_proj).add_(self.b_proj)  # x + proj(heads_out)
        # Feed-forward: widen, ReLU, narrow, add to the residual stream.
        h = torch.layer_norm(x, (C,), *self.ln2)
        h = torch.addmm(self.b_fc1, h, self.w_fc1).relu_()
        return torch.addmm(x, h, self.w_fc2).add_(self.b_fc2)
