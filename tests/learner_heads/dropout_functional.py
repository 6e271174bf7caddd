"""Expect: pass. F.dropout with the training flag."""

# ruff: noqa: F401, F821, F841 (a learner's file, as written: unused imports, names it lacks)
import math

import torch
import torch.nn as nn
from torch.nn import functional as F


class Head(nn.Module):
    def __init__(self, config):
        super().__init__()
        head_size = config.n_embd // config.n_head
        self.key = nn.Linear(config.n_embd, head_size, bias=False)
        self.query = nn.Linear(config.n_embd, head_size, bias=False)
        self.value = nn.Linear(config.n_embd, head_size, bias=False)
        ones = torch.ones(config.block_size, config.block_size)
        self.register_buffer("tril", torch.tril(ones), persistent=False)

    def forward(self, x):
        B, T, C = x.shape
        k = self.key(x)  # (B, T, hs)
        q = self.query(x)  # (B, T, hs)
        v = self.value(x)  # (B, T, hs)
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])
        masked = scores.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        weights = F.dropout(F.softmax(masked, dim=-1), 0.1, training=self.training)
        return weights @ v
