"""The command line: python -m tinyllm train | sample | show | eval | export | exercise | check-head.

Each command is a thin wrapper over the package's functions; the app calls
the same functions (and starts training through this very entry point).
"""

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tinyllm.checkpoint import load_model
from tinyllm.data import TINYSHAKESPEARE_MD5, load_corpus, read_text_file, split
from tinyllm.distributed import is_main_process
from tinyllm.errors import TinyLLMError
from tinyllm.exercise import DEFAULT_PATH, HeadCodeError, load_head_class, write_template
from tinyllm.explain import glyph
from tinyllm.model import GPTConfig, param_table
from tinyllm.runfolder import RunFolder, new_run_name, runs_dir
from tinyllm.sample import SampleSettings, generate
from tinyllm.settings import described, flag
from tinyllm.train import PRECISIONS, Engine, TrainConfig, configs_from, exact_loss, train

DEFAULT_KID = "artifacts/kid/model.pt"


def printable(text, lines: bool = False) -> str:
    """Text from a run folder (a corpus name, a device, a sample, a file
    name), safe to print on a terminal. A run folder is anyone's: a control
    character in it would reach the terminal as an escape code (colour, a new
    window title, the cursor moved over what was printed before). Each is
    named by its code point instead (tinyllm.explain.glyph), as the app
    names them; newlines and tabs are kept when lines is True (a sample)."""
    return "".join(ch if ch == " " or (lines and ch in "\n\t") else glyph(ch) for ch in str(text))


