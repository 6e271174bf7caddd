"""Check a learner's attention `Head` against the kid's own, step by step.

The kid's real weights (one layer, one head) go into the learner's Head,
both read the same validation text, and each step of attention is compared:
the output's shape, q/k/v, the scaled scores, the mask, the softmax, the
weighted sum. Then the learner's Head replaces every head of the kid, and
the kid's loss on the validation passages is compared.

The learner's forward is watched, not trusted: a TorchFunctionMode notes
each softmax and matrix product it makes, so the checker sees its scores
and weights however it was written. When a step differs, the output is
also compared with what each classic mistake would give, computed here
from the kid's own q, k and v; a match names the mistake.
"""

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from tinyllm.checkpoint import load_model
from tinyllm.errors import TinyLLMError
from tinyllm.exercise import HeadCodeError, build_head, describe_exception, use_heads
from tinyllm.explain import glyph
from tinyllm.runfolder import RunFolder
from tinyllm.trace import trace

TOLERANCE = 1e-5  # largest difference that still counts as the same number
LOSS_TOLERANCE = 1e-4  # the loss sums thousands of such numbers
STEPS = ["runs", "output shape", "q, k, v", "scores", "mask", "softmax", "weighted sum", "the whole kid"]


# --------------------------------------------------------------------------
# What the learner's forward does


class Recorder(TorchFunctionMode):
    """Notes every softmax (input, dim, output) and every matrix product's
    operand shapes, while the learner's forward runs."""

    PRODUCTS = {"__matmul__", "matmul", "bmm", "__rmatmul__"}

    def __init__(self):
        super().__init__()
        self.softmaxes = []
        self.products = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in self.PRODUCTS:
            shapes = [tuple(a.shape) for a in args[:2] if isinstance(a, torch.Tensor)]
            self.products.append(shapes[::-1] if name == "__rmatmul__" else shapes)
        out = func(*args, **kwargs)
        if name == "softmax" and args and isinstance(args[0], torch.Tensor):
            dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
            self.softmaxes.append((args[0], dim, out))
        return out


def attend(q, k, v, tril, scale, fill=float("-inf"), dim=-1, swap=False):
    """Attention as the kid computes it, with one knob per classic mistake.
    Returns (masked scores, weights, output)."""
    scores = (k @ q.transpose(-2, -1) if swap else q @ k.transpose(-2, -1)) * scale
    if fill is not None:
        scores = scores.masked_fill(tril == 0, fill)
    weights = F.softmax(scores, dim=dim)
    return scores, weights, weights @ v


def classic_mistakes(hs: int) -> dict:
    """name: the settings of `attend` that make that mistake."""
    right = 1 / math.sqrt(hs)
    return {
        "no_scaling": dict(scale=1.0),
        "scale_by_head_size": dict(scale=1 / hs),
        "no_mask": dict(scale=right, fill=None),
        "zero_mask": dict(scale=right, fill=0.0),
        "softmax_dim": dict(scale=right, dim=-2),
        "query_key_swapped": dict(scale=right, swap=True),
    }


MISTAKE_TITLES = {
    "no_scaling": "No scaling",
    "scale_by_head_size": "Divided by head_size, not its square root",
    "no_mask": "No mask: the future is visible",
    "zero_mask": "The mask filled with 0 instead of -inf",
    "softmax_dim": "Softmax over the wrong dimension",
    "query_key_swapped": "Query and key swapped",
    "keys_not_transposed": "Keys not transposed (or the product in the wrong order)",
    "returns_weights": "Returned the weights instead of weights @ v",
}


def biggest_gap(a, b, where=None) -> float:
    if a.shape != b.shape:
        return float("inf")
    gap = (a - b).abs()
    if where is not None:
        gap = gap[..., where]
    return gap.max().item() if gap.numel() else 0.0


def same(a, b, where=None) -> bool:
    return biggest_gap(a, b, where) <= TOLERANCE


def wrong_product(products, T: int, hs: int):
    """The first matrix product that cannot be the scores or the output, as
    (shape a, shape b), or None. Scores are (T, hs) @ (hs, T); the output
    is (T, T) @ (T, hs)."""
    good = {((T, hs), (hs, T)), ((T, T), (T, hs))}
    for shapes in products:
        if len(shapes) == 2 and (shapes[0][-2:], shapes[1][-2:]) not in good:
            return shapes
    return None


# --------------------------------------------------------------------------
# The report


