"""Expect: pass. A loop over positions: each one looks back at itself and the past."""

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
        outs = []
        for t in range(T):
            s = q[:, t : t + 1] @ k[:, : t + 1].transpose(-2, -1) / math.sqrt(k.shape[-1])  # (B, 1, t+1)
            w = torch.exp(s) / torch.exp(s).sum(-1, keepdim=True)
            outs.append(w @ v[:, : t + 1])  # (B, 1, hs)
        return torch.cat(outs, dim=1)
