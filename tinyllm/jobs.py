"""Training runs in the background, one at a time, for a server.

The app never trains inside a page: a click or a page switch would kill the
work. Instead `TrainingJobs` starts `python -m tinyllm train ... --export` as
a subprocess, the very command a person types, and reads what it writes in
its run folder (progress.json, log.jsonl). Stopping drops a STOP file in the
folder: the run saves a resumable checkpoint and exits cleanly.

Who is training what is read from the run folders' locks (tinyllm/runfolder.py),
not from this object: a second TrainingJobs, a restarted server or a cleared
cache sees the same busy slot and the same guard against deleting a live run.

Limits for a shared deployment come from environment variables with safe
defaults (LIMIT_SETTINGS below); a value that is not understood is reported
once in the server's log and on the training page, and the default is used.
"""

import logging
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tinyllm.checkpoint import load_checkpoint
from tinyllm.data import Vocab, corpus_from_bytes
from tinyllm.errors import TinyLLMError
from tinyllm.io import atomic_write_bytes, open_regular, read_regular
from tinyllm.model import GPTConfig, count_params
from tinyllm.runfolder import RunFolder, check_run_name, runs_dir, training_runs
from tinyllm.sandbox import HEAD_FILE, PACKAGE_PARENT, jail_training, train_in_sandbox
from tinyllm.settings import flag, form_fields
from tinyllm.train import TrainConfig, configs_from, validate

# A run trains beside the pages other visitors are reading: it gets half the
# cores (at least one) and a lower priority, so that their requests go first.
TRAINING_THREADS = max(1, (os.cpu_count() or 2) // 2)
NICENESS = 10

UPLOAD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,80}")  # used with .fullmatch

# Presets offered by the app. How long "quick" takes, as the pages say it:
# measured 138 s (4,000 steps, then export) with the app's one training thread
# on a 2-core machine that was running tests beside it; the live ETA tells the rest.
QUICK_TAKES = "about two minutes"
PRESETS = {
    "quick": dict(
        steps=4000, batch_size=32, block_size=32, n_embd=64, n_head=4, n_layer=2, dropout=0.0, lr=3e-3, seed=1337
    ),
    "the kid's recipe": dict(
        steps=TrainConfig.steps,
        batch_size=TrainConfig.batch_size,
        block_size=GPTConfig.block_size,
        n_embd=GPTConfig.n_embd,
        n_head=GPTConfig.n_head,
        n_layer=GPTConfig.n_layer,
        dropout=GPTConfig.dropout,
        lr=TrainConfig.lr,
        seed=TrainConfig.seed,
    ),
}


# Each limit: (environment variable, default, type, smallest value that makes sense)
LIMIT_SETTINGS = {
    "max_steps": ("PEEK_MAX_STEPS", TrainConfig.steps, int, 1),
    "max_params": ("PEEK_MAX_PARAMS", 2_000_000, int, 1_000),
    "max_upload_mb": ("PEEK_MAX_UPLOAD_MB", 5.0, float, 0.001),
    # export and the Embeddings chapter grow with the square of the vocabulary
    "max_vocab": ("PEEK_MAX_VOCAB", 256, int, 2),
    # the Attention and Training chapters' data grow with the square of the context
    # (times layers and heads): at 64, the kid's, the largest run the other limits
    # accept exports within 600 MB; at 128 it took 896 MB (bench/largest_run_memory.py)
    "max_context": ("PEEK_MAX_CONTEXT", GPTConfig.block_size, int, 2),
}
SETTING_PROBLEMS = {}  # variable -> what was wrong with it, in words (reported once each)


def limit_setting(field_name: str):
    """The limit's value from the environment, or its default with a note in
    SETTING_PROBLEMS (and the log) when the value is not understood."""
    variable, default, kind, smallest = LIMIT_SETTINGS[field_name]
    text = os.environ.get(variable)
    if text is None:
        return default
    try:
        value = kind(text.strip())
        if not (math.isfinite(value) and value >= smallest):
            raise ValueError
        return value
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        problem = (
            f"{variable}={text!r} is not understood: it must be {what} of at least {smallest:g}. "
            f"Using the default, {default:,}."
        )
        if SETTING_PROBLEMS.get(variable) != problem:
            SETTING_PROBLEMS[variable] = problem
            logging.getLogger("peek").error(problem)
        return default


