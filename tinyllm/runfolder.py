"""Runs: where they live, the files one run writes, and who is writing one now.

Training writes a run folder, export reads it, the app lists and follows it;
every one of those reaches a file through `RunFolder`, never by spelling its
name. FILES says what each holds (the Behind the scenes chapter prints it).

Runs live in artifacts/runs/<name> under the working folder (where the command
or the app is started), or in $PEEK_RUNS_DIR: never beside the installed
package. Who trains what is read from the run folders themselves (the writer's
lock, progress.json), so every process and every visitor sees the same answer.
Every file in a run folder is untrusted: readers take regular files only and
never wait on one (a FIFO named progress.json must not hang a page).
"""

import hashlib
import hmac
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl  # POSIX; on Windows a run folder is not locked
except ImportError:  # pragma: no cover
    fcntl = None

from tinyllm.checkpoint import is_count
from tinyllm.errors import TinyLLMError
from tinyllm.io import atomic_write_text, open_regular, read_jsonl, read_regular

FILES = {  # file name in a run folder: what it holds
    "model.pt": "the kept checkpoint (best validation loss): weights + config, vocabulary, settings",
    "latest.pt": "the newest state with optimizer moments and random states, to resume (not committed)",
    "log.jsonl": "one row per evaluation: losses, learning rate, speed, a sample",
    "corpus.json": "character counts, three validation passages and the validation slice (not the corpus)",
    "summary.json": "how the run ended, and the exact validation loss of the kept checkpoint",
    "progress.json": "step, loss and ETA, rewritten about once a second while training runs",
    "snapshots": "the model at log-spaced steps, in half precision: for watching it learn",
    "export": "what the app's chapters read (documented in docs/export.md)",
    "STOP": "dropped in to ask the run to stop; it saves a resumable checkpoint and exits",
    "upload": "the text a visitor uploaded to train on (runs started from the app)",
    "head": "a visitor's own attention Head, used in every head (runs started from the app)",
    "train.out": "the training process's own messages (runs started from the app)",
    "owner": "a hash of the secret of the browser that started the run (runs started from the app)",
    ".writer": "locked by the one process writing the folder, with its process id inside",
}
STATES = ("running", "stopped", "failed", "done")  # what progress.json's status may say
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")  # always .fullmatch: "$" allows a final newline


def runs_dir() -> Path:
    """Where runs live: $PEEK_RUNS_DIR, else artifacts/runs in the working folder."""
    return Path(os.environ.get("PEEK_RUNS_DIR", "artifacts/runs")).absolute()


