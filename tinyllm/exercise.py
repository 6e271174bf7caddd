"""Write attention yourself: the template, and loading a learner's `Head`.

peek's one rule for readers: the only piece you write is attention. The
template below has the kid's own constructor (same attribute names, so the
kid's real weights load into it) and leaves `forward` to the learner.
`python -m tinyllm exercise` writes it to a file; `check-head` (headcheck.py)
compares it with the kid's Head, step by step.

Loading runs the learner's code: the CLI does so on the learner's own
machine, the app only inside sandbox.py's limits.
"""

import errno
import inspect
import linecache
import traceback
import types
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from tinyllm.errors import TinyLLMError

DEFAULT_PATH = "my_head.py"

TEMPLATE = '''"""One head of causal self-attention, written by you.

Fill in forward(). The constructor is the kid's own, so the checker
can load the kid's real weights into your Head and compare each step:

    python -m tinyllm check-head my_head.py
"""

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
        # tril[i, j] is 1 where position i may look at position j <= i
        ones = torch.ones(config.block_size, config.block_size)
        self.register_buffer("tril", torch.tril(ones), persistent=False)

    def forward(self, x):
        B, T, C = x.shape  # B texts, T positions, C numbers each
        # 1. k, q, v: self.key(x), self.query(x), self.value(x),
        #    each (B, T, head_size)

        # 2. scores: every query against every key,
        #    q @ k.transpose(-2, -1): (B, T, T), divided by
        #    math.sqrt(head_size) (head_size is k.shape[-1])

        # 3. the mask: where self.tril[:T, :T] == 0 (the future),
        #    put float("-inf")

        # 4. softmax over the last dimension: each row becomes
        #    weights that sum to 1

        # 5. the output: the weighted sum of the values,
        #    weights @ v: (B, T, head_size)

        raise NotImplementedError("write the five steps, then return")
'''


def write_template(path=DEFAULT_PATH) -> Path:
    """Write the template to `path`; never overwrite a file that exists."""
    path = Path(path)
    if path.exists():
        raise TinyLLMError(
            f"{path} exists already: give another path, or check it with python -m tinyllm check-head {path}"
        )
    if not path.parent.is_dir():
        raise TinyLLMError(f"No folder {path.parent} to write {path.name} into.")
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


@dataclass
class CodeProblem:
    """Something wrong with the learner's code itself, in their terms."""

    kind: str  # "syntax", "exception", "structure", or "setup" (not the code: a missing checkpoint)
    message: str  # one line a learner can act on
    where: str = ""  # their file's lines that led there, newest last

    def to_dict(self) -> dict:
        return dict(kind=self.kind, message=self.message, where=self.where)


class HeadCodeError(TinyLLMError):
    def __init__(self, problem: CodeProblem):
        super().__init__(problem.message)
        self.problem = problem


def learner_frames(error: BaseException, filename: str) -> str:
    """The traceback lines that lie in the learner's file: where in *their*
    code it went wrong, without the checker's or PyTorch's frames."""
    lines = []
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == filename:
            lines.append(f"line {frame.lineno}, in {frame.name}: {(frame.line or '').strip()}")
    return "\n".join(lines)


def describe_exception(error: BaseException, filename: str) -> CodeProblem:
    if isinstance(error, NotImplementedError):
        return CodeProblem(
            "exception", "forward() is not written yet: fill in its five steps.", learner_frames(error, filename)
        )
    if isinstance(error, SystemExit):
        return CodeProblem(
            "exception",
            "Your code called exit(): a Head must return its output instead.",
            learner_frames(error, filename),
        )
    if isinstance(error, MemoryError) or "can't allocate memory" in str(error):
        return CodeProblem(
            "exception",
            "Your code tried to allocate more memory than it may use here.",
            learner_frames(error, filename),
        )
    if isinstance(error, OSError) and error.errno == errno.EFBIG:
        return CodeProblem(
            "exception", "Your code printed more than it may here, so it was stopped.", learner_frames(error, filename)
        )
    return CodeProblem(
        "exception", f"Your code raised {type(error).__name__}: {error}", learner_frames(error, filename)
    )


def syntax_problem(error: Exception, source: str) -> CodeProblem:
    """A syntax error in the learner's terms. A NUL byte (an invisible
    character some editors and copy-pastes leave) has no line from Python:
    find it, so that the message can say where."""
    if "\0" in source:
        line = source.count("\n", 0, source.index("\0")) + 1
        return CodeProblem(
            "syntax",
            f"Line {line} holds an invisible NUL character (\\0), which Python cannot read: delete it "
            "(retype the line if you cannot see it).",
            f"line {line}: {source.splitlines()[line - 1].replace(chr(0), '').strip()}",
        )
    lineno, text = getattr(error, "lineno", None), (getattr(error, "text", None) or "").strip()
    message = getattr(error, "msg", str(error))
    if lineno is None:
        return CodeProblem("syntax", f"Syntax error: {message}")
    return CodeProblem("syntax", f"Syntax error on line {lineno}: {message}", f"line {lineno}: {text}")


