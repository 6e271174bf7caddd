"""Check a learner's attention `Head` against the kid's own, step by step.

The kid's real weights (one layer, one head) go into the learner's Head,
both read the same validation text, and each step of attention is compared:
the output's shape, q/k/v, the scaled scores, the mask, the softmax, the
weighted sum. The same comparison runs again on a text shorter than the
block (the kid reads those while it writes its first characters). Then the
learner's Head replaces every head of the kid, and the kid's loss on the
validation passages is compared.

The learner's forward is watched, not trusted: a TorchFunctionMode notes
each softmax and matrix product it makes, so the checker sees its masked
scores and weights however it was written. Scores are compared where the
learner left them visible (before their mask, in effect); the mask step
then asks which cells they hid. When a step differs, the mistake is named:
from what the step saw (a scale, a mask upside down, the softmax's dim), or
because the output is exactly what a classic mistake gives, computed here
from the kid's own q, k and v.
"""

import math
import re
import signal
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from tinyllm.checkpoint import load_model
from tinyllm.errors import TinyLLMError
from tinyllm.exercise import (
    LINEARS,
    CodeProblem,
    HeadCodeError,
    build_head,
    describe_exception,
    learner_frames,
    load_head_class,
    use_heads,
)
from tinyllm.explain import glyph
from tinyllm.runfolder import RunFolder
from tinyllm.trace import trace

TOLERANCE = 1e-5  # largest difference that still counts as the same number
LOSS_TOLERANCE = 1e-4  # the loss sums thousands of such numbers
HIDDEN = 1e-12  # a softmax weight below this is a hidden cell: exp(-inf), or of a large negative number
SEEN = 1e-6  # a weight above this is a cell the kid really looks at
STEPS = [
    "runs",
    "output shape",
    "q, k, v",
    "scores",
    "mask",
    "softmax",
    "weighted sum",
    "a shorter text",
    "the whole kid",
]


# --------------------------------------------------------------------------
# What the learner's forward does


class Recorder(TorchFunctionMode):
    """Notes, while the learner's forward runs, every softmax (input, dim,
    output), every matrix product's operand shapes, and the name of every
    function called (to see PyTorch's fused attention)."""

    PRODUCTS = {"__matmul__", "matmul", "bmm", "__rmatmul__"}

    def __init__(self):
        super().__init__()
        self.softmaxes = []
        self.products = []
        self.names = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        self.names.add(name)
        if name in self.PRODUCTS:
            shapes = [tuple(a.shape) for a in args[:2] if isinstance(a, torch.Tensor)]
            self.products.append(shapes[::-1] if name == "__rmatmul__" else shapes)
        out = func(*args, **kwargs)
        if name == "softmax" and args and isinstance(args[0], torch.Tensor):
            dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
            self.softmaxes.append((args[0], dim, out))
        return out


def attend(q, k, v, scale, fill=float("-inf"), dim=-1, swap=False, after=False):
    """Attention as the kid computes it, with one knob per classic mistake.
    Returns (scores before the mask, weights, output)."""
    T = q.shape[-2]
    hidden = torch.tril(torch.ones(T, T)) == 0
    scores = (k @ q.transpose(-2, -1) if swap else q @ k.transpose(-2, -1)) * scale
    masked = scores if fill is None or after else scores.masked_fill(hidden, fill)
    weights = F.softmax(masked, dim=dim)
    if after:
        weights = weights.masked_fill(hidden, 0.0)
    return scores, weights, weights @ v


def classic_mistakes(hs: int, n_embd: int) -> dict:
    """name: the settings of `attend` that make that mistake (those whose
    output is finite, so that an output can be recognised as theirs)."""
    right = 1 / math.sqrt(hs)
    return {
        "no_scaling": dict(scale=1.0),
        "scale_by_head_size": dict(scale=1 / hs),
        "scale_by_n_embd": dict(scale=1 / math.sqrt(n_embd)),
        "no_mask": dict(scale=right, fill=None),
        "zero_mask": dict(scale=right, fill=0.0),
        "mask_after_softmax": dict(scale=right, after=True),
        "softmax_dim": dict(scale=right, dim=-2),
        "query_key_swapped": dict(scale=right, swap=True),
    }


