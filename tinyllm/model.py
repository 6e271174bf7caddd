"""The kid's model: the classic character-level GPT decoder from "Let's build GPT".

Read it top to bottom: one attention `Head`, several heads side by side,
a feed-forward layer, a `Block` that joins them with residual connections,
and the `GPT` that stacks blocks between an embedding and a head.

Two paths compute attention from the same parameters:
- the readable path runs each `Head` on its own, exactly as written below;
- the fast path stacks the heads' weights and calls PyTorch's fused
  `scaled_dot_product_attention` once for all heads.
tests/test_model.py proves they give the same numbers, so the checkpoint
does not care which path trained it. Dropout regularises the residual
stream (after attention, after the feed-forward layer) but not the attention
weights themselves: that keeps `Head` exactly the five steps it teaches, and
lets the fused path use PyTorch's flash-attention kernel on the CPU (with
attention dropout it falls back to a slower one: docs/experiments.md). The
fused path sits at the end of the file, fenced off from the reading.

Elsewhere, not here: writing text one character at a time is
tinyllm/sample.py (its KV cache, a third layout of the same arithmetic, is
tinyllm/decoder.py); every value inside a forward pass, for the chapters,
is caught from this very code by tinyllm/trace.py.
"""

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 65  # filled in from the corpus: every distinct character gets an id
    block_size: int = 64  # how many characters the kid reads at once: its context
    n_embd: int = 128  # numbers in every vector inside the model (a multiple of n_head)
    n_head: int = 4  # attention heads per layer, each with n_embd / n_head numbers
    n_layer: int = 4  # transformer blocks stacked on top of each other
    dropout: float = 0.1  # fraction of activations zeroed while training, against memorising

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------
# Attention, written to be read


class Head(nn.Module):
    """One head of causal self-attention.

    Every position asks a question (query), offers a label (key) and carries
    a message (value). A position's output is the average of the messages of
    the positions before it, weighted by how well their keys match its query.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        head_size = config.head_size
        self.key = nn.Linear(config.n_embd, head_size, bias=False)
        self.query = nn.Linear(config.n_embd, head_size, bias=False)
        self.value = nn.Linear(config.n_embd, head_size, bias=False)
        # tril[i, j] is 1 where position i may look at position j (j <= i).
        # Not saved in checkpoints (persistent=False): it is rebuilt from block_size.
        self.register_buffer("tril", torch.tril(torch.ones(config.block_size, config.block_size)), persistent=False)

    def forward(self, x):
        B, T, C = x.shape  # B texts, T positions, C numbers each
        k = self.key(x)  # (B, T, hs)
        q = self.query(x)  # (B, T, hs)
        v = self.value(x)  # (B, T, hs)
        # Dividing by sqrt(head_size) keeps the scores near unit variance,
        # so softmax does not saturate into a one-hot choice at the start.
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])  # (B, T, T)
        # The future is hidden: -inf becomes a weight of exactly 0 after softmax.
        masked = scores.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        weights = F.softmax(masked, dim=-1)  # each row sums to 1
        return weights @ v  # (B, T, hs)


class MultiHeadAttention(nn.Module):
    """Several heads look at the sequence in parallel; their outputs are
    concatenated and mixed back to n_embd by a linear projection."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.heads = nn.ModuleList([Head(config) for _ in range(config.n_head)])
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)
        self.fast = True  # use the fused path unless someone asks to read along

    def forward(self, x):
        if self.fast:
            out = fused_attention(self.heads, x)  # the same numbers, faster: see the end of this file
        else:
            out = torch.cat([head(x) for head in self.heads], dim=-1)  # (B, T, n_embd), heads side by side
        return self.dropout(self.proj(out))


class FeedForward(nn.Module):
    """Per position: widen to 4x, ReLU, narrow back. Attention moves
    information between positions; this layer thinks about it in place."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd),
            nn.ReLU(),
            nn.Linear(4 * config.n_embd, config.n_embd),
            nn.Dropout(config.dropout),
        )

    def forward(self, x):
        return self.net(x)


class Block(nn.Module):
    """Communication (attention) then computation (feed-forward). Each adds
    to the residual stream x rather than replacing it; LayerNorm comes first
    (pre-norm), which keeps training stable."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.attn = MultiHeadAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.ffwd = FeedForward(config)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        x = x + self.ffwd(self.ln2(x))
        return x


# --------------------------------------------------------------------------
# The whole model


class GPT(nn.Module):
    """Characters in, a score for every possible next character out."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.n_embd)
        self.position_embedding = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module):
        # Small normal weights (as in GPT-2) start every logit near zero,
        # so the untrained kid guesses close to uniformly.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def set_fast(self, fast: bool):
        """Choose the fused attention (True) or the readable per-head one."""
        for block in self.blocks:
            block.attn.fast = fast
        return self

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx, targets=None):
        """idx: (B, T) character ids. Returns (logits (B, T, vocab), loss or None)."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"context of {T} characters is longer than block_size {self.config.block_size}")
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.token_embedding(idx) + self.position_embedding(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))  # (B, T, vocab_size)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss

    def logit_lens(self, residual):
        """Read a prediction from any layer's residual stream by applying the
        final LayerNorm and head to that layer's own state."""
        return self.lm_head(self.ln_f(residual))


def param_table(model: GPT) -> list:
    """[(module name, parameter count)] in reading order, one row per
    embedding, per part of each block, the final LayerNorm and the head."""
    rows = []
    for name, module in model.named_children():
        if name == "blocks":
            for i, block in enumerate(module):
                for part, sub in block.named_children():
                    rows.append((f"blocks.{i}.{part}", sum(p.numel() for p in sub.parameters())))
        else:
            count = sum(p.numel() for p in module.parameters())
            if count:
                rows.append((name, count))
    return rows


def count_params(config: GPTConfig) -> int:
    """The parameter count of GPT(config), by hand, without building it.

    Per block: keys, queries and values (3 C x C, no biases), the projection
    (C x C + C), the feed-forward layer (C x 4C + 4C and 4C x C + C) and two
    LayerNorms (2 C each): 12 C^2 + 10 C. Around the blocks: the token and
    position embeddings, the final LayerNorm and the head (C x V + V).
    """
    C, V, T = config.n_embd, config.vocab_size, config.block_size
    per_block = 12 * C * C + 10 * C
    return V * C + T * C + config.n_layer * per_block + 2 * C + C * V + V


# --------------------------------------------------------------------------
# The fast path. Not needed to understand the kid: it computes exactly what
# the heads above compute (tests/test_model.py checks that), with the heads'
# weights stacked so that one fused PyTorch call serves them all.


def stacked_weight(heads) -> torch.Tensor:
    """The q, k, v weights of every head in one matrix: (nh * 3 * hs, C)."""
    return torch.cat([torch.cat([h.query.weight, h.key.weight, h.value.weight]) for h in heads])


def fused_attention(heads, x):
    """All heads at once, from the very same Head weights (restacked at
    every call, so that gradients reach each Head)."""
    B, T, C = x.shape
    nh = len(heads)
    qkv = (x @ stacked_weight(heads).T).view(B, T, nh, 3, C // nh)  # (B, T, nh, 3, hs)
    q, k, v = qkv.permute(3, 0, 2, 1, 4)  # each (B, nh, T, hs)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return out.transpose(1, 2).reshape(B, T, C)  # (B, T, n_embd), heads side by side
