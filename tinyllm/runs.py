"""Where runs live, and what the app may list.

The committed kid lives in artifacts/kid. Runs trained later (from the app
or the CLI) live in artifacts/runs/<name>. Both folders can be moved with
environment variables (PEEK_KID_DIR, PEEK_RUNS_DIR), which the tests use.
"""

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from tinyllm.errors import TinyLLMError
from tinyllm.runfolder import RunFolder

ROOT = Path(__file__).resolve().parent.parent
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")  # always .fullmatch: "$" allows a final newline


def kid_dir() -> Path:
    return Path(os.environ.get("PEEK_KID_DIR", ROOT / "artifacts" / "kid"))


def runs_dir() -> Path:
    return Path(os.environ.get("PEEK_RUNS_DIR", ROOT / "artifacts" / "runs"))


@dataclass
class RunInfo:
    name: str
    path: Path
    exported: bool  # has an exported model card: the chapters can show it
    params: int | None = None
    steps: int | None = None
    val_loss: float | None = None
    problem: str | None = None  # why an exported run cannot be shown, in a visitor's words
    state: str | None = None  # RunFolder.state(): running, stopped, failed, done (None: no record)
    checkpoint: bool = False  # has its kept checkpoint: something inside to show once exported
    best_step: int | None = None  # the step of the kept checkpoint (lowest validation loss)


def is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def run_info(name: str, path: Path) -> RunInfo:
    """What the run selector shows of a run, read from its model card. A
    damaged card makes the run 'not shown, because ...', never an error."""
    folder = RunFolder(path)
    card_path = folder.chapter("model_card")
    if not card_path.is_file():
        return RunInfo(name, path, exported=False, state=folder.state(), checkpoint=folder.model.is_file())
    card = folder.read_object(card_path)
    if card is None:
        return RunInfo(name, path, False, problem="its model card cannot be read, or is not what export writes")
    params, steps = card.get("total_params"), card.get("steps")
    val = card.get("exact_val_loss") or card.get("val_loss")
    if not (is_count(params) and is_count(steps) and isinstance(val, (int, float)) and not isinstance(val, bool)):
        return RunInfo(name, path, False, problem="its model card lacks the parameter count, steps or loss")
    best = card.get("best_step")
    return RunInfo(name, path, True, params, steps, float(val), best_step=best if is_count(best) else None)


def modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # a dangling link, or removed while we looked
        return 0.0


def list_runs() -> list:
    """The kid first, then the run folders in runs_dir(), newest first.
    A folder named 'kid' there is not listed: that name is the kid's."""
    runs = [run_info("kid", kid_dir())]
    if runs_dir().is_dir():
        folders = sorted(runs_dir().iterdir(), key=modified, reverse=True)
        runs += [run_info(p.name, p) for p in folders if p.is_dir() and RUN_NAME.fullmatch(p.name) and p.name != "kid"]
    return runs


def new_run_name() -> str:
    """A fresh run name from the clock, e.g. run-20261124-113005."""
    return time.strftime("run-%Y%m%d-%H%M%S")


def check_run_name(name: str) -> str:
    """A run name is a folder name and nothing more: no paths, no tricks."""
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or name == "kid":
        raise TinyLLMError(
            "A run name is 1-40 letters, digits, '-' or '_', starting with a letter or digit "
            f"(and not 'kid'); got {name!r}."
        )
    return name