MISTAKE_TITLES = {
    "no_scaling": "No scaling",
    "scale_by_head_size": "Divided by head_size, not its square root",
    "scale_by_n_embd": "Divided by √n_embd, not √head_size",
    "no_mask": "No mask: the future is visible",
    "zero_mask": "The mask filled with 0 instead of -inf",
    "mask_after_softmax": "The mask after the softmax",
    "upside_down_mask": "The mask is upside down",
    "mask_hides_itself": "The mask hides each position from itself",
    "mask_not_sliced": "The mask is not cut to the text's length",
    "softmax_dim": "Softmax over the wrong dimension",
    "softmax_no_dim": "Softmax with no dim",
    "softmax_batch": "Softmax over the batch",
    "query_key_swapped": "Query and key swapped",
    "keys_not_transposed": "Keys not transposed (or the product in the wrong order)",
    "values_transposed": "The weighted sum does not fit: weights @ v",
    "returns_weights": "Returned the weights instead of weights @ v",
    "dropout_always_on": "Dropout that is always on",
}


def finite(values) -> list:
    """Numbers for a report (JSON has no NaN): rounded, None where not finite."""
    return [round(v, 4) if math.isfinite(v) else None for v in values]


def tolerance(kid) -> float:
    """TOLERANCE for numbers of about 1; for larger ones, as many digits."""
    finite = kid[torch.isfinite(kid)]
    return TOLERANCE * max(1.0, finite.abs().max().item() if finite.numel() else 1.0)


def gap_text(a, b, subject: str = "the output", verb: str = "is") -> tuple:
    """(whether `a` is the kid's `b`, a sentence on it): NaN is said as NaN, never 'up to nan'."""
    if a.shape != b.shape:
        return False, f"{subject} {verb} {tuple(a.shape)}, the kid's {tuple(b.shape)}"
    if torch.isnan(a).any():
        return False, f"{subject} {verb} NaN in {int(torch.isnan(a).sum())} of {a.numel()} numbers"
    gap = (a - b).abs().max().item() if a.numel() else 0.0
    if gap <= tolerance(b):
        return True, f"{subject} {verb} within {gap:.1e} of the kid's"
    return False, f"{subject} {verb} up to {gap:.3g} away from the kid's"


def same(a, b) -> bool:
    """Equal within the tolerance, NaN where the other is NaN too."""
    return a.shape == b.shape and torch.allclose(a, b, rtol=0, atol=tolerance(b), equal_nan=True)


def failed_product(products):
    """The matrix product that could not be made (the last one seen, when its
    sizes do not fit), as (shape a, shape b), or None."""
    if products and len(products[-1]) == 2:
        a, b = products[-1]
        if len(a) >= 2 and len(b) >= 2 and a[-1] != b[-2]:
            return a, b
    return None


def unsliced_mask(error, T: int, block_size: int) -> bool:
    """Does this error come from a block_size × block_size mask meeting a text of T < block_size?"""
    numbers = set(re.findall(r"\d+", str(error)))
    return T < block_size and {str(T), str(block_size)} <= numbers


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
    note: str = ""  # something true of a Head that passes (PyTorch did the five steps, say)
    compare: dict | None = None  # one row of the learner's numbers beside the kid's
    problem: dict | None = None  # a CodeProblem: syntax, exception or structure
    loss: dict | None = None  # {"kid": ..., "yours": ..., "characters": ...}
    seconds: float = 0.0

    def add(self, name, ok, detail):
        status = "not seen" if ok is None else ("ok" if ok else "differs")
        self.steps.append(dict(name=name, status=status, detail=detail))

    def suspect(self, step: str, mistake: str):
        """`mistake` is the likely cause, if `step` is the first that differs."""
        if self.first_failure == step and self.mistake is None:
            self.mistake = mistake

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
            note=self.note,
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
        lines.append(f"  {marks[step['status']]} {step['name']:<14} {step['detail']}")
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
        title = f"{report['title']}. " if report.get("title") else ""
        lines.append(f"\nFirst difference: {report['first_failure']}. {title}{report['diagnosis']}")
    if report.get("note"):
        lines.append(report["note"])
    compare = report.get("compare")
    if compare and not report["ok"]:
        lines.append(f"\n{compare['title']}")
        number = lambda v: f"{'NaN':>7}" if v is None else f"{v:>7.3f}"  # noqa: E731
        lines.append("  position " + " ".join(f"{c:>7}" for c in compare["chars"]))
        lines.append("  yours    " + " ".join(number(v) for v in compare["yours"]))
        lines.append("  the kid  " + " ".join(number(v) for v in compare["kid"]))
        if compare.get("future") is not None:
            lines.append(f"  (from position {compare['future']} on, the future: the kid gives it 0)")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# The kid's side: what its heads read, and one head at work


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


