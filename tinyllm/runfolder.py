"""A run folder: the files one training run writes, named and described once.

Training writes them, export reads them, the app lists and follows them;
every one of those reaches a file through `RunFolder`, never by spelling
its name. FILES says what each holds (the Behind the scenes chapter prints it).
"""

import hashlib
import hmac
import json
import os
from pathlib import Path

try:
    import fcntl  # POSIX; on Windows a run folder is not locked
except ImportError:  # pragma: no cover
    fcntl = None

from tinyllm.errors import TinyLLMError
from tinyllm.io import read_jsonl

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


class RunFolder:
    """The paths of a run folder's files, and readers that never raise for a
    file being replaced or damaged (they return None or [] instead)."""

    def __init__(self, path):
        self.path = Path(path)

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
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def read_log(self) -> list:
        """The evaluation rows so far ([] when there are none yet or the log is damaged)."""
        try:
            return read_jsonl(self.log) if self.log.is_file() else []
        except (OSError, ValueError):
            return []

    def state(self) -> str | None:
        """What progress.json says the run is doing, if it says anything sensible."""
        state = (self.read_object(self.progress) or {}).get("status")
        return state if state in STATES else None

    def status(self) -> dict:
        """What the folder says about the run: progress, log rows, summary,
        corpus facts, and whether it can be resumed (it stopped or failed
        before its last step and has a resumable checkpoint)."""
        status = dict(
            progress=self.read_object(self.progress),
            rows=self.read_log(),
            summary=self.read_object(self.summary),
            corpus=self.read_object(self.corpus),
        )
        status["resumable"] = self.latest.exists() and ended_early(status["progress"], status["summary"])
        return status

    def resumable(self) -> bool:
        """It has a resumable checkpoint and stopped or failed before its last
        step: status()["resumable"], reading only progress.json and summary.json."""
        return self.latest.exists() and ended_early(self.read_object(self.progress), self.read_object(self.summary))

    def writer(self) -> int | None:
        """The process id writing this folder right now, or None if nobody is
        (-1: someone is, but its id cannot be read)."""
        if fcntl is None or not self.writer_lock.is_file():
            return None
        fd = os.open(self.writer_lock, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # succeeds only if no writer holds it
            return None
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        finally:
            os.close(fd)

    def remove_leftovers(self):
        """Left by a run that was killed: a STOP nobody will read (one naming
        this very process is a stop asked for while it started) and half-written
        files from interrupted atomic writes."""
        if self.stop.exists() and self.stop.read_text(errors="replace").strip() != str(os.getpid()):
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
        self.fd = os.open(self.folder.writer_lock, os.O_RDWR | os.O_CREAT, 0o644)
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