@dataclass
class Limits:
    max_steps: int = field(default_factory=lambda: limit_setting("max_steps"))
    max_params: int = field(default_factory=lambda: limit_setting("max_params"))
    max_upload_mb: float = field(default_factory=lambda: limit_setting("max_upload_mb"))
    max_vocab: int = field(default_factory=lambda: limit_setting("max_vocab"))
    max_context: int = field(default_factory=lambda: limit_setting("max_context"))

    def check_resume(self, run_dir: Path):
        """A resumed run keeps its own settings (a CLI run may have more steps
        or a bigger model than this server allows): check them too."""
        ckpt = load_checkpoint(RunFolder(run_dir).latest, resumable=True)
        steps, params = ckpt["train"]["steps"], count_params(GPTConfig(**ckpt["config"]))
        if ckpt["config"]["block_size"] > self.max_context:
            raise TinyLLMError(
                f"This run reads {ckpt['config']['block_size']:,} characters at once; this server resumes "
                f"runs with a context of at most {self.max_context:,}."
            )
        if steps > self.max_steps:
            raise TinyLLMError(
                f"This run was set for {steps:,} steps; this server resumes runs of at most {self.max_steps:,}."
            )
        if params > self.max_params:
            raise TinyLLMError(
                f"This run's model has {params:,} parameters; this server allows at most {self.max_params:,}."
            )

    def check(self, settings: dict, vocab_size: int = 65, corpus_chars: int | None = None):
        """Validate settings like the CLI does (naming them as the app's form
        does), then apply this server's limits."""
        model_config, train_config = configs_from(settings)
        model_config.vocab_size = vocab_size
        validate(model_config, train_config, corpus_chars, words="form")
        if train_config.steps > self.max_steps:
            raise TinyLLMError(
                f"This server allows at most {self.max_steps:,} steps (asked for {train_config.steps:,})."
            )
        if model_config.block_size > self.max_context:
            raise TinyLLMError(
                f"This server trains contexts of at most {self.max_context:,} characters "
                f"(asked for {model_config.block_size:,})."
            )
        if vocab_size > self.max_vocab:
            raise TinyLLMError(
                f"This text has {vocab_size:,} different characters; this server trains on texts "
                f"with at most {self.max_vocab:,}."
            )
        params = count_params(model_config)  # by hand: a refused request allocates nothing
        if params > self.max_params:
            raise TinyLLMError(
                f"This server allows models of at most {self.max_params:,} parameters; "
                f"these settings make {params:,}. Make it narrower or shallower."
            )
        return params


def largest_accepted(limits: Limits) -> dict:
    """The largest model these limits and the app's form accept: the form's
    most layers and heads, the longest context (within max_context), and the
    widest n_embd (a multiple of the heads) under max_params with a vocabulary
    of max_vocab. What bench/largest_run_memory.py and the tests try."""
    form = {f.name: f.form for f in form_fields(GPTConfig, TrainConfig)}
    block_size = min(form["block_size"][1], limits.max_context)
    settings = dict(block_size=block_size, n_layer=form["n_layer"][1], n_head=form["n_head"][1])
    widths = range(form["n_embd"][1], 0, -settings["n_head"])
    for n_embd in widths:
        config = GPTConfig(vocab_size=limits.max_vocab, n_embd=n_embd, dropout=0.0, **settings)
        if count_params(config) <= limits.max_params:
            return dict(settings, n_embd=n_embd)
    raise TinyLLMError("No width fits the parameter limit.")


def settings_flags(settings: dict) -> list:
    return [arg for k, v in settings.items() for arg in (flag(k), str(v))]