def head_input(model, layer: int, idx):
    """What the heads of `layer` read: the residual stream after the blocks
    below it, through that block's first LayerNorm (one trace of the real kid)."""
    return trace(model, idx, heads=False)["blocks"][layer]["ln1"]


@contextmanager
def quiet_softmax():
    """PyTorch warns of a softmax with no dim, naming the checker's file as
    the culprit; the report names that mistake itself, in the learner's file."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Implicit dimension choice for softmax")
        yield


def kid_head(model, layer: int, head: int):
    """The kid's Head at (layer, head): with head_input, where the checker reads the model's layout."""
    return model.blocks[layer].attn.heads[head]


def kid_steps(head, x) -> dict:
    """The kid's Head at work on x: its weights, its q, k and v (what its
    three Linear layers give) and its output; the scores and weights in
    between are attention's definition (`attend`)."""
    seen = {}
    hooks = [
        getattr(head, name).register_forward_hook(lambda module, args, out, name=name: seen.__setitem__(name, out))
        for name in LINEARS
    ]
    try:
        out = head(x)
    finally:
        for hook in hooks:
            hook.remove()
    q, k, v = seen["query"], seen["key"], seen["value"]
    scores, weights, _ = attend(q, k, v, 1 / math.sqrt(k.shape[-1]))
    T = x.shape[1]
    state = {f"{name}.weight": getattr(head, name).weight for name in LINEARS}
    visible = torch.tril(torch.ones(T, T)).bool()  # (T, T): True where position i may look at j <= i
    return dict(x=x, state=state, q=q, k=k, v=v, scores=scores, weights=weights, out=out, visible=visible)


