"""Where runs live, and what the app may list.

The committed kid lives in artifacts/kid. Runs trained later (from the app
or the CLI) live in artifacts/runs/<name>. Both folders can be moved with
environment variables (PEEK_KID_DIR, PEEK_RUNS_DIR), which the tests use.
"""

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from tinyllm.errors import TinyLLMError

ROOT = Path(__file__).resolve().parent.parent
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


def kid_dir() -> Path:
    return Path(os.environ.get("PEEK_KID_DIR", ROOT / "artifacts" / "kid"))


def runs_dir() -> Path:
    return Path(os.environ.get("PEEK_RUNS_DIR", ROOT / "artifacts" / "runs"))


@dataclass
class RunInfo:
    name: str
    path: Path
    exported: bool  # has export/model_card.json: the chapters can show it
    params: int | None = None
    steps: int | None = None
    val_loss: float | None = None


def run_info(name: str, path: Path) -> RunInfo:
    card_path = path / "export" / "model_card.json"
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return RunInfo(name, path, exported=False)
    val = card.get("exact_val_loss") or card.get("val_loss")
    return RunInfo(name, path, True, card.get("total_params"), card.get("steps"), val)


def list_runs() -> list:
    """The kid first, then exported runs from runs_dir(), newest first."""
    runs = [run_info("kid", kid_dir())]
    if runs_dir().is_dir():
        folders = sorted(runs_dir().iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
        runs += [run_info(p.name, p) for p in folders if p.is_dir() and RUN_NAME.match(p.name)]
    return runs


def new_run_name() -> str:
    """A fresh run name from the clock, e.g. run-20261124-113005."""
    return time.strftime("run-%Y%m%d-%H%M%S")


def check_run_name(name: str) -> str:
    """A run name is a folder name and nothing more: no paths, no tricks."""
    if not RUN_NAME.match(name or "") or name == "kid":
        raise TinyLLMError(
            "A run name is 1-40 letters, digits, '-' or '_', starting with a letter or digit "
            f"(and not 'kid'); got {name!r}."
        )
    return name
