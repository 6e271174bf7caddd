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

The chapter shows a contrast: the pushes on logit(a) - logit(b), the kid's
top guess against what came next, read along W_a - W_b (`contrast`). And
what a neuron votes for: its output direction (its column of the
feed-forward's second Linear) read the same way, W gamma (`neuron_votes`).
Both count only direct effects: what a part changes in a later layer's
input is credited to that later layer.
"""

import inspect
import textwrap

import numpy as np
import torch
from torch.nn import functional as F

from tinyllm import model as model_code
from tinyllm import sample as sample_code
from tinyllm.explain import glyph
from tinyllm.trace import STREAM, trace

TOP_CONTEXTS = 5  # validation contexts kept per neuron
LOOKS = 3  # the positions kept per head and position: where it looked most


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
            looks=looks(torch.stack([head["weights"][0] for head in block["heads"]])),
        )
        for block in seen["blocks"]
    ]
    flow["final"] = flow["blocks"][-1]["after"] if flow["blocks"] else flow["embedding"]
    flow["ln_f"] = seen["ln_f"][0]
    flow["logits"] = seen["logits"][0]
    flow["probs"] = F.softmax(flow["logits"], dim=-1)
    return to_numpy(flow)


def looks(weights: torch.Tensor, top: int = LOOKS) -> dict:
    """Where each head looked from each position: the `top` keys with the
    largest weights, {"where": (n_head, T, top) positions, "weight": their
    weights}, largest first. Only these are kept, not every head's T x T
    weights: the app caches many texts' flows at once."""
    k = min(top, weights.shape[-1])
    weight, where = weights.topk(k, dim=-1)
    return dict(where=where, weight=weight)


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
BLOCK_STAGES = [  # key, label, short label (for a narrow chart's axis), kind
    ("ln1", "LayerNorm 1", "LayerNorm 1", "norm"),
    ("heads", "the heads, side by side", "heads", "heads"),
    ("attn", "attention adds (concat, projection)", "+ attention", "add"),
    ("ln2", "LayerNorm 2", "LayerNorm 2", "norm"),
    ("hidden", "feed-forward: widen, ReLU", "neurons", "neurons"),
    ("ffwd", "feed-forward adds (narrow back)", "+ feed-forward", "add"),
]


def stages(n_layer: int) -> list:
    """[{key, label, short, kind, block}] for every stage of a model with n_layer blocks."""
    out = [dict(key="embedding", label="token + position embedding", short="embedding", kind="embed", block=None)]
    for b in range(n_layer):
        out += [
            dict(key=key, label=f"block {b}: {label}", short=f"{b} · {short}", kind=kind, block=b)
            for key, label, short, kind in BLOCK_STAGES
        ]
    out += [
        dict(key="ln_f", label="final LayerNorm", short="final LayerNorm", kind="norm", block=None),
        dict(key="logits", label="head: logits", short="logits", kind="out", block=None),
        dict(key="probs", label="softmax: the next character", short="softmax", kind="out", block=None),
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


def layer_norm_of(flow: dict, stage: dict):
    """(gain, bias, eps) of the LayerNorm a "norm" stage runs."""
    return flow["norms"]["ln_f" if stage["block"] is None else f"{stage['block']}.{stage['key']}"]


def stage_strips(flow: dict, stage: dict, pos: int) -> list:
    """[(name, vector)]: the aligned strips that show what a stage did at
    `pos`, in order. An addition: the stream before, what was added, the
    stream after. A LayerNorm: what it read, that vector normalised (mean 0,
    spread 1), then after the gain and the bias. The embedding: the
    character's vector, the position's, their sum (where the stream starts)."""
    key, vector = stage["key"], stage_vector(flow, stage, pos) if stage["kind"] != "out" else None
    if stage["kind"] == "embed":
        return [("token", flow["token"][pos]), ("+ position", flow["position"][pos]), ("= stream", vector)]
    if stage["kind"] == "norm":
        before = stage_input(flow, stage, pos)
        _, _, eps = layer_norm_of(flow, stage)
        normalised = (before - before.mean()) / np.sqrt(before.var() + eps)  # biased variance, as torch's
        return [("read", before), ("normalised", normalised), ("× gain + bias", vector)]
    if stage["kind"] == "add":
        before = stage_input(flow, stage, pos)
        added = "attention adds" if key == "attn" else "feed-forward adds"
        return [("stream before", before), (added, vector), ("stream after", before + vector)]
    if stage["kind"] == "heads":
        return [("heads side by side", vector)]
    if stage["kind"] == "neurons":
        return [("neurons after ReLU", vector)]
    return []


def colour_limit(flow: dict, pos: int) -> float:
    """The largest |value| of every strip of every stage at `pos`: one
    colour scale for the whole trip, so that a colour means the same number
    at every stage and a change shows as a change of colour."""
    return (
        max(
            (
                float(np.abs(v).max())
                for stage in stages(len(flow["blocks"]))
                for _, v in stage_strips(flow, stage, pos)
            ),
            default=1.0,
        )
        or 1.0
    )


def describe_stage(flow: dict, stage: dict, pos: int) -> dict:
    """The numbers the chapter shows for one stage at one position: the
    strips, each with its length (norm), mean and spread; for an addition
    the stream's length before and after, and the share the addition is."""
    strips = stage_strips(flow, stage, pos)
    view = dict(
        strips=[
            dict(name=name, vector=v, norm=float(np.linalg.norm(v)), mean=float(v.mean()), spread=float(v.std()))
            for name, v in strips
        ]
    )
    if stage["kind"] == "add":
        before, added, after = view["strips"]
        view.update(
            stream_before=before["norm"],
            added=added["norm"],
            stream_after=after["norm"],
            share=added["norm"] / max(before["norm"], 1e-12),
        )
    elif stage["kind"] == "neurons":
        vector = strips[0][1]
        view.update(fired=int((vector > 0).sum()), of=int(vector.size))
    return view


def stream_overview(flow: dict, pos: int) -> list:
    """One row per stage: the residual stream's length (norm) at `pos` as it
    stands after that stage (a LayerNorm or the heads read the stream and do
    not change it), and, at an addition, the length of what was added."""
    rows, stream = [], None
    for stage in stages(len(flow["blocks"])):
        added = None
        if stage["key"] == "embedding":
            stream = flow["embedding"][pos]
        elif stage["kind"] == "add":
            added = stage_vector(flow, stage, pos)
            stream = stage_input(flow, stage, pos) + added
        rows.append(
            dict(
                stage=stage["label"],
                short=stage["short"],
                stream=float(np.linalg.norm(stream)),
                added=None if added is None else float(np.linalg.norm(added)),
                what=None if added is None else ("attention" if stage["key"] == "attn" else "feed-forward"),
            )
        )
    return rows


def head_looks(flow: dict, block: int, pos: int) -> list:
    """Where each head of `block` looked from `pos`: [[(position, weight)],
    per head], the largest weights first (at most LOOKS, only positions it
    could see)."""
    seen = flow["blocks"][block]["looks"]
    return [
        [(int(j), float(w)) for j, w in zip(where[pos], weight[pos]) if j <= pos and w > 0]
        for where, weight in zip(seen["where"], seen["weight"])
    ]


# The line that computes each stage: (function, text in that line). Every
# stage runs in tinyllm/model.py but the last: the model's forward pass ends
# at the logits, and the softmax is applied where the logits are used: in
# sampling (tinyllm/sample.py), and inside the loss (F.cross_entropy).
STAGE_CODE = {
    "embedding": (model_code.GPT.forward, "self.token_embedding(idx) + self.position_embedding(pos)"),
    "ln1": (model_code.Block.forward, "self.ln1(x)"),
    "heads": (model_code.MultiHeadAttention.forward, "torch.cat([head(x) for head in self.heads]"),
    "attn": (model_code.Block.forward, "x = x + self.attn(self.ln1(x))"),
    "ln2": (model_code.Block.forward, "self.ln2(x)"),
    "hidden": (model_code.FeedForward.__init__, "nn.ReLU()"),
    "ffwd": (model_code.Block.forward, "x = x + self.ffwd(self.ln2(x))"),
    "ln_f": (model_code.GPT.forward, "self.ln_f(x)"),
    "logits": (model_code.GPT.forward, "logits = self.lm_head(self.ln_f(x))"),
    "probs": (sample_code.filter_probs, "probs = F.softmax(logits, dim=-1)"),
}


def stage_code(key: str) -> tuple:
    """(source of the function that computes stage `key`, the index of its
    line, the file it is in, relative to the repository: tinyllm/....py)."""
    function, needle = STAGE_CODE[key]
    lines = textwrap.dedent(inspect.getsource(function)).splitlines()
    line = next(i for i, text in enumerate(lines) if needle in text)
    return "\n".join(lines), line, f"tinyllm/{function.__module__.rsplit('.', 1)[-1]}.py"


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


def pushes_along(model, flow: dict, pos: int, row: np.ndarray) -> tuple:
    """[(part name, push)] of every part on row . LayerNorm_f(stream) at
    `pos`, with the final LayerNorm's spread s held at its value here:
    push = (row * gamma / s) . (part - mean(part)). Also the constant row . beta."""
    ln = model.ln_f
    final = flow["final"][pos]
    spread = float(np.sqrt(final.var() + ln.eps))  # what LayerNorm divides by (biased variance, as torch's)
    gamma, beta = ln.weight.detach().float().numpy(), ln.bias.detach().float().numpy()
    direction = row * gamma / spread
    pushes = [(name, float(direction @ (v[pos] - v[pos].mean()))) for name, _, v in parts(flow)]
    return pushes, float(row @ beta), spread


def logit_attribution(model, flow: dict, pos: int, char_id: int) -> dict:
    """How much each part pushed the logit of `char_id` at `pos` (see the module's docstring)."""
    row = model.lm_head.weight[char_id].detach().float().numpy()
    pushes, constant, spread = pushes_along(model, flow, pos, row)
    constant += model.lm_head.bias[char_id].item()
    return dict(
        char=glyph(flow["vocab"][char_id]),
        pushes=pushes,
        constant=constant,
        total=sum(p for _, p in pushes) + constant,
        logit=float(flow["logits"][pos, char_id]),
        spread=spread,
    )


def group_of(name: str) -> str:
    """The group a part's push is shown in: the embeddings, a block's attention
    (its heads and the projection's bias), a block's feed-forward layer."""
    if name.endswith("embedding"):
        return "embeddings"
    block = " ".join(name.split()[:2])
    return f"{block} feed-forward" if name.endswith("feed-forward") else f"{block} attention"


def contrast_pair(flow: dict, pos: int, next_id: int | None) -> tuple:
    """(a, b, why): the kid's top guess a, against what came next b; where
    the top guess is what came next (or nothing is known to come next), b
    is the runner-up. why: "next" or "runner-up"."""
    order = np.argsort(-flow["logits"][pos], kind="stable")
    a = int(order[0])
    if next_id is not None and int(next_id) != a:
        return a, int(next_id), "next"
    return a, int(order[1]) if order.size > 1 else a, "runner-up"


def contrast(model, flow: dict, pos: int, a: int, b: int) -> dict:
    """Why the kid scored `a` above `b` at `pos`: each part's push on
    logit(a) - logit(b), read along the difference of their lm_head rows
    (the linearisation of the module's docstring). The pushes, plus the
    constant (W_a - W_b) . beta + (b_a - b_b), sum to logit(a) - logit(b).
    groups: [{group, push, parts: [(name, push)]}] in the stream's order."""
    weight, bias = model.lm_head.weight.detach().float().numpy(), model.lm_head.bias.detach().float().numpy()
    pushes, constant, spread = pushes_along(model, flow, pos, weight[a] - weight[b])
    constant += float(bias[a] - bias[b])
    groups = {}
    for name, push in pushes:
        groups.setdefault(group_of(name), []).append((name, push))
    return dict(
        a=a,
        b=b,
        pushes=pushes,
        groups=[dict(group=g, push=sum(p for _, p in members), parts=members) for g, members in groups.items()],
        constant=constant,
        total=sum(p for _, p in pushes) + constant,
        difference=float(flow["logits"][pos, a] - flow["logits"][pos, b]),
        probs=(float(flow["probs"][pos, a]), float(flow["probs"][pos, b])),
        spread=spread,
    )


# --------------------------------------------------------------------------
# What a neuron votes for


def neuron_votes(model, block: int, neuron: int) -> np.ndarray:
    """What feed-forward neuron `neuron` of `block` votes for: its output
    direction (its column of the layer's second Linear: what one unit of its
    activation adds to the stream) read through the final LayerNorm's gain
    and lm_head, linearised (the LayerNorm's centring and its division by
    the stream's spread left out). One number per character: how much a unit
    of the neuron's activation pushes that character's logit, before that division."""
    column = model.blocks[block].ffwd.net[2].weight[:, neuron].detach().float().numpy()  # (C,)
    gain = model.ln_f.weight.detach().float().numpy()
    return model.lm_head.weight.detach().float().numpy() @ (gain * column)  # (vocab,)


def strongest_neurons(flow: dict, block: int, pos: int, top: int) -> list:
    """[(neuron, activation)]: the neurons of `block` that fired most at `pos`, strongest first."""
    hidden = flow["blocks"][block]["hidden"][pos]
    return [(int(n), float(hidden[n])) for n in np.argsort(-hidden, kind="stable")[:top] if hidden[n] > 0]


def full_flow(model, vocab, text: str) -> dict:
    """trace_flow plus what the chapter needs beside it: each head's share of
    attention's output, the vocabulary, and every LayerNorm's gain, bias
    and eps (by "ln_f" or "block.ln1", "block.ln2")."""
    flow = split_heads(model, trace_flow(model, vocab, text))
    flow["vocab"] = list(vocab.chars)
    flow["norms"] = {
        name: (to_numpy(ln.weight), to_numpy(ln.bias), ln.eps)
        for name, ln in [("ln_f", model.ln_f)]
        + [(f"{b}.{key}", getattr(block, key)) for b, block in enumerate(model.blocks) for key in ("ln1", "ln2")]
    }
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