@dataclass
class Report:
    layer: int
    head: int
    text: str
    head_size: int
    steps: list = field(default_factory=list)  # {"name", "status": ok | differs | not seen, "detail"}
    mistake: str | None = None  # a key of MISTAKE_TITLES, when one was recognised
    diagnosis: str = ""  # the first step that differs, in a learner's words, with numbers
    compare: dict | None = None  # one row of the learner's numbers beside the kid's
    problem: dict | None = None  # a CodeProblem: syntax, exception or structure
    loss: dict | None = None  # {"kid": ..., "yours": ..., "characters": ...}
    seconds: float = 0.0

    def add(self, name, ok, detail):
        status = "not seen" if ok is None else ("ok" if ok else "differs")
        self.steps.append(dict(name=name, status=status, detail=detail))

    @property
    def ok(self) -> bool:
        return (
            bool(self.steps)
            and self.problem is None
            and all(s["status"] != "differs" for s in self.steps)
            and len(self.steps) == len(STEPS)
        )

    @property
    def first_failure(self) -> str | None:
        return next((s["name"] for s in self.steps if s["status"] == "differs"), None)

    def to_dict(self) -> dict:
        return dict(
            ok=self.ok,
            first_failure=self.first_failure,
            layer=self.layer,
            head=self.head,
            text=self.text,
            head_size=self.head_size,
            steps=self.steps,
            mistake=self.mistake,
            title=MISTAKE_TITLES.get(self.mistake),
            diagnosis=self.diagnosis,
            compare=self.compare,
            problem=self.problem,
            loss=self.loss,
            seconds=round(self.seconds, 3),
        )


def problem_report(problem, layer: int = 0, head: int = 0) -> dict:
    """The report for code that could not even be loaded (a syntax error, say)."""
    report = Report(layer, head, text="", head_size=0, problem=problem.to_dict(), diagnosis=problem.message)
    report.add("runs", False, problem.message)
    return report.to_dict()


def format_report(report: dict) -> str:
    """The report as terminal text (the CLI prints it; the app draws the dict)."""
    lines = [
        f"Your Head against the kid's, layer {report['layer']} head {report['head']}"
        + (f", on {len(report['text'])} characters of validation text:" if report["text"] else ":")
    ]
    marks = {"ok": "ok ", "differs": "XX ", "not seen": "-- "}
    for step in report["steps"]:
        lines.append(f"  {marks[step['status']]} {step['name']:<13} {step['detail']}")
    problem = report.get("problem")
    if problem and problem.get("where"):
        lines.append("\nWhere, in your file:")
        lines += ["  " + line for line in problem["where"].splitlines()]
    if report["ok"]:
        loss = report["loss"]
        lines.append(
            f"\nAll steps match the kid's within {TOLERANCE:g}. With your Head in all its heads, "
            f"the kid's loss is {loss['yours']:.4f} (its own: {loss['kid']:.4f}). You wrote attention."
        )
    elif report["diagnosis"] and report["diagnosis"] != (problem or {}).get("message"):
        title = f"{report['title']}: " if report.get("title") else ""
        lines.append(f"\nFirst difference: {report['first_failure']}. {title}{report['diagnosis']}")
    compare = report.get("compare")
    if compare and not report["ok"]:
        lines.append(f"\n{compare['title']}")
        lines.append("  position " + " ".join(f"{c:>7}" for c in compare["chars"]))
        lines.append("  yours    " + " ".join(f"{v:>7.3f}" for v in compare["yours"]))
        lines.append("  the kid  " + " ".join(f"{v:>7.3f}" for v in compare["kid"]))
    return "\n".join(lines)


# --------------------------------------------------------------------------
# The check


def validation_texts(run_dir: Path, block_size: int) -> list:
    """The run's validation passages (corpus.json, written when training started)."""
    path = RunFolder(run_dir).corpus
    try:
        prompts = list(RunFolder.read_object(path)["prompts"])
    except (KeyError, TypeError):
        raise TinyLLMError(f"{path} is missing or damaged: the check reads its validation passages.") from None
    prompts = [p for p in prompts if isinstance(p, str) and len(p) == block_size + 1]
    if not prompts:
        raise TinyLLMError(f"{path} holds no validation passage of block_size + 1 characters.")
    return prompts


def head_input(model, layer: int, head: int, idx) -> tuple:
    """What the heads of `layer` read (the residual stream after the blocks
    below it, through that block's first LayerNorm), and each step the kid's
    Head at (layer, head) computed from it: one trace of the real kid."""
    block = trace(model, idx)["blocks"][layer]
    return block["ln1"], block["heads"][head]


