"""One text's trip through the whole kid: every stage's vector, what each
block added to the residual stream, the feed-forward neurons, and why the
kid predicted what it did.

`trace_flow` takes every intermediate of one text's forward pass from the
one trace of the real model (tinyllm/trace.py). The chapter "The whole kid"
draws it; tests re-derive it by a second path.

Direct logit attribution. The final LayerNorm divides the residual stream
by its spread s; holding s fixed at its value for this position (the
standard linearisation), the logit of character c is a sum over the parts
that were added to the stream:

    logit_c = sum over parts p of  (W_c * gamma / s) . (p - mean(p))  +  (W_c . beta + b_c)

The parts are the token and position embeddings, each head of each block
(its output through its slice of the projection), each block's projection
bias, and each block's feed-forward layer. With s at its actual value the
sum is exact: the parts add up to the logit.
"""

import inspect
import textwrap

import numpy as np
import torch
from torch.nn import functional as F

from tinyllm import model as model_code
from tinyllm.explain import glyph
from tinyllm.trace import STREAM, trace

TOP_CONTEXTS = 5  # validation contexts kept per neuron


# --------------------------------------------------------------------------
# The trace


def trace_flow(model, vocab, text: str) -> dict:
    """Every intermediate of the forward pass on `text` (its last block_size
    characters), as float32 numpy arrays indexed [..., position, dim]."""
    text = text[-model.config.block_size :]
    seen = trace(model, torch.tensor([vocab.encode(text)]))
    flow = dict(text=text, token=seen["token"][0], position=seen["position"], embedding=seen["embedding"][0])
    flow["blocks"] = [
        dict(
            {key: block[key][0] for key in STREAM},
            heads=torch.stack([head["out"][0] for head in block["heads"]]),  # (n_head, T, hs)
        )
        for block in seen["blocks"]
    ]
    flow["final"] = flow["blocks"][-1]["after"] if flow["blocks"] else flow["embedding"]
    flow["ln_f"] = seen["ln_f"][0]
    flow["logits"] = seen["logits"][0]
    flow["probs"] = F.softmax(flow["logits"], dim=-1)
    return to_numpy(flow)


def to_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().float().numpy()
    if isinstance(value, dict):
        return {k: to_numpy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_numpy(v) for v in value]
    return value


# --------------------------------------------------------------------------
# The stages, in the order the forward pass runs them

# kind: "embed" (the stream starts), "norm" (LayerNorm), "heads" (side by side),
# "add" (something added to the stream), "neurons", "out" (logits, probabilities)
BLOCK_STAGES = [
    ("ln1", "LayerNorm 1", "norm"),
    ("heads", "the heads, side by side", "heads"),
    ("attn", "attention adds (concat, projection)", "add"),
    ("ln2", "LayerNorm 2", "norm"),
    ("hidden", "feed-forward: widen, ReLU", "neurons"),
    ("ffwd", "feed-forward adds (narrow back)", "add"),
]


def stages(n_layer: int) -> list:
    """[{key, label, kind, block}] for every stage of a model with n_layer blocks."""
    out = [dict(key="embedding", label="token + position embedding", kind="embed", block=None)]
    for b in range(n_layer):
        out += [dict(key=key, label=f"block {b}: {label}", kind=kind, block=b) for key, label, kind in BLOCK_STAGES]
    out += [
        dict(key="ln_f", label="final LayerNorm", kind="norm", block=None),
        dict(key="logits", label="head: logits", kind="out", block=None),
        dict(key="probs", label="softmax: the next character", kind="out", block=None),
    ]
    return out


def stage_vector(flow: dict, stage: dict, pos: int) -> np.ndarray:
    if stage["block"] is None:
        return flow[stage["key"]][pos]
    value = flow["blocks"][stage["block"]][stage["key"]]
    if stage["key"] == "heads":
        return value[:, pos].reshape(-1)  # the heads' outputs side by side: what the projection reads
    return value[pos]


def stage_input(flow: dict, stage: dict, pos: int) -> np.ndarray | None:
    """What a LayerNorm read, or the stream an addition was added to."""
    if stage["key"] == "ln_f":
        return flow["final"][pos]
    if stage["key"] not in ("ln1", "attn", "ln2", "ffwd"):
        return None
    block = flow["blocks"][stage["block"]]
    return (block["before"] if stage["key"] in ("ln1", "attn") else block["mid"])[pos]


def describe_stage(flow: dict, stage: dict, pos: int) -> dict:
    """The numbers the chapter shows for one stage at one position."""
    vector = stage_vector(flow, stage, pos)
    view = dict(vector=vector, norm=float(np.linalg.norm(vector)))
    before = stage_input(flow, stage, pos)
    if stage["kind"] == "norm":
        view.update(
            mean_before=float(before.mean()),
            spread_before=float(before.std()),
            mean_after=float(vector.mean()),
            spread_after=float(vector.std()),
        )
    elif stage["kind"] == "add":
        after = before + vector
        view.update(
            stream_before=float(np.linalg.norm(before)),
            stream_after=float(np.linalg.norm(after)),
            share=float(np.linalg.norm(vector) / max(np.linalg.norm(before), 1e-12)),
        )
    elif stage["kind"] == "neurons":
        view.update(fired=int((vector > 0).sum()), of=int(vector.size))
    return view