def add_flag(parser, setting_field):
    """A flag made from a setting's row in tinyllm/settings.py."""
    default = setting_field.default
    parser.add_argument(
        flag(setting_field.name),
        dest=setting_field.name,
        type=type(default),
        default=default,
        help=f"{setting_field.help} (default: {default})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tinyllm", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("train", help="train a kid (or resume a run)")
    p.add_argument(
        "--data", help="UTF-8 text file to train on (default: $TINYLLM_DATA, else tinyshakespeare, downloaded once)"
    )
    p.add_argument(
        "--out",
        default=None,
        help="run folder (default: a new artifacts/runs/run-DATE-TIME, which the app lists once exported)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--export",
        action="store_true",
        help="when training finishes, write the app's JSON files (as the export command)",
    )
    p.add_argument(
        "--head",
        metavar="PATH",
        help="train with your own attention Head (a file from the exercise command) in every head",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=Engine.precision,
        help="auto: bf16 autocast on a CUDA GPU that has it, else fp32 (default: auto)",
    )
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the model: faster steps after a compile (for GPUs)"
    )
    for setting_field in described(GPTConfig) + described(TrainConfig):
        add_flag(p, setting_field)

    p = commands.add_parser("sample", help="let a kid write")
    p.add_argument("--checkpoint", default=DEFAULT_KID, help=f"checkpoint (default: {DEFAULT_KID})")
    p.add_argument("--prompt", default="", help="text to start from (default: a newline)")
    p.add_argument("--length", type=int, default=500, help="characters to write (default: 500)")
    p.add_argument(
        "--temperature", type=float, default=1.0, help="below 1 safer and duller, above 1 bolder (default: 1.0)"
    )
    p.add_argument("--top-k", type=int, default=None, help="draw only among the k likeliest")
    p.add_argument(
        "--top-p", type=float, default=None, help="draw only among the fewest characters whose probabilities sum to p"
    )
    p.add_argument("--seed", type=int, default=None, help="the same seed writes the same text")
    p.add_argument("--no-cache", action="store_true", help="recompute the window for each character")

    p = commands.add_parser("show", help="print what is inside a checkpoint")
    p.add_argument("--checkpoint", default=DEFAULT_KID, help=f"checkpoint (default: {DEFAULT_KID})")

    p = commands.add_parser("eval", help="exact loss over the whole validation split")
    p.add_argument("--checkpoint", default=DEFAULT_KID, help=f"checkpoint (default: {DEFAULT_KID})")
    p.add_argument("--data", help="the corpus the checkpoint was trained on (default: as for train)")

    p = commands.add_parser("export", help="write the app's JSON files into a run folder")
    p.add_argument("--run", default="artifacts/kid", help="run folder (default: artifacts/kid)")

    p = commands.add_parser("exercise", help="write the attention exercise: a Head for you to finish")
    p.add_argument("path", nargs="?", default=DEFAULT_PATH, help=f"where to write it (default: {DEFAULT_PATH})")

    p = commands.add_parser("check-head", help="compare your Head with the kid's, step by step")
    p.add_argument("path", help="your Head's file (from the exercise command)")
    p.add_argument("--checkpoint", default=DEFAULT_KID, help=f"whose weights to use (default: {DEFAULT_KID})")
    p.add_argument("--layer", type=int, default=0, help="the kid's layer whose head you stand in for (default: 0)")
    p.add_argument("--head", type=int, default=0, help="which head of that layer (default: 0)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


# --------------------------------------------------------------------------


class ProgressBar:
    """step, loss and ETA on one terminal line, redrawn in place; a full line
    per evaluation. Into a file or a pipe (a log), no carriage returns: a
    whole progress line every LOG_EVERY seconds."""

    LOG_EVERY = 30.0

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr  # the one at the time of the run, not at import
        self.terminal = hasattr(stream, "isatty") and stream.isatty()
        self.start = "\r" if self.terminal else ""
        self.last_line = -self.LOG_EVERY

    def __call__(self, event):
        if event["kind"] == "step":
            if not self.terminal and time.monotonic() - self.last_line < self.LOG_EVERY:
                return
            self.last_line = time.monotonic()
            done = event["step"] / event["steps"]
            bar = "#" * int(30 * done) + "-" * (30 - int(30 * done))
            eta = event["eta_s"]
            eta_text = time.strftime("%M:%S", time.gmtime(eta)) if eta is not None else "--:--"
            self.stream.write(
                f"{self.start}step {event['step']:>6}/{event['steps']} [{bar}] loss {event['loss']:.4f} "
                f"{event['tokens_per_s'] / 1000:.1f}k tok/s ETA {eta_text} " + ("" if self.terminal else "\n")
            )
        elif event["kind"] == "eval":
            self.stream.write(
                f"{self.start}step {event['step']:>6}: train {event['train_loss']:.4f} val {event['val_loss']:.4f}"
                f"{' (best)' if event['best'] else ''} lr {event['lr']:.2e} "
                f"{event['elapsed_s'] / 60:.1f} min" + (" " * 30 if self.terminal else "") + "\n"
            )
        elif event["kind"] == "end":
            end_of_bar = "\n" if self.terminal else ""
            self.stream.write(
                f"{end_of_bar}{event['status']} at step {event['step']}, best val loss "
                f"{event['best_val']:.4f}, run folder {event['run_dir']}\n"
            )
        self.stream.flush()


def cmd_train(args):
    run_options = ("command", "data", "out", "resume", "quiet", "export", "head", "precision", "compile")
    values = {k: v for k, v in vars(args).items() if k not in run_options}
    model_config, train_config = configs_from(values)
    head_class = None
    if args.head:
        from tinyllm.headcheck import require_attention

        head_class = load_head_class(args.head)
        require_attention(head_class, model_config)
    if args.out is None:
        if args.resume:
            raise TinyLLMError("--resume needs --out: the run folder to continue.")
        args.out = str(runs_dir() / new_run_name())
    if args.resume:
        defaults = {**asdict(GPTConfig()), **asdict(TrainConfig())}  # the flags' defaults
        ignored = [flag(k) for k, v in values.items() if v != defaults[k]]
        if ignored and is_main_process():  # a resumed run keeps the settings it started with (tinyllm/train.py)
            print(
                f"Note: --resume continues the run with its own settings; ignoring {', '.join(ignored)}.",
                file=sys.stderr,
            )
    corpus = load_corpus(args.data)
    callback = None if args.quiet else ProgressBar()
    engine = Engine(precision=args.precision, compile=args.compile)
    summary = train(model_config, train_config, corpus, args.out, args.resume, callback, head_class, engine)
    if not is_main_process():  # under torchrun, process 0 reports and exports
        return
    if summary["status"] == "stopped":
        again = ["--out", args.out]
        for name in ("data", "head"):  # what the resumed run needs again (its settings it keeps itself)
            if getattr(args, name):
                again += [f"--{name}", getattr(args, name)]
        print(f"Stopped cleanly. Continue with: python -m tinyllm train {shlex.join(again)} --resume")
    elif args.export:
        export_and_report(args.out)


def checkpoint_path(given: str) -> str:
    """A checkpoint's path; a run folder stands for its kept checkpoint, model.pt."""
    path = Path(given)
    if path.is_dir():
        if not RunFolder(path).model.is_file():
            raise TinyLLMError(f"{given} is a folder with no model.pt in it: give a checkpoint file (.pt).")
        return str(RunFolder(path).model)
    return given


def cmd_sample(args):
    model, vocab, _ = load_model(checkpoint_path(args.checkpoint))
    settings = SampleSettings(args.length, args.temperature, args.top_k, args.top_p, args.seed)
    vocab.encode(args.prompt)  # characters the kid never saw are an error before anything is printed
    sys.stdout.write(args.prompt)
    for c in generate(model, vocab, args.prompt, settings, use_cache=not args.no_cache):
        sys.stdout.write(printable(c.char, lines=True))
        sys.stdout.flush()
    sys.stdout.write("\n")


def cmd_show(args):
    args.checkpoint = checkpoint_path(args.checkpoint)
    model, vocab, ckpt = load_model(args.checkpoint)
    print(f"checkpoint  {printable(args.checkpoint)}")
    print("config      " + ", ".join(f"{k}={v}" for k, v in ckpt["config"].items()))
    print(
        f"trained     {ckpt['step']} steps in {ckpt['elapsed_s'] / 60:.1f} min on {printable(ckpt['device'])}, "
        f"corpus {printable(ckpt['corpus']['name'])} ({ckpt['corpus']['chars']:,} characters)"
    )
    losses = ckpt["losses"]
    print(f"loss        train {losses['train']:.4f}, val {losses['val']:.4f} (fixed batches)")
    print("\nparameters")
    for name, count in param_table(model):
        print(f"  {name:<24}{count:>10,}")
    print(f"  {'total':<24}{model.num_params():>10,}\n")
    text = "".join(c.char for c in generate(model, vocab, "\n", SampleSettings(200, seed=0)))
    print("sample (seed 0):\n" + printable(text, lines=True))


def eval_corpus(args, ckpt):
    """The text to measure on: --data, else $TINYLLM_DATA, else the text a run
    folder kept (an upload), else tinyshakespeare if that is what it read."""
    if args.data or os.environ.get("TINYLLM_DATA") or ckpt["corpus"]["md5"] == TINYSHAKESPEARE_MD5:
        return load_corpus(args.data)
    kept = RunFolder(Path(args.checkpoint).parent).upload
    for path in sorted(kept.glob("*")) if kept.is_dir() else []:
        corpus = read_text_file(path)
        if corpus.md5 == ckpt["corpus"]["md5"]:
            print(f"note: measuring on the text this run kept, {printable(path)}", file=sys.stderr)
            return corpus
    raise TinyLLMError(
        f"This checkpoint was trained on {ckpt['corpus']['name']} (md5 {ckpt['corpus']['md5']}), not "
        f"tinyshakespeare: give that text with --data PATH/TO/{ckpt['corpus']['name']}."
    )


def cmd_eval(args):
    args.checkpoint = checkpoint_path(args.checkpoint)
    model, vocab, ckpt = load_model(args.checkpoint)
    corpus = eval_corpus(args, ckpt)
    if corpus.md5 != ckpt["corpus"]["md5"]:
        print(
            f"note: this corpus (md5 {corpus.md5}) is not the one the checkpoint was trained on "
            f"({printable(ckpt['corpus']['name'])}, md5 {printable(ckpt['corpus']['md5'])})",
            file=sys.stderr,
        )
    import torch

    _, val_ids = split(torch.tensor(vocab.encode(corpus.text)))
    loss = exact_loss(model, val_ids)
    print(f"validation split: {len(val_ids):,} characters, windows of {model.config.block_size}")
    print(f"val_loss {loss:.4f}")


def export_and_report(run_dir):
    from tinyllm.export import export_run

    t0 = time.time()
    for path in export_run(run_dir):
        print(f"wrote {path}")
    print(f"exported in {time.time() - t0:.1f} s")


def cmd_export(args):
    export_and_report(args.run)


def cmd_exercise(args):
    path = write_template(args.path)
    print(
        f"wrote {path}: fill in forward(), then check it against the kid's own Head with\n"
        f"  python -m tinyllm check-head {path}"
    )


def cmd_check_head(args):
    from tinyllm.headcheck import check_head_file, format_report
    from tinyllm.sandbox import SandboxLimits

    # the app's time limit: an endless loop in the learner's code ends with a message
    checkpoint = checkpoint_path(args.checkpoint)
    report = check_head_file(args.path, checkpoint, args.layer, args.head, SandboxLimits().seconds)
    print(json.dumps(report, indent=1, ensure_ascii=False) if args.json else format_report(report))
    if report["ok"] and not args.json:
        print(f"Train a kid with it: python -m tinyllm train --head {args.path}")
    return 0 if report["ok"] else 1


def main(argv=None):
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # a misspelt flag: the usage of the command it was given to, not the top level's
        commands = next(a for a in parser._actions if a.dest == "command").choices
        commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    command = {
        "train": cmd_train,
        "sample": cmd_sample,
        "show": cmd_show,
        "eval": cmd_eval,
        "export": cmd_export,
        "exercise": cmd_exercise,
        "check-head": cmd_check_head,
    }[args.command]
    try:
        return command(args) or 0
    except TinyLLMError as e:
        print(f"error: {printable(e, lines=True)}", file=sys.stderr)  # it may quote a run folder's text
        if isinstance(e, HeadCodeError) and e.problem.where:
            print(printable(e.problem.where, lines=True), file=sys.stderr)
        return 2
    except BrokenPipeError:  # the output went into `head` or a pager that closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as e:  # the system said no: a full disk, no permission, a file that cannot be read
        where = f": {printable(e.filename)}" if e.filename else ""
        print(f"error: {printable(e.strerror or e)}{where}", file=sys.stderr)
        return 2
    return 0