def passages_loss(model, ids) -> float:
    logits, loss = model(ids[:, :-1], ids[:, 1:].contiguous())
    return loss.item()


@torch.no_grad()
def check_head(head_class, checkpoint, layer: int = 0, head: int = 0) -> dict:
    """Compare `head_class` with the kid's Head at (layer, head). Returns the
    report as a dict (see Report.to_dict); raises TinyLLMError only for
    problems outside the learner's code (a missing checkpoint, a bad layer)."""
    started = time.perf_counter()
    model, vocab, _ = load_model(checkpoint)
    cfg = model.config
    if not 0 <= layer < cfg.n_layer:
        raise TinyLLMError(f"This kid has layers 0 to {cfg.n_layer - 1}; there is no layer {layer}.")
    if not 0 <= head < cfg.n_head:
        raise TinyLLMError(f"This kid has heads 0 to {cfg.n_head - 1}; there is no head {head}.")
    passages = validation_texts(Path(checkpoint).parent, cfg.block_size)
    hs = cfg.head_size
    # A length other than head_size, so that a product in the wrong order cannot fit by chance.
    T = cfg.block_size if cfg.block_size != hs or cfg.block_size == 1 else cfg.block_size - 1
    texts = [p[:T] for p in (passages * 2)[:2]]  # two texts: a batch, as in training
    x, kid = head_input(model, layer, head, torch.tensor([vocab.encode(t) for t in texts]))
    kid_head = model.blocks[layer].attn.heads[head]
    tril = kid_head.tril[:T, :T]
    report = Report(layer, head, texts[0], hs)
    try:
        compare_steps(report, head_class, cfg, kid_head, kid, x, tril)
        if any(s["name"] == "output shape" and s["status"] == "ok" for s in report.steps):
            compare_loss(report, head_class, model, vocab, passages)
    except HeadCodeError as e:
        report.problem = e.problem.to_dict()
        report.add("runs", False, e.problem.message)
        report.diagnosis = report.diagnosis or e.problem.message
    report.seconds = time.perf_counter() - started
    return report.to_dict()


def compare_steps(report: Report, head_class, cfg, kid_head, kid: dict, x, tril):
    B, T, _ = x.shape
    hs = report.head_size
    filename = getattr(head_class, "source_file", "")
    mine = build_head(head_class, cfg, kid_head.state_dict())
    calls = {name: 0 for name in ("query", "key", "value")}
    for name in calls:
        getattr(mine, name).register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    recorder = Recorder()
    try:
        with recorder:
            out = mine(x)
    except (Exception, SystemExit) as e:
        problem = describe_exception(e, filename)
        report.problem = problem.to_dict()
        report.add("runs", False, problem.message)
        shapes = wrong_product(recorder.products, T, hs)
        if shapes:
            report.mistake = "keys_not_transposed"
            report.diagnosis = (
                f"The scores must be one number per query and key, (B, T, T): q {(B, T, hs)} @ "
                f"k.transpose(-2, -1) {(B, hs, T)}. Your code multiplied {shapes[0]} by "
                f"{shapes[1]}."
            )
        else:
            report.diagnosis = problem.message
        return
    report.add("runs", True, f"forward ran on {B} texts of {T} characters")

    # 1. the output's shape
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (B, T, hs):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        report.add("output shape", False, f"{shape}, expected {(B, T, hs)}")
        if isinstance(out, torch.Tensor) and tuple(out.shape) == (B, T, T):
            report.mistake = "returns_weights"
            report.diagnosis = (
                f"Your forward returns a {(B, T, T)} tensor: the attention weights. The head's "
                f"output is the weighted sum of the values, weights @ v: {(B, T, hs)}."
            )
        else:
            report.diagnosis = (
                f"forward must return one vector of head_size = {hs} numbers per position, "
                f"{(B, T, hs)}; yours returned {shape}."
            )
        return
    report.add("output shape", True, f"{(B, T, hs)}")

    # 2. q, k, v
    missing = [name for name, n in calls.items() if n == 0]
    if missing:
        report.add("q, k, v", False, "never called: " + ", ".join(f"self.{m}" for m in missing))
        report.diagnosis = (
            f"Your forward never calls {', '.join(f'self.{m}(x)' for m in missing)}: every "
            "position needs its query, key and value."
        )
        return
    report.add("q, k, v", True, "self.query, self.key and self.value each read x")

    visible = tril.bool()
    row = min(T - 1, 5)  # a row with both a past and a future to show
    softmax = next((s for s in reversed(recorder.softmaxes) if tuple(s[0].shape) == (B, T, T)), None)
    if softmax is None:
        for name in ("scores", "mask", "softmax"):
            report.add(name, None, "no softmax over a (B, T, T) tensor was seen: judged by the output")
    else:
        scores, dim, weights = softmax
        compare_scores(report, kid, scores, visible, row)
        compare_mask(report, kid, scores, weights, visible, row)
        compare_softmax(report, kid, weights, row)
    gap = biggest_gap(out, kid["out"])
    report.add(
        "weighted sum",
        gap <= TOLERANCE,
        f"the output matches the kid's within {gap:.1e}"
        if gap <= TOLERANCE
        else f"the output differs from the kid's by up to {gap:.3g}",
    )
    if report.first_failure:
        name_the_mistake(report, kid, out, tril, row, softmax)


