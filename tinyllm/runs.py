"""Where runs live, and what the app may list.

The committed kid lives in artifacts/kid. Runs trained later (from the app
or the CLI) live in artifacts/runs/<name>. Both folders can be moved with
environment variables (PEEK_KID_DIR, PEEK_RUNS_DIR), which the tests use.
"""

import json
import os
import re
import time

try:
    import fcntl  # POSIX; on Windows a run folder is not locked
except ImportError:  # pragma: no cover
    fcntl = None
from dataclasses import dataclass
from pathlib import Path

from tinyllm.errors import TinyLLMError

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
    exported: bool  # has export/model_card.json: the chapters can show it
    params: int | None = None
    steps: int | None = None
    val_loss: float | None = None
    problem: str | None = None  # why an exported run cannot be shown, in a visitor's words
    state: str | None = None  # from progress.json: running, stopped, failed, done (None: no record)
    checkpoint: bool = False  # has model.pt: something inside to show once exported


def is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def progress_state(path: Path) -> str | None:
    """What progress.json says the run is doing, if it says anything sensible."""
    try:
        progress = json.loads((path / "progress.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    state = progress.get("status") if isinstance(progress, dict) else None
    return state if state in ("running", "stopped", "failed", "done") else None


def run_info(name: str, path: Path) -> RunInfo:
    """What the run selector shows of a run, read from its model card. A
    damaged card makes the run 'not shown, because ...', never an error."""
    card_path = path / "export" / "model_card.json"
    if not card_path.is_file():
        return RunInfo(name, path, exported=False, state=progress_state(path), checkpoint=(path / "model.pt").is_file())
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return RunInfo(name, path, False, problem="its model card cannot be read")
    if not isinstance(card, dict):
        return RunInfo(name, path, False, problem="its model card is not what export writes")
    params, steps = card.get("total_params"), card.get("steps")
    val = card.get("exact_val_loss") or card.get("val_loss")
    if not (is_count(params) and is_count(steps) and isinstance(val, (int, float)) and not isinstance(val, bool)):
        return RunInfo(name, path, False, problem="its model card lacks the parameter count, steps or loss")
    return RunInfo(name, path, True, params, steps, float(val))


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


LOCK_FILE = ".writer"  # in a run folder: the process writing it holds an exclusive lock on this file


class RunFolderLock:
    """One writer per run folder. The writer holds an exclusive lock (flock)
    on run_dir/.writer, with its process id written inside. The kernel
    drops the lock when the process ends, however it ends, so a crash never
    leaves a run locked for ever. A folder that the writer leaves holding
    nothing but the lock file (refused settings) is removed again."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.fd = None

    def __enter__(self):
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(self.fd, 32).decode(errors="replace").strip() or "?"
                os.close(self.fd)
                raise TinyLLMError(
                    f"{self.run_dir} is being written by another process (pid {holder}). "
                    "Wait for it to finish, or stop it, then try again."
                ) from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # closing drops the lock
        if [p.name for p in self.run_dir.iterdir()] == [LOCK_FILE]:
            (self.run_dir / LOCK_FILE).unlink(missing_ok=True)
            self.run_dir.rmdir()


def writer_of(run_dir) -> int | None:
    """The process id writing run_dir right now, or None if nobody is."""
    path = Path(run_dir) / LOCK_FILE
    if fcntl is None or not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # succeeds only if no writer holds it
        return None
    except BlockingIOError:
        text = os.read(fd, 32).decode(errors="replace").strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)