class RunFolder:
    """The paths of a run folder's files, and readers that never raise for a
    file being replaced or damaged (they return None or [] instead)."""

    def __init__(self, path):
        self.path = Path(path)
        self.name = self.path.name

    def __repr__(self):
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        assert name in FILES, name  # every file a run writes is named and described in FILES
        return self.path / name

    model = property(lambda self: self.file("model.pt"))
    latest = property(lambda self: self.file("latest.pt"))
    log = property(lambda self: self.file("log.jsonl"))
    corpus = property(lambda self: self.file("corpus.json"))
    summary = property(lambda self: self.file("summary.json"))
    progress = property(lambda self: self.file("progress.json"))
    snapshots = property(lambda self: self.file("snapshots"))
    export = property(lambda self: self.file("export"))
    stop = property(lambda self: self.file("STOP"))
    writer_lock = property(lambda self: self.file(".writer"))
    upload = property(lambda self: self.file("upload"))
    head = property(lambda self: self.file("head"))
    output = property(lambda self: self.file("train.out"))
    owner = property(lambda self: self.file("owner"))

    @staticmethod
    def owner_hash(secret: str) -> str:
        """What the owner file holds: a hash, so the folder never holds the secret itself."""
        return hashlib.sha256(secret.encode()).hexdigest()

    def owned_by(self, secret: str) -> bool:
        """Whether the browser holding `secret` started this run."""
        try:
            written = self.owner.read_text(encoding="ascii", errors="replace")[:64]
        except OSError:
            return False
        return hmac.compare_digest(written, self.owner_hash(secret))

    def snapshot(self, step: int) -> Path:
        return self.snapshots / f"step_{step:06d}.pt"

    def snapshot_files(self) -> list:
        return sorted(self.snapshots.glob("step_*.pt"))

    def chapter(self, name: str) -> Path:
        """An exported chapter's file: export/<name>.json."""
        return self.export / f"{name}.json"

    # -- readers ------------------------------------------------------------

    @staticmethod
    def read_object(path: Path) -> dict | None:
        """A JSON object from path; None if it is missing, being replaced
        right now (the next read gets it), damaged, or not an object."""
        try:
            value = json.loads(read_regular(path).decode("utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def read_log(self) -> list:
        """The evaluation rows so far ([] when there are none yet or the log is damaged)."""
        try:
            return read_jsonl(self.log)
        except (OSError, ValueError):
            return []

    def state(self) -> str | None:
        """What progress.json says the run is doing, if it says anything sensible."""
        state = (self.read_object(self.progress) or {}).get("status")
        return state if state in STATES else None

    def status(self) -> dict:
        """What the folder says about the run: progress, log rows, summary,
        corpus facts, whether it can be resumed (it stopped or failed before
        its last step and has a resumable checkpoint), and the loss of a
        uniform guess over its vocabulary (for the charts), when known."""
        status = dict(
            progress=self.read_object(self.progress),
            rows=self.read_log(),
            summary=self.read_object(self.summary),
            corpus=self.read_object(self.corpus),
        )
        status["resumable"] = self.latest.is_file() and ended_early(status["progress"], status["summary"])
        counts = (status["corpus"] or {}).get("counts")
        if isinstance(counts, list) and counts:
            status["uniform_loss"] = math.log(len(counts))
        return status

    def resumable(self) -> bool:
        """It has a resumable checkpoint and stopped or failed before its last
        step: status()["resumable"], reading only progress.json and summary.json."""
        return self.latest.is_file() and ended_early(self.read_object(self.progress), self.read_object(self.summary))

    def writer(self) -> int | None:
        """The process id writing this folder right now, or None if nobody is
        (-1: someone is, but its id cannot be read)."""
        if fcntl is None:
            return None
        try:
            fd = open_regular(self.writer_lock, os.O_RDONLY)
        except OSError:  # none, or not a file: no writer could hold it
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # succeeds only if no writer holds it
            return None
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        finally:
            os.close(fd)

    # -- stopping: the app (or a person) asks, the training loop takes --------

    def ask_to_stop(self, pid: int):
        """Drop a STOP file naming the process it is for: the run saves a
        resumable checkpoint and exits. Written atomically, so whatever was
        there (even a FIFO) is replaced, never waited on."""
        atomic_write_text(self.stop, str(pid))

    def stop_asked(self) -> bool:
        """True once a STOP file has appeared; it is taken away (read once)."""
        if not self.stop.exists():
            return False
        self.stop.unlink(missing_ok=True)
        return True

    def remove_leftovers(self):
        """Left by a run that was killed: a STOP nobody will read (one naming
        this very process is a stop asked for while it started) and half-written
        files from interrupted atomic writes."""
        try:
            asked_for = read_regular(self.stop).decode(errors="replace").strip()
        except OSError:
            asked_for = None  # none, or not a file
        if asked_for != str(os.getpid()):
            self.stop.unlink(missing_ok=True)
        for leftover in self.path.rglob(".*.tmp"):
            leftover.unlink(missing_ok=True)


class RunFolderLock:
    """One writer per run folder. The writer holds an exclusive lock (flock)
    on the folder's .writer file, with its process id written inside. The
    kernel drops the lock when the process ends, however it ends, so a crash
    never leaves a run locked for ever. A folder that the writer leaves
    holding nothing but the lock file (refused settings) is removed again."""

    def __init__(self, run_dir):
        self.folder = RunFolder(run_dir)
        self.fd = None

    def __enter__(self):
        if self.folder.path.exists() and not self.folder.path.is_dir():
            raise TinyLLMError(f"{self.folder.path} is a file, not a run folder: choose another --out.")
        self.folder.path.mkdir(parents=True, exist_ok=True)
        try:
            self.fd = open_regular(self.folder.writer_lock, os.O_RDWR | os.O_CREAT)
        except OSError as e:
            raise TinyLLMError(f"{self.folder.writer_lock} cannot be opened as a lock file ({e.strerror}).") from None
        if fcntl is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(self.fd, 32).decode(errors="replace").strip() or "?"
                os.close(self.fd)
                raise TinyLLMError(
                    f"{self.folder.path} is being written by another process (pid {holder}). "
                    "Wait for it to finish, or stop it, then try again."
                ) from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # closing drops the lock
        if list(self.folder.path.iterdir()) == [self.folder.writer_lock]:
            self.folder.writer_lock.unlink(missing_ok=True)
            self.folder.path.rmdir()


def ended_early(progress: dict | None, summary: dict | None) -> bool:
    """A run that stopped or failed, or never wrote its summary (killed)."""
    return (progress or {}).get("status") in ("stopped", "failed") or summary is None


# -- the runs in runs_dir(): names, the app's list, who is training -----------


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


def run_folders() -> list:
    """The RunFolders in runs_dir(), newest first. A folder named 'kid' there
    is not one: that name is the kid's."""
    if not runs_dir().is_dir():
        return []

    def modified(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # a dangling link, or removed while we looked
            return 0.0

    paths = sorted(runs_dir().iterdir(), key=modified, reverse=True)
    return [RunFolder(p) for p in paths if p.is_dir() and RUN_NAME.fullmatch(p.name) and p.name != "kid"]


def training_runs() -> dict:
    """{name: pid} of the runs in runs_dir() that a process is writing now
    (-1: one is, its id unreadable). The lock says so, whoever started it."""
    writers = {folder.name: folder.writer() for folder in run_folders()}
    return {name: pid for name, pid in writers.items() if pid is not None}


def resumable_runs() -> list:
    """Names of runs in runs_dir() that stopped before their last step and
    that no process is writing (a run left training by a server that was
    killed is still being written: it is not offered)."""
    return sorted(folder.name for folder in run_folders() if folder.resumable() and folder.writer() is None)


@dataclass
class RunInfo:
    """What the app's run selector shows of a run (read from its model card)."""

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
    kind: str = "visitor"  # "kid", "sibling" (committed beside the kid, read-only) or "visitor" (runs_dir())


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


# The kid's siblings are committed runs that differ from the kid in one setting
# each. They live beside the kid, in <the kid's parent>/siblings/<name>, and are
# as read-only as the kid: nobody resumes, deletes or overwrites them, and no
# visitor's run may take a sibling's name (runs_dir() is another folder, so a
# run there with that name is not listed: the sibling's name is the sibling's).
SIBLINGS = "siblings"


def sibling_folders(kid_dir: Path) -> list:
    """The RunFolders of the kid's siblings, by name (none when there is no such folder)."""
    siblings = Path(kid_dir).parent / SIBLINGS
    if not siblings.is_dir():
        return []
    return [RunFolder(p) for p in sorted(siblings.iterdir()) if p.is_dir() and RUN_NAME.fullmatch(p.name)]


def reserved_names(kid_dir: Path) -> set:
    """Names no visitor's run may take: the kid's and its siblings'."""
    return {"kid"} | {folder.name for folder in sibling_folders(kid_dir)}


def list_runs(kid_dir: Path) -> list:
    """The kid (its folder is the caller's to say), then its siblings, then
    the runs in runs_dir() (newest first) whose names are not taken by those."""
    runs = [run_info("kid", kid_dir)]
    runs += [run_info(folder.name, folder.path) for folder in sibling_folders(kid_dir)]
    for run in runs:
        run.kind = "kid" if run.name == "kid" else "sibling"
    taken = {run.name for run in runs}
    return runs + [run_info(f.name, f.path) for f in run_folders() if f.name not in taken]


def find_run(name, kid_dir: Path) -> Path | None:
    """The folder of the run called `name` in the selector's list (kid,
    sibling, then runs_dir()); None for a name that is no run's. The name
    may come from the address bar: it is checked before it becomes a path."""
    if name == "kid":
        return Path(kid_dir)
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name):
        return None
    for folder in sibling_folders(kid_dir):
        if folder.name == name:
            return folder.path
    path = runs_dir() / name
    return path if path.is_dir() else None