def chars_of(report, n):
    return [glyph(c) for c in report.text[:n]]


def compare_row(report, title, yours, kid, row):
    n = min(len(kid), row + 5)
    report.compare = dict(
        title=title,
        row=row,
        chars=chars_of(report, n),
        yours=[round(v, 4) for v in yours[:n]],
        kid=[round(v, 4) for v in kid[:n]],
    )


def compare_scores(report, kid, scores, visible, row):
    gap = biggest_gap(scores, kid["scores"], visible)
    if gap <= TOLERANCE:
        report.add("scores", True, f"q @ kᵀ / √{report.head_size} matches the kid's within {gap:.1e}")
        return
    ratio = (scores[..., visible].abs().mean() / kid["scores"][..., visible].abs().mean()).item()
    report.add(
        "scores", False, f"differ from the kid's by up to {gap:.3g} (yours are {ratio:.2f}× as large on average)"
    )


def compare_mask(report, kid, scores, weights, visible, row):
    hidden = ~visible
    if not hidden.any():
        report.add("mask", True, "one position: no future to hide")
        return
    future_weight = weights[..., hidden].abs().max().item()
    if future_weight <= TOLERANCE:
        report.add("mask", True, f"the {int(hidden.sum())} future cells get weight 0")
        return
    report.add("mask", False, f"future cells get weight (up to {future_weight:.2f})")


def compare_softmax(report, kid, weights, row):
    rows = (weights.sum(-1) - 1).abs().max().item()
    gap = biggest_gap(weights, kid["weights"])
    if rows <= TOLERANCE and gap <= TOLERANCE:
        report.add("softmax", True, f"every row sums to 1; the weights match the kid's within {gap:.1e}")
    elif rows > TOLERANCE:
        report.add("softmax", False, f"rows do not sum to 1 (row {row} sums to {weights[0, row].sum():.3f})")
    else:
        report.add("softmax", False, f"rows sum to 1, but the weights differ from the kid's by up to {gap:.3g}")


def name_the_mistake(report, kid, out, tril, row, softmax):
    """Which classic mistake gives exactly the learner's output? Say so, with the numbers."""
    hs = report.head_size
    q, k, v = kid["q"], kid["k"], kid["v"]
    for mistake, knobs in classic_mistakes(hs).items():
        scores, weights, wrong_out = attend(q, k, v, tril, **knobs)
        if same(out, wrong_out):
            report.mistake = mistake
            report.diagnosis = explain(mistake, report, kid, weights, row)
            compare_row(
                report,
                f"Row {row} (the character {glyph(report.text[row])!r} looking back): "
                "your attention weights beside the kid's",
                weights[0, row].tolist(),
                kid["weights"][0, row].tolist(),
                row,
            )
            return
    if softmax is not None:
        weights = softmax[2]
        compare_row(
            report,
            f"Row {row}: your attention weights beside the kid's",
            weights[0, row].tolist(),
            kid["weights"][0, row].tolist(),
            row,
        )
    else:
        compare_row(
            report,
            f"Position {row}: the first numbers of your output beside the kid's",
            out[0, row].tolist(),
            kid["out"][0, row].tolist(),
            row,
        )
    step = report.first_failure
    report.diagnosis = {
        "scores": "Your scores are not q @ kᵀ / √head_size. Check each factor of step 2.",
        "mask": "Future positions still get weight: hide them with -inf where tril is 0 (step 3).",
        "softmax": "The weights are not a softmax of the scores over the last dimension (step 4).",
        "weighted sum": "Your weights may be right, but the output is not weights @ v (step 5).",
    }.get(step, "Compare your steps with the comments in the template.")