def load_head_class(path) -> type:
    """Run the learner's file and return its `Head` class, or raise
    HeadCodeError saying what is wrong, pointing at their own lines."""
    path = Path(path)
    if not path.is_file():
        raise TinyLLMError(f"No file at {path}. Write one with: python -m tinyllm exercise {path}")
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TinyLLMError(f"{path} is not UTF-8 text.") from None
    filename = str(path.resolve())
    try:
        code = compile(source, filename, "exec")
    except (SyntaxError, ValueError) as e:  # ValueError: a NUL byte, in older Pythons
        raise HeadCodeError(syntax_problem(e, source)) from None
    linecache.checkcache(filename)  # tracebacks quote the file as it is now
    module = types.ModuleType("learner_head")
    module.__file__ = filename
    try:
        exec(code, module.__dict__)
    except (Exception, SystemExit) as e:
        raise HeadCodeError(describe_exception(e, filename)) from None
    head_class = module.__dict__.get("Head")
    if not (isinstance(head_class, type) and issubclass(head_class, nn.Module)):
        raise HeadCodeError(
            CodeProblem("structure", f"{path.name} has no class Head(nn.Module): keep the template's class name.")
        )
    head_class.source_file = filename
    return head_class


LINEARS = ("key", "query", "value")  # the kid's weights, the only ones a learner's Head is given


def build_head(head_class, config, state: dict):
    """A learner's Head holding the kid's weights from `state`, in eval mode
    (dropout off, as the kid is when it is checked), or HeadCodeError in
    their terms. Only the three Linear weights are copied: a buffer such as
    the mask (`tril`, saved or not) is the learner's own."""
    head = make_head(head_class, config)
    load_linears(head, state, config)
    return head.eval()


def make_head(head_class, config):
    """Build the Head as the kid builds its own, Head(config); a Head written
    as in Karpathy's gpt.py, __init__(self, head_size), as gpt.py builds it,
    Head(head_size): it reads n_embd and block_size from its own file."""
    filename = getattr(head_class, "source_file", "")
    try:
        first = next(iter(inspect.signature(head_class).parameters), None)
    except (TypeError, ValueError):
        first = None
    try:
        return head_class(config.head_size if first == "head_size" else config)
    except (Exception, SystemExit) as e:
        problem = describe_exception(e, filename)
        if first != "config" and isinstance(e, (TypeError, AttributeError, NameError)):
            problem.message = f"{signature_advice(first)} ({problem.message})"
        raise HeadCodeError(problem) from None


def signature_advice(first) -> str:
    yours = "__init__(self)" if first is None else f"__init__(self, {first}, ...)"
    if first == "head_size":
        yours = "__init__(self, head_size), as in Karpathy's gpt.py, which reads n_embd, block_size and dropout from "
        yours += "its file's global variables"
    return (
        f"Your Head is built with {yours}. The template's is __init__(self, config): the kid passes its "
        "config, so that one Head fits a kid of any size; read config.n_embd, config.block_size and "
        "head_size = config.n_embd // config.n_head from it"
    )


def load_linears(head, state: dict, config):
    """Copy the kid's key, query and value weights into `head`, or say what does not fit, with the shapes."""
    wrong = []
    for name in LINEARS:
        mine, kid = getattr(head, name, None), state[f"{name}.weight"]
        if not isinstance(mine, nn.Linear):
            wrong.append(f"self.{name} is {'missing' if mine is None else type(mine).__name__}")
        elif mine.weight.shape != kid.shape:
            wrong.append(
                f"self.{name} is nn.Linear({mine.in_features}, {mine.out_features}), the kid's "
                f"nn.Linear({kid.shape[1]}, {kid.shape[0]})"
            )
        elif mine.bias is not None:
            wrong.append(f"self.{name} has a bias, the kid's has none (bias=False)")
    extra = [n for n, _ in head.named_parameters() if n.split(".")[0] not in LINEARS]
    if extra:
        wrong.append(f"your Head has weights the kid's has not: {', '.join(extra)}")
    if wrong:
        raise HeadCodeError(
            CodeProblem(
                "structure",
                f"The kid's weights do not fit your Head: {'; '.join(wrong)}. It needs self.key, self.query "
                f"and self.value, each nn.Linear(n_embd, head_size, bias=False): here "
                f"nn.Linear({config.n_embd}, {config.head_size}, bias=False), as in the template.",
            )
        )
    with torch.no_grad():
        for name in LINEARS:
            getattr(head, name).weight.copy_(state[f"{name}.weight"])


def use_heads(model, head_class):
    """Put a `head_class` in place of every head of `model`, with the very same
    weights, and switch to the readable path, which calls each head's forward.
    The random-number state is left as it was, so a run that swaps in a Head
    equal to the kid's repeats the readable run number for number."""
    with torch.random.fork_rng(devices=[]):
        for block in model.blocks:
            heads = nn.ModuleList()
            for old in block.attn.heads:
                new = build_head(head_class, model.config, old.state_dict())
                for module in new.modules():  # the learner's buffers stay out of checkpoints, as the kid's mask does
                    for name, buffer in list(module.named_buffers(recurse=False)):
                        module.register_buffer(name, buffer, persistent=False)
                heads.append(new.to(old.key.weight.device))
            block.attn.heads = heads
    return model.set_fast(False)