def lengths(block_size: int, head_size: int) -> tuple:
    """The text lengths checked: the whole block, and a shorter text (None
    when the block is too short for one). Neither equals head_size, so that
    a product in the wrong order cannot fit by chance."""

    def avoid(n):
        return n - 1 if n == head_size and n > 1 else n

    whole, short = avoid(block_size), avoid(block_size // 2 + 1)
    return whole, (short if short < whole else None)


# --------------------------------------------------------------------------
# The check


@torch.no_grad()
def check_head(head_class, checkpoint, layer: int = 0, head: int = 0, seconds: float | None = None) -> dict:
    """Compare `head_class` with the kid's Head at (layer, head). Returns the
    report as a dict (see Report.to_dict); raises TinyLLMError only for
    problems outside the learner's code (a missing checkpoint, a bad layer).
    seconds: a time limit on the comparison (TimeUp), the checkpoint's loading not counted."""
    started = time.perf_counter()
    model, vocab, _ = load_model(checkpoint)
    cfg = model.config
    if not 0 <= layer < cfg.n_layer:
        raise TinyLLMError(f"This kid has layers 0 to {cfg.n_layer - 1}; there is no layer {layer}.")
    if not 0 <= head < cfg.n_head:
        raise TinyLLMError(f"This kid has heads 0 to {cfg.n_head - 1}; there is no head {head}.")
    passages = validation_texts(Path(checkpoint).parent, cfg.block_size)
    whole, short = lengths(cfg.block_size, cfg.head_size)
    texts = [p[:whole] for p in (passages * 2)[:2]]  # two texts: a batch, as in training
    idx = torch.tensor([vocab.encode(t) for t in texts])
    theirs = kid_head(model, layer, head)
    report = Report(layer, head, texts[0], cfg.head_size)
    try:
        with quiet_softmax(), time_limit(seconds):
            compare_steps(report, head_class, cfg, kid_steps(theirs, head_input(model, layer, idx)))
            if report.first_failure is None:
                x = head_input(model, layer, idx[:, :short]) if short else None
                compare_shorter(report, head_class, cfg, theirs, x)
            if any(s["name"] == "output shape" and s["status"] == "ok" for s in report.steps):
                compare_loss(report, head_class, model, vocab, passages)
    except HeadCodeError as e:
        report.problem = e.problem.to_dict()
        report.add("runs", False, e.problem.message)
        report.diagnosis = report.diagnosis or e.problem.message
    report.seconds = time.perf_counter() - started
    return report.to_dict()


def compare_shorter(report: Report, head_class, cfg, theirs, x):
    """Every step again on a text shorter than the block, as the kid reads
    while it writes its first characters."""
    if x is None:
        report.add("a shorter text", None, f"a block of {cfg.block_size} leaves no shorter text to try")
        return
    T = x.shape[1]
    shorter = Report(report.layer, report.head, report.text[:T], report.head_size)
    compare_steps(shorter, head_class, cfg, kid_steps(theirs, x))
    failed = next((s for s in shorter.steps if s["status"] == "differs"), None)
    if failed is None:
        report.add("a shorter text", True, f"on {T} characters, every step matches too")
        return
    report.add("a shorter text", False, f"on {T} characters, {failed['name']}: {failed['detail']}")
    report.mistake, report.compare, report.problem = shorter.mistake, shorter.compare, shorter.problem
    report.diagnosis = (
        f"Every step matches on {len(report.text)} characters, but not on a shorter text of {T}. " + shorter.diagnosis
    )


def compare_steps(report: Report, head_class, cfg, kid: dict):
    """Run the learner's Head on the kid's input and compare each step with the kid's."""
    x = kid["x"]
    B, T, C = x.shape
    hs = report.head_size
    mine = build_head(head_class, cfg, kid["state"])  # in eval mode: its dropout is off, as the kid's
    calls = {name: 0 for name in LINEARS}
    for name in calls:
        getattr(mine, name).register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    recorder = Recorder()
    try:
        with recorder:
            out = mine(x)
        counted = dict(calls)
        again = mine(x)  # the same input: an answer that changes is dropout left on
    except (Exception, SystemExit) as e:
        did_not_run(report, e, getattr(head_class, "source_file", ""), recorder.products, T, cfg.block_size)
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
    missing = [name for name, n in counted.items() if n == 0]
    if missing:
        report.add("q, k, v", False, "never called: " + ", ".join(f"self.{m}" for m in missing))
        report.diagnosis = (
            f"Your forward never calls {', '.join(f'self.{m}(x)' for m in missing)}: every "
            "position needs its query, key and value."
        )
        return
    report.add("q, k, v", True, "self.query, self.key and self.value each read x")

    # 3-5. the scores, the mask and the softmax, as the softmax saw them
    softmax = next((s for s in reversed(recorder.softmaxes) if tuple(s[0].shape) == (B, T, T)), None)
    fused = "scaled_dot_product_attention" in recorder.names
    if softmax is None:
        why = (
            "F.scaled_dot_product_attention did this step for you"
            if fused
            else "no softmax over a (B, T, T) tensor was seen (one of your own, or a loop?): judged by the output"
        )
        for name in ("scores", "mask", "softmax"):
            report.add(name, None, why)
    else:
        scores, dim, weights = softmax
        compare_scores(report, kid, scores, C)
        compare_mask(report, kid, scores)
        compare_softmax(report, kid, dim, weights)

    # 6. the weighted sum
    matches, said = gap_text(out, kid["out"])
    changes = not same(out, again)
    report.add(
        "weighted sum",
        matches and not changes,
        said + (", and a second run on the same text gives another" if changes else ""),
    )
    if changes:
        report.mistake = "dropout_always_on"
    if report.first_failure:
        name_the_mistake(report, kid, out, softmax, C)
    elif fused:
        report.note = (
            "F.scaled_dot_product_attention did the five steps for you: PyTorch's fused attention, "
            "as the kid's fast path uses. To see each step, write them out as the template's comments say."
        )


def did_not_run(report: Report, error, filename: str, products, T: int, block_size: int):
    problem = describe_exception(error, filename)
    report.problem = problem.to_dict()
    report.add("runs", False, problem.message)
    report.diagnosis = problem.message
    hs, shapes = report.head_size, failed_product(products)
    if unsliced_mask(error, T, block_size):
        report.mistake = "mask_not_sliced"
        report.diagnosis = (
            f"Your mask is block_size × block_size ({block_size} × {block_size}), but this text has {T} "
            f"characters and its scores are ({T}, {T}). Slice the mask to the text's length: self.tril[:T, :T]."
        )
    elif shapes and shapes[0][-2:] == (T, hs) and shapes[1][-2:] == (T, hs):
        report.mistake = "keys_not_transposed"
        report.diagnosis = (
            f"The scores must be one number per query and key, (B, T, T): q {(2, T, hs)} @ "
            f"k.transpose(-2, -1) {(2, hs, T)}. Your code multiplied {shapes[0]} by {shapes[1]}."
        )
    elif shapes and shapes[0][-2:] == (T, T):
        report.mistake = "values_transposed"
        report.diagnosis = (
            f"The output is weights {(2, T, T)} @ v {(2, T, hs)}, as they are. Your code multiplied "
            f"{shapes[0]} by {shapes[1]}."
        )
    elif shapes:
        report.diagnosis = (
            f"{problem.message}. Your code multiplied {shapes[0]} by {shapes[1]}: a product needs the first's "
            "last size to equal the second's second-to-last."
        )


def compare_scores(report: Report, kid, scores, n_embd: int):
    """The scores where the learner left them visible: compared before their mask, in effect."""
    cells = kid["visible"] & torch.isfinite(scores) & (scores > -1e3)
    if not cells.any():
        report.add("scores", None, "every score you gave the softmax is hidden (-inf): see the mask")
        return
    yours, theirs = scores[cells], kid["scores"][cells]
    gap = (yours - theirs).abs().max().item()
    if gap <= tolerance(theirs):
        report.add("scores", True, f"q @ kᵀ / √{report.head_size} matches the kid's within {gap:.1e}")
        return
    ratio = (yours.abs().mean() / theirs.abs().mean()).item()
    report.add(
        "scores", False, f"differ from the kid's by up to {gap:.3g} (yours are {ratio:.2f}× as large on average)"
    )
    hs = report.head_size
    factors = {"no_scaling": math.sqrt(hs), "scale_by_head_size": 1 / math.sqrt(hs)}
    factors["scale_by_n_embd"] = math.sqrt(hs / n_embd)
    for mistake, factor in factors.items():
        if (yours - theirs * factor).abs().max() <= TOLERANCE * 10 * max(1.0, factor):
            report.suspect("scores", mistake)
    if same(yours, kid["scores"].transpose(-2, -1)[cells]):
        report.suspect("scores", "query_key_swapped")


def compare_mask(report: Report, kid, scores):
    """Which cells the learner's mask hid: the future must be, the past and the position itself must not."""
    T = scores.shape[-1]
    visible = kid["visible"]
    if T == 1:
        report.add("mask", True, "one position: no future to hide")
        return
    share = torch.softmax(scores.double(), dim=-1)  # what each cell would get, along the rows
    empty = torch.isnan(share).all(-1)  # (B, T): rows whose every score is -inf
    hidden = torch.isnan(share) | (share < HIDDEN)
    looked_at = kid["weights"] > SEEN
    future = (~visible & ~hidden & (share > TOLERANCE))[0]
    past = (visible & ~torch.eye(T, dtype=torch.bool) & hidden & looked_at)[0]
    itself = (torch.eye(T, dtype=torch.bool) & hidden & looked_at)[0]
    said = []
    if empty.any():
        rows = sorted({int(r) for r in empty.nonzero()[:, 1]})
        said.append(
            f"some rows are all -inf: every position is hidden from {'row' if len(rows) == 1 else 'rows'} "
            f"{', '.join(map(str, rows[:5]))}{'...' if len(rows) > 5 else ''}, and softmax over nothing is NaN"
        )
    if future.any():
        row = min(T - 1, 5) if future[min(T - 1, 5)].any() else int(future.any(-1).nonzero()[0])
        given = share[0, row][~visible[row]].sum().item()
        said.append(f"the future is visible: position {row} gives {given:.0%} of its weight to positions after it")
    if past.any():
        row, col = (int(i) for i in past.nonzero()[0])
        said.append(f"the past is hidden: position {row} cannot see position {col}, before it")
    if itself.any():
        said.append(f"a position is hidden from itself (position {int(itself.nonzero()[0, 0])} cannot see itself)")
    if not said:
        report.add(
            "mask",
            True,
            f"the {int((~visible).sum())} future cells are hidden; the past and each position itself are visible",
        )
        return
    report.add("mask", False, "; ".join(said))
    if future.any() and past.any():
        report.suspect("mask", "upside_down_mask")
    elif itself.any() and not future.any() and not past[1:, :].any():
        report.suspect("mask", "mask_hides_itself")
    elif future.any() and (scores[..., ~visible] == 0).all():
        report.suspect("mask", "zero_mask")


def compare_softmax(report: Report, kid, dim, weights):
    """The weights: a softmax along the keys (the last dimension), each row summing to 1."""
    along = None if dim is None else dim % weights.dim()
    if along != weights.dim() - 1:
        how = {
            None: "with no dim, which PyTorch takes as dim 0 for a (B, T, T) tensor: across the texts of the batch",
            0: "over dim 0: across the texts of the batch",
            1: "over dim 1 (dim=-2): down each column",
        }[along]
        nan = ", and is NaN where every text's score is -inf" if torch.isnan(weights).any() else ""
        report.add("softmax", False, f"your softmax ran {how}, so the rows do not sum to 1{nan}")
        report.suspect("softmax", {None: "softmax_no_dim", 0: "softmax_batch", 1: "softmax_dim"}[along])
        return
    matches, said = gap_text(weights, kid["weights"], "the weights", "are")
    if matches:
        report.add("softmax", True, f"every row sums to 1; {said}")
    elif torch.isnan(weights).any():
        report.add("softmax", False, f"{said}: a row of scores that is all -inf has nothing to share")
    else:
        row_gap = (weights.sum(-1) - 1).abs().max().item()
        sums = "the rows do not sum to 1:" if row_gap > TOLERANCE else "the rows sum to 1, but"
        report.add("softmax", False, f"{sums} {said}")


# --------------------------------------------------------------------------
# Naming the mistake


def name_the_mistake(report: Report, kid, out, softmax, n_embd: int):
    """Which classic mistake gives exactly the learner's output, or was seen
    at the first step that differs? Say so, with this text's numbers."""
    T = out.shape[1]
    row = min(T - 1, 5)  # a row with both a past and a future to show
    weights = softmax[2] if softmax is not None else None
    if report.mistake != "dropout_always_on":
        for mistake, knobs in classic_mistakes(report.head_size, n_embd).items():
            _, their_weights, wrong_out = attend(kid["q"], kid["k"], kid["v"], **knobs)
            if same(out, wrong_out):
                report.mistake, weights = mistake, their_weights
                break
    if weights is not None:
        compare_row(
            report,
            f"Row {row} (the character {glyph(report.text[row])!r} looking back): "
            "your attention weights beside the kid's",
            weights[0, row].tolist(),
            kid["weights"][0, row].tolist(),
            row,
            future=row + 1,
        )
    else:
        compare_row(
            report,
            f"Position {row}: the first numbers of your output beside the kid's",
            out[0, row].tolist(),
            kid["out"][0, row].tolist(),
            row,
        )
    if report.mistake:
        report.diagnosis = explain(report.mistake, report, kid, weights, row, n_embd)
        return
    detail = next(s["detail"] for s in report.steps if s["status"] == "differs")
    report.diagnosis = {
        "scores": "Your scores are not q @ kᵀ / √head_size. Check each factor of step 2.",
        "mask": f"Your mask is not the kid's: {detail}. Hide exactly the future, where self.tril[:T, :T] == 0, "
        "with float('-inf') (step 3).",
        "softmax": "The weights are not a softmax of the scores over the last dimension (step 4).",
        "weighted sum": "Your weights may be right, but the output is not weights @ v (step 5).",
    }.get(report.first_failure, "Compare your steps with the comments in the template.")


def compare_row(report, title, yours, kid, row, future=None):
    n = min(len(kid), row + 5)
    report.compare = dict(
        title=title,
        row=row,
        chars=[glyph(c) for c in report.text[:n]],
        yours=finite(yours[:n]),
        kid=finite(kid[:n]),
        future=future if future is not None and future < n else None,  # where the future starts, if shown
    )


def explain(mistake, report, kid, weights, row, n_embd) -> str:
    """One mistake in a learner's words, with this text's own numbers. The
    title (MISTAKE_TITLES) says what it is; this says why and what to do."""
    hs = report.head_size
    root = math.sqrt(hs)
    biggest = f"{weights[0, row].max():.2f}" if weights is not None else "?"
    kid_biggest = f"{kid['weights'][0, row].max():.2f}"
    future = weights[0, row, row + 1 :].sum().item() if weights is not None else math.nan
    return {
        "no_scaling": (
            f"Your scores are √{hs} = {root:.2f} times too large: divide q @ kᵀ by math.sqrt(head_size). "
            f"Unscaled, row {row}'s largest weight is {biggest} instead of {kid_biggest}: softmax grows too "
            "sure of itself."
        ),
        "scale_by_head_size": (
            f"You divided by head_size ({hs}) instead of its square root (√{hs} = {root:.2f}): your scores are "
            f"{root:.2f} times too small and the weights too flat (row {row}'s largest: {biggest}, the kid's "
            f"{kid_biggest})."
        ),
        "scale_by_n_embd": (
            f"You divided by √n_embd = √{n_embd} = {math.sqrt(n_embd):.2f}: the scores are q · k over head_size "
            f"= {hs} numbers, so divide by √{hs} = {root:.2f} (k.shape[-1]). Row {row}'s largest weight is "
            f"{biggest} instead of {kid_biggest}."
        ),
        "no_mask": (
            f"Position {row} attends to the future: {future:.0%} of its weight goes to positions after it. "
            "Hide them with scores.masked_fill(self.tril[:T, :T] == 0, float('-inf'))."
        ),
        "zero_mask": (
            f"exp(0) = 1, so position {row} still gives {future:.0%} of its weight to later positions; "
            "exp(-inf) = 0 hides them: fill with float('-inf')."
        ),
        "mask_after_softmax": (
            f"You zeroed the future's weights after the softmax, so the rows no longer sum to 1 (row {row} "
            f"sums to {weights[0, row].sum():.2f}). Hide the scores with -inf before the softmax: it then "
            "shares all of each row's weight among the past."
        ),
        "upside_down_mask": (
            "Your mask hides the past and shows the future (torch.triu, or == 1 where == 0 belongs). "
            "tril is 1 where position i may look at j <= i: hide where self.tril[:T, :T] == 0."
        ),
        "mask_hides_itself": (
            "Position i may look at every j <= i, itself included. Hiding the position itself (a strict "
            "tril, diagonal=-1, or < where <= belongs) leaves position 0 nothing to look at: its row is all "
            "-inf and softmax gives NaN."
        ),
        "softmax_dim": (
            f"Softmax ran down the columns (dim=-2), not along the rows: your columns sum to 1, and row {row} "
            f"sums to {weights[0, row].sum():.2f}. Use dim=-1: each query's weights over the keys sum to 1."
            if weights is not None
            else "Use dim=-1: each query's weights over the keys sum to 1."
        ),
        "softmax_no_dim": (
            "F.softmax(scores) with no dim= lets PyTorch choose, and for a (B, T, T) tensor it chooses dim 0: "
            "across the texts of the batch (PyTorch warns that this is deprecated). Write dim=-1: each "
            "query's weights over the keys sum to 1."
        ),
        "softmax_batch": (
            "Your softmax ran over dim 0, across the texts of the batch: each text's weights then depend on "
            "the other texts. Use dim=-1: each query's weights over the keys sum to 1."
        ),
        "query_key_swapped": (
            "Your score for query i and key j is key_i · query_j: query and key are swapped (k @ qᵀ is the "
            "transpose of q @ kᵀ). The row is the position asking, so q comes first."
        ),
        "dropout_always_on": (
            "Your Head gives a different output each time it reads the same text, in eval mode too: a dropout "
            "with no training flag. F.dropout(w, p) drops whether or not the kid is training; use "
            "self.dropout = nn.Dropout(p) in __init__, or F.dropout(w, p, training=self.training)."
        ),
    }.get(mistake, "")


def compare_loss(report, head_class, model, vocab, passages):
    """The learner's Head in every head of the kid: the loss on the validation passages."""
    ids = torch.tensor([vocab.encode(p) for p in passages])
    kid_loss = passages_loss(model.set_fast(False), ids)  # the readable path, as for yours
    try:
        use_heads(model, head_class)  # in eval mode, as the kid
        your_loss = passages_loss(model, ids)
    except HeadCodeError:
        raise
    except (Exception, SystemExit) as e:
        problem = describe_exception(e, getattr(head_class, "source_file", ""))
        report.add("the whole kid", False, f"the kid did not run with your Head: {problem.message}")
        report.problem = report.problem or problem.to_dict()
        return
    if not math.isfinite(your_loss):
        said = "NaN" if math.isnan(your_loss) else f"{your_loss}"
        report.add("the whole kid", False, f"with your Head the kid's loss is {said} (its own {kid_loss:.4f})")
        return
    report.loss = dict(kid=round(kid_loss, 6), yours=round(your_loss, 6), characters=ids[:, 1:].numel())
    gap = abs(your_loss - kid_loss)
    report.add(
        "the whole kid",
        gap <= LOSS_TOLERANCE,
        f"loss on {ids[:, 1:].numel()} validation characters with your Head in all "
        f"{model.config.n_layer * model.config.n_head} heads: {your_loss:.4f} (the kid's own: {kid_loss:.4f})",
    )


def passages_loss(model, ids) -> float:
    logits, loss = model(ids[:, :-1], ids[:, 1:].contiguous())
    return loss.item()


# --------------------------------------------------------------------------
# The command line's check: a time limit, and Ctrl-C


class TimeUp(BaseException):
    """Raised in the learner's code when the check's time is up (a
    BaseException, so that the checker's `except Exception` lets it pass)."""


@contextmanager
def time_limit(seconds: float):
    """Stop what runs inside after `seconds` (None: no limit), where the
    system has a timer signal (not Windows), in the main thread."""
    if seconds is None or not hasattr(signal, "setitimer"):
        yield
        return

    def up(signum, frame):
        raise TimeUp

    previous = signal.signal(signal.SIGALRM, up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_head_file(path, checkpoint, layer: int = 0, head: int = 0, seconds: float = 20.0) -> dict:
    """check_head on a learner's file, as the command line runs it: within
    `seconds` (the app's limit), and a Ctrl-C is a message, not a traceback."""
    filename = str(Path(path).resolve())
    try:
        with time_limit(seconds):
            head_class = load_head_class(path)  # runs the file: it may loop too
        return check_head(head_class, checkpoint, layer, head, seconds)
    except HeadCodeError as e:
        return problem_report(e.problem, layer, head)
    except TimeUp as e:
        message = f"Your code was stopped after {seconds:g} s. Does it loop for ever? (The check takes about a second.)"
        return problem_report(CodeProblem("exception", message, learner_frames(e, filename)), layer, head)
    except KeyboardInterrupt as e:
        where = learner_frames(e, filename)
        message = "You stopped the check (Ctrl-C)" + (
            " while it ran your code. Does it loop for ever?" if where else "."
        )
        return problem_report(CodeProblem("exception", message, where), layer, head)


# --------------------------------------------------------------------------
# Before training with a learner's Head


@torch.no_grad()
def require_attention(head_class, config, seed: int = 0):
    """Refuse a Head that does not compute the kid's attention. Every chapter
    reads a checkpoint with the kid's own Head, so a run trained with another
    computation would be shown wrongly. The same steps as check-head, at the
    same two lengths, on random weights larger than at initialisation (so
    that every mistake shows), with the learner's Head in eval mode."""
    from tinyllm.model import Head

    generator = torch.Generator().manual_seed(seed)
    reference = Head(config).eval()
    for p in reference.parameters():
        p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    for T in lengths(config.block_size, config.head_size):
        if T is None:
            continue
        x = torch.randn(2, T, config.n_embd, generator=generator)
        report = Report(0, 0, "·" * T, config.head_size)
        with quiet_softmax():
            compare_steps(report, head_class, config, kid_steps(reference, x))
        if report.problem and report.first_failure == "runs" and not report.mistake:
            raise HeadCodeError(CodeProblem(**report.problem))
        if report.first_failure:
            title = f"{MISTAKE_TITLES[report.mistake]}. " if report.mistake else ""
            raise TinyLLMError(
                "This Head does not compute attention as the kid's does yet, and every chapter reads a run "
                f"with the kid's Head, so peek does not train with it. On {T} characters (random numbers), "
                f"the first step that differs is {report.first_failure}: {title}{report.diagnosis} See each "
                f"step with: python -m tinyllm check-head {shown_path(head_class)}"
            )


def shown_path(head_class) -> str:
    """The learner's file as they would type it: relative to where they are, when it lies below."""
    path = Path(getattr(head_class, "source_file", "my_head.py"))
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