def explain(mistake, report, kid, weights, row) -> str:
    """One mistake in a learner's words, with this text's own numbers."""
    hs = report.head_size
    root = math.sqrt(hs)
    if mistake == "no_scaling":
        return (
            f"Your scores are √{hs} = {root:.2f} times too large: divide q @ kᵀ by math.sqrt(head_size). "
            f"Unscaled, row {row}'s largest weight is {weights[0, row].max():.2f} instead of "
            f"{kid['weights'][0, row].max():.2f}: softmax grows too sure of itself."
        )
    if mistake == "scale_by_head_size":
        return (
            f"You divided by head_size ({hs}) instead of its square root (√{hs} = {root:.2f}): your scores are "
            f"{root:.2f} times too small and the weights too flat (row {row}'s largest: "
            f"{weights[0, row].max():.2f}, the kid's {kid['weights'][0, row].max():.2f})."
        )
    if mistake == "no_mask":
        future = weights[0, row, row + 1 :].sum().item()
        return (
            f"Position {row} attends to the future: {future:.0%} of its weight goes to positions after it. "
            "Hide them with scores.masked_fill(self.tril[:T, :T] == 0, float('-inf'))."
        )
    if mistake == "zero_mask":
        future = weights[0, row, row + 1 :].sum().item()
        return (
            f"You filled the future with 0 instead of -inf. exp(0) = 1, so position {row} still gives "
            f"{future:.0%} of its weight to later positions; exp(-inf) = 0 hides them."
        )
    if mistake == "softmax_dim":
        return (
            f"Softmax ran down the columns (dim=-2), not along the rows: your columns sum to 1, and row {row} "
            f"sums to {weights[0, row].sum():.2f}. Use dim=-1: each query's weights over the keys sum to 1."
        )
    if mistake == "query_key_swapped":
        return (
            "Your score for query i and key j is key_i · query_j: query and key are swapped (k @ qᵀ is the "
            "transpose of q @ kᵀ). The row is the position asking, so q comes first."
        )
    return ""


def compare_loss(report, head_class, model, vocab, passages):
    """The learner's Head in every head of the kid: the loss on the validation passages."""
    ids = torch.tensor([vocab.encode(p) for p in passages])
    kid_loss = passages_loss(model.set_fast(False), ids)  # the readable path, as for yours
    try:
        use_heads(model, head_class)
        your_loss = passages_loss(model, ids)
    except HeadCodeError:
        raise
    except (Exception, SystemExit) as e:
        problem = describe_exception(e, getattr(head_class, "source_file", ""))
        report.add("the whole kid", False, f"the kid did not run with your Head: {problem.message}")
        report.problem = report.problem or problem.to_dict()
        return
    if not math.isfinite(your_loss):
        report.add("the whole kid", False, f"with your Head the kid's loss is {your_loss} (its own {kid_loss:.4f})")
        return
    report.loss = dict(kid=round(kid_loss, 6), yours=round(your_loss, 6), characters=ids[:, 1:].numel())
    gap = abs(your_loss - kid_loss)
    report.add(
        "the whole kid",
        gap <= LOSS_TOLERANCE,
        f"loss on {ids[:, 1:].numel()} validation characters with your Head in all "
        f"{model.config.n_layer * model.config.n_head} heads: {your_loss:.4f} (the kid's own: {kid_loss:.4f})",
    )


@torch.no_grad()
def require_attention(head_class, config, seed: int = 0):
    """Refuse a Head that does not compute the kid's attention. Every chapter
    reads a checkpoint with the kid's own Head, so a run trained with another
    computation would be shown wrongly. Checked on random weights, larger than
    at initialisation so that every mistake shows."""
    from tinyllm.model import Head

    generator = torch.Generator().manual_seed(seed)
    reference = Head(config)
    for p in reference.parameters():
        p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    mine = build_head(head_class, config, reference.state_dict())
    T = config.block_size
    x = torch.randn(2, T, config.n_embd, generator=generator)
    try:
        out = mine(x)
    except (Exception, SystemExit) as e:
        raise HeadCodeError(describe_exception(e, getattr(head_class, "source_file", ""))) from None
    if not isinstance(out, torch.Tensor) or out.shape != reference(x).shape or not same(out, reference(x)):
        raise TinyLLMError(
            "This Head does not compute attention as the kid's does yet, and the chapters read "
            "every run with the kid's Head. Find the step that differs with: "
            "python -m tinyllm check-head PATH"
        )