def background(limited: bool) -> dict:
    """Popen arguments for a training process: TRAINING_THREADS threads and
    NICENESS, plus the sandbox's limits when a visitor's code runs in it."""
    options = train_in_sandbox() if limited else dict(env=dict(os.environ))
    if TRAINING_THREADS:
        options["env"] = {**options["env"], "OMP_NUM_THREADS": str(TRAINING_THREADS)}
    # `python -m tinyllm` finds this very package, installed or in a checkout,
    # from the server's working folder (where runs and the download cache live)
    path = [str(PACKAGE_PARENT)] + [p for p in [options["env"].get("PYTHONPATH")] if p]
    options["env"]["PYTHONPATH"] = os.pathsep.join(path)
    limit = options.get("preexec_fn")

    def before_start():  # runs in the new process, before it starts Python
        os.nice(NICENESS)
        if limit is not None:
            limit()

    options["preexec_fn"] = before_start
    return options


class TrainingJobs:
    """The server's single training slot. Thread-safe; shared by all visitors
    (shared_jobs()). It remembers the process it started, to report how that
    ended; whether a run is training is always asked of the run folders."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self.lock = threading.Lock()
        self.proc = None
        self.name = None
        self.run_dir = None
        self.started_at = None
        self.output = None

    def running(self) -> bool:
        """The run this object started is still running."""
        return self.proc is not None and self.proc.poll() is None

    def others(self) -> dict:
        """{name: pid} of runs being trained by processes this object did not
        start (one left by a server that was killed, or another server's)."""
        own = self.proc.pid if self.running() else None
        return {name: pid for name, pid in training_runs().items() if pid != own}

    def training(self, name: str) -> bool:
        """Whether run `name` is training: its folder's lock is held, whoever
        holds it, or it is the run this object has just started (its process
        may not have taken the lock yet)."""
        return (self.running() and self.name == name) or RunFolder(runs_dir() / name).writer() is not None

    def busy_message(self) -> str:
        minutes = (time.time() - self.started_at) / 60
        folder = RunFolder(self.run_dir)
        progress = folder.read_object(folder.progress) or {}
        eta = progress.get("eta_s")
        left = f", about {eta / 60:.1f} min left" if eta else ""
        return (
            f"The server is busy training '{self.name}' (started {minutes:.1f} min ago{left}). "
            "One run at a time: wait for it, or stop it on the training page."
        )

    def start(
        self,
        name: str,
        settings: dict,
        corpus_bytes: bytes | None = None,
        corpus_name: str = "upload.txt",
        resume=False,
        head_code: str | None = None,
        owner: str | None = None,
    ) -> Path:
        """Start (or resume) run `name`. corpus_bytes: an uploaded text, else tinyshakespeare.
        head_code: a visitor's attention Head (its source), to train with in every head; that
        run's process gets the sandbox's treatment (sandbox.train_in_sandbox). owner: a secret
        of the visitor's browser; its hash is written in the run folder (RunFolder.owned_by)."""
        with self.lock:
            if self.running():
                raise TinyLLMError(self.busy_message())
            others = self.others()  # our own run has ended (not running), its lock with it
            if others:
                name_, pid = next(iter(others.items()))
                raise TinyLLMError(
                    f"The server is busy: run '{name_}' is still training (process {pid}), "
                    "started before the server restarted. Stop it on this page, or wait for it."
                )
            check_run_name(name)
            run_dir = runs_dir() / name
            folder = RunFolder(run_dir)
            cmd = [sys.executable, "-m", "tinyllm", "train", "--out", str(run_dir), "--quiet", "--export"]
            if resume:
                if not folder.latest.exists():
                    raise TinyLLMError(f"Run '{name}' has nothing to resume.")
                self.limits.check_resume(run_dir)
                uploads = sorted(folder.upload.glob("*"))
                if uploads:
                    cmd += ["--data", str(uploads[0])]
                if (folder.head / HEAD_FILE).is_file():
                    cmd += ["--head", str(folder.head / HEAD_FILE)]
                cmd.append("--resume")
            else:
                if run_dir.exists():
                    raise TinyLLMError(f"A run named '{name}' exists already: pick another name.")
                vocab_size, corpus_chars = 65, None  # tinyshakespeare's
                if corpus_bytes is not None:
                    if len(corpus_bytes) > self.limits.max_upload_mb * 1e6:
                        raise TinyLLMError(
                            f"{corpus_name} is {len(corpus_bytes) / 1e6:.1f} MB; this server "
                            f"takes files up to {self.limits.max_upload_mb:g} MB."
                        )
                    corpus = corpus_from_bytes(corpus_bytes, corpus_name)
                    vocab_size, corpus_chars = len(Vocab.from_text(corpus.text)), len(corpus.text)
                self.limits.check(settings, vocab_size, corpus_chars)
                run_dir.mkdir(parents=True)
                if owner is not None:
                    atomic_write_bytes(folder.owner, folder.owner_hash(owner).encode())
                if corpus_bytes is not None:
                    # keep the file's own name (the run records it), never its path
                    given = Path(corpus_name).name
                    safe_name = given if UPLOAD_NAME.fullmatch(given) else "upload.txt"
                    folder.upload.mkdir()
                    atomic_write_bytes(folder.upload / safe_name, corpus_bytes)
                    cmd += ["--data", str(folder.upload / safe_name)]
                cmd += settings_flags(settings)
                if head_code is not None:
                    head_path = folder.head / HEAD_FILE
                    head_path.parent.mkdir()
                    atomic_write_bytes(head_path, head_code.encode("utf-8"))
                    cmd += ["--head", str(head_path)]
            if self.output is not None:
                self.output.close()  # the previous run's messages are all written
            try:  # the subprocess's own messages
                self.output = os.fdopen(open_regular(folder.output, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab")
            except OSError:
                self.output = None
                raise TinyLLMError(f"Run '{name}' is damaged: its {folder.output.name} is not a file.") from None
            limited = head_code is not None or folder.head.is_dir()  # a visitor's code runs in it
            if limited:  # in the jail that checks it (sandbox.py), writing only its run folder
                cmd = jail_training(cmd, run_dir)
            self.proc = subprocess.Popen(cmd, stdout=self.output, stderr=subprocess.STDOUT, **background(limited))
            self.name, self.run_dir, self.started_at = name, run_dir, time.time()
            return run_dir

    def delete(self, name: str):
        """Remove a run folder from runs_dir(): never the kid (not in there,
        and not a run name), never the run that is training."""
        check_run_name(name)
        run_dir = runs_dir() / name
        if not run_dir.is_dir() or run_dir.is_symlink():
            raise TinyLLMError(f"There is no run named '{name}'.")
        with self.lock:
            if self.training(name):
                raise TinyLLMError(f"Run '{name}' is training: stop it first.")
            shutil.rmtree(run_dir)

    def stop_orphan(self, name: str):
        """Ask a run that another server process started to stop cleanly: a
        STOP file naming the process that writes it (the one Stop stops)."""
        check_run_name(name)
        folder = RunFolder(runs_dir() / name)
        pid = folder.writer()
        if pid is None:
            raise TinyLLMError(f"Run '{name}' is not training.")
        folder.ask_to_stop(pid)

    def stop(self):
        """Ask the running job to stop cleanly (it saves a resumable checkpoint)."""
        if self.running():
            # the STOP file names the process it is for: the run started moments
            # ago may not have cleared a stale one yet (tinyllm/train.py)
            RunFolder(self.run_dir).ask_to_stop(self.proc.pid)

    def status(self) -> dict:
        """The current (or last) job: name, whether it runs, and its run folder's status."""
        if self.run_dir is None:
            return dict(name=None, running=False)
        status = RunFolder(self.run_dir).status()
        status.update(
            name=self.name,
            run_dir=self.run_dir,
            running=self.running(),
            returncode=None if self.proc is None else self.proc.poll(),
        )
        if not status["running"] and status["returncode"] not in (0, None):
            try:
                out = read_regular(RunFolder(self.run_dir).output, tail=600).decode(errors="replace")
            except OSError:
                out = ""
            status["error"] = out.strip().splitlines()[-1] if out.strip() else "training failed"
        return status


_shared = None
_shared_lock = threading.Lock()


def shared_jobs() -> TrainingJobs:
    """The server's one TrainingJobs, made on first use. A plain module global,
    not a Streamlit cache: any client can send Streamlit's clear_cache, which
    would hand the next visitor a fresh slot that forgot its running process."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = TrainingJobs()
        return _shared