# The line of tinyllm/model.py that computes each stage: (function, text in that line)
STAGE_CODE = {
    "embedding": (model_code.GPT.forward, "self.token_embedding(idx) + self.position_embedding(pos)"),
    "ln1": (model_code.Block.forward, "self.ln1(x)"),
    "heads": (model_code.MultiHeadAttention.forward, "torch.cat([head(x) for head in self.heads]"),
    "attn": (model_code.MultiHeadAttention.forward, "return self.dropout(self.proj(out))"),
    "ln2": (model_code.Block.forward, "self.ln2(x)"),
    "hidden": (model_code.FeedForward.__init__, "nn.ReLU()"),
    "ffwd": (model_code.Block.forward, "x = x + self.ffwd(self.ln2(x))"),
    "ln_f": (model_code.GPT.forward, "self.ln_f(x)"),
    "logits": (model_code.GPT.forward, "logits = self.lm_head(self.ln_f(x))"),
    "probs": (model_code.GPT.forward, "logits = self.lm_head(self.ln_f(x))"),
}


def stage_code(key: str) -> tuple:
    """(source of the function that computes stage `key`, the index of its line)."""
    function, needle = STAGE_CODE[key]
    lines = textwrap.dedent(inspect.getsource(function)).splitlines()
    line = next(i for i, text in enumerate(lines) if needle in text)
    return "\n".join(lines), line


# --------------------------------------------------------------------------
# Why this prediction: direct logit attribution


def parts(flow: dict) -> list:
    """[(name, block or None, vectors (T, C))]: everything that was added to
    the residual stream, in order. They sum to the final stream."""
    out = [("token embedding", None, flow["token"]), ("position embedding", None, flow["position"])]
    for b, block in enumerate(flow["blocks"]):
        out += [(f"block {b} head {h}", b, head_out) for h, head_out in enumerate(block["head_parts"])]
        out += [(f"block {b} attention bias", b, block["attn_bias"]), (f"block {b} feed-forward", b, block["ffwd"])]
    return out


def split_heads(model, flow: dict) -> dict:
    """Each head's share of what attention added: its output through its own
    slice of the projection's columns (the projection is linear, so the
    shares and the bias sum to attention's output)."""
    hs = model.config.head_size
    for block, module in zip(flow["blocks"], model.blocks):
        weight = module.attn.proj.weight.detach().float().numpy()  # (C, C): out x in
        block["head_parts"] = [
            block["heads"][h] @ weight[:, h * hs : (h + 1) * hs].T for h in range(len(block["heads"]))
        ]
        block["attn_bias"] = np.broadcast_to(module.attn.proj.bias.detach().float().numpy(), block["attn"].shape)
    return flow


def logit_attribution(model, flow: dict, pos: int, char_id: int) -> dict:
    """How much each part pushed the logit of `char_id` at `pos` (see the module's docstring)."""
    ln = model.ln_f
    final = flow["final"][pos]
    spread = float(np.sqrt(final.var() + ln.eps))  # what LayerNorm divides by (biased variance, as torch's)
    gamma, beta = ln.weight.detach().float().numpy(), ln.bias.detach().float().numpy()
    row = model.lm_head.weight[char_id].detach().float().numpy()
    direction = row * gamma / spread
    pushes = [(name, float(direction @ (v[pos] - v[pos].mean()))) for name, _, v in parts(flow)]
    constant = float(row @ beta + model.lm_head.bias[char_id].item())
    return dict(
        char=glyph(flow["vocab"][char_id]),
        pushes=pushes,
        constant=constant,
        total=sum(p for _, p in pushes) + constant,
        logit=float(flow["logits"][pos, char_id]),
        spread=spread,
    )


def full_flow(model, vocab, text: str) -> dict:
    """trace_flow plus what the chapter needs beside it: each head's share of
    attention's output, and the vocabulary."""
    flow = split_heads(model, trace_flow(model, vocab, text))
    flow["vocab"] = list(vocab.chars)
    return flow


# --------------------------------------------------------------------------
# The neurons' favourite contexts (export time)


def neuron_contexts(model, vocab, text: str, top: int = TOP_CONTEXTS) -> list:
    """For every feed-forward neuron, the positions of `text` where it fires
    most: [block][neuron] -> [[offset in text, activation], ...], strongest
    first. The text is read in consecutive windows of block_size, so the
    character at offset o saw text[o - o % block_size : o + 1]."""
    T = model.config.block_size
    usable = len(text) // T * T
    if usable == 0:
        return []
    ids = torch.tensor(vocab.encode(text[:usable])).view(-1, T)
    contexts = []
    for block in trace(model, ids, heads=False, keep_only=("hidden",))["blocks"]:
        hidden = block["hidden"].reshape(usable, -1)  # (characters, 4 C)
        values, offsets = hidden.topk(min(top, usable), dim=0)  # (top, 4 C)
        contexts.append(
            [
                [[int(o), float(f"{v:.4g}")] for o, v in zip(offsets[:, n].tolist(), values[:, n].tolist())]
                for n in range(hidden.shape[1])
            ]
        )
    return contexts
