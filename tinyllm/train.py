"""Training: the loop that turns a random model into the kid.

The loop knows nothing about terminals or web pages. It writes everything
into a run folder (tinyllm/runfolder.py says what each file holds) and
reports progress through a callback.

The step itself is `Trainer.step`: a batch, the loss, its gradients, a clip
and an optimizer update, as in "Let's build GPT". Around it, as named parts:
`evaluate` (losses on fixed batches, the best checkpoint, snapshots, a
sample, a log row), `save_latest` (the resumable state) and
`write_progress` (step and ETA for whoever watches).

Every file is written atomically. Ctrl-C, SIGTERM or a file named STOP in
the run folder ends the run cleanly; `resume=True` continues it.

Started by torchrun, several processes train one run together
(tinyllm/distributed.py): each takes its rows of the same global batch, and
process 0 alone does the named parts around the step. How the step is
computed (bf16 on a GPU, torch.compile) is an `Engine`: it changes the
speed, not the recipe.
"""

import math
import os
import signal
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from tinyllm.checkpoint import load_checkpoint, save_checkpoint
from tinyllm.data import Corpus, Vocab, corpus_facts, split, split_point
from tinyllm.distributed import World, check_batch, device_for, joined, wrap
from tinyllm.errors import TinyLLMError
from tinyllm.exercise import use_heads
from tinyllm.io import atomic_write_json, write_jsonl
from tinyllm.model import GPT, GPTConfig
from tinyllm.runfolder import RunFolder, RunFolderLock
from tinyllm.sample import SampleSettings, sample_text
from tinyllm.settings import bound_problems, name_in

# Snapshots at roughly log-spaced steps: the kid changes fastest early on.
SNAPSHOT_STEPS = [0, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000]
EVAL_SEED = 0  # the fixed evaluation batches are the same for every run


@dataclass
class TrainConfig:
    # How the kid is trained. Each setting's help, label and bounds: tinyllm/settings.py.
    steps: int = 6000  # optimizer steps
    batch_size: int = 32  # snippets of block_size characters per step
    lr: float = 2e-3  # peak learning rate (a baby network can afford a high one)
    min_lr: float = 1e-4  # where the cosine decay ends
    warmup_steps: int = 100  # linear warm-up from 0: early gradients are wild
    weight_decay: float = 0.1  # AdamW's pull of weight matrices towards zero
    grad_clip: float = 1.0  # the largest gradient norm kept as it is
    eval_interval: int = 250  # evaluate, and log a sample, every this many steps
    eval_batches: int = 20  # fixed batches per evaluation
    seed: int = 1337  # the same seed repeats the same run on the same CPU
    device: str = "auto"  # auto: CUDA, else MPS, else the CPU
    sample_chars: int = 200  # length of the sample logged at each evaluation

    def to_dict(self):
        return asdict(self)


@dataclass
class Engine:
    # How the steps are computed, not what they compute: these change the speed
    # (and bf16 the last digits of the losses), never the recipe.
    precision: str = "auto"  # "auto": bf16 autocast on a CUDA GPU that has it, else fp32; or "fp32", "bf16"
    compile: bool = False  # torch.compile the model for the step: faster steps after a compile (minutes, once)


PRECISIONS = ("auto", "fp32", "bf16")


def uses_bf16(precision: str, device: str) -> bool:
    """bf16 autocast: the matrix products in bfloat16, the loss and the weights in fp32.
    bf16 keeps fp32's range, so unlike fp16 it needs no loss scaling."""
    if precision not in PRECISIONS:
        raise TinyLLMError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    if precision == "auto":
        return device.startswith("cuda") and torch.cuda.is_bf16_supported()
    return precision == "bf16"


def validate(model_config: GPTConfig, train_config: TrainConfig, corpus_chars: int | None = None, words="cli"):
    """Refuse bad settings before any work starts, naming each setting as
    the reader knows it: its flag (words="cli") or the form's label ("form")."""

    def name(setting_name):
        return name_in(words, setting_name)

    problems = bound_problems(model_config, words) + bound_problems(train_config, words)
    if model_config.n_head >= 1 and model_config.n_embd % model_config.n_head:
        problems.append(
            f"{name('n_embd')} ({model_config.n_embd}) must be divisible by {name('n_head')} ({model_config.n_head})"
        )
    if train_config.min_lr > train_config.lr:
        problems.append(f"{name('min_lr')} must be at most {name('lr')}, not {train_config.min_lr}")
    if corpus_chars is not None:
        val_chars = corpus_chars - split_point(corpus_chars)
        if model_config.block_size + 1 > val_chars:
            problems.append(
                f"{name('block_size')} ({model_config.block_size}) is too large for this text: its "
                f"validation split has {val_chars} characters and needs block_size + 1"
            )
    if problems:
        raise TinyLLMError("Invalid settings: " + "; ".join(problems) + ".")


def pick_device(name: str) -> str:
    if name != "auto":
        if name == "cuda" and not torch.cuda.is_available():
            raise TinyLLMError("--device cuda was asked for, but no CUDA GPU is available.")
        if name == "mps" and not torch.backends.mps.is_available():
            raise TinyLLMError("--device mps was asked for, but this PyTorch has no Apple GPU (MPS) to use.")
        return name
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay from lr to min_lr at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * min(1.0, progress))) * (cfg.lr - cfg.min_lr)


def snapshot_steps(steps: int) -> list:
    return sorted({s for s in SNAPSHOT_STEPS if s <= steps} | {steps})


def random_batch(ids, block_size, batch_size, generator):
    """batch_size random windows: x is the text, y the same text one character on."""
    starts = torch.randint(len(ids) - block_size, (batch_size,), generator=generator)
    x = torch.stack([ids[s : s + block_size] for s in starts.tolist()])
    y = torch.stack([ids[s + 1 : s + 1 + block_size] for s in starts.tolist()])
    return x, y


def fixed_batches(ids, block_size, batch_size, n):
    """The same n batches every time: evaluation curves are then smooth."""
    generator = torch.Generator().manual_seed(EVAL_SEED)
    return [random_batch(ids, block_size, batch_size, generator) for _ in range(n)]


@torch.no_grad()
def mean_loss(model, batches, device) -> float:
    was_training = model.training
    model.eval()
    losses = [model(x.to(device), y.to(device))[1].item() for x, y in batches]
    model.train(was_training)
    return sum(losses) / len(losses)


@torch.no_grad()
def exact_loss(model, ids, batch_size=256, device="cpu") -> float:
    """Mean loss over a whole split: consecutive, non-overlapping windows of
    block_size characters, each predicting the character after every position.
    Deterministic, and comparable with published per-character losses."""
    model.eval()
    T = model.config.block_size
    n_windows = (len(ids) - 1) // T
    if n_windows < 1:
        raise TinyLLMError(f"The split has {len(ids)} characters: too few for block_size {T}.")
    total, count = 0.0, 0
    for first in range(0, n_windows, batch_size):
        starts = range(first, min(first + batch_size, n_windows))
        x = torch.stack([ids[i * T : (i + 1) * T] for i in starts]).to(device)
        y = torch.stack([ids[i * T + 1 : (i + 1) * T + 1] for i in starts]).to(device)
        logits, _ = model(x)
        total += torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
        count += y.numel()
    return total / count


class StopFlag:
    """Set by Ctrl-C, SIGTERM, a STOP file in the run folder (folder None:
    no file to watch), or the caller."""

    def __init__(self, folder: RunFolder | None):
        self.folder = folder
        self.requested = False

    def __call__(self, signum=None, frame=None):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user really wants out
        self.requested = True

    def check(self) -> bool:
        if self.folder and self.folder.stop_asked():
            self.requested = True
        return self.requested

    def install(self):
        """Catch SIGINT/SIGTERM (only possible from the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        old = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        return lambda: [signal.signal(s, h) for s, h in old.items()]


def train(
    model_config, train_config, corpus, run_dir, resume=False, callback=None, head_class=None, engine=None
) -> dict:
    """Train (or resume) a run in run_dir. Returns a summary dict with
    status "done" or "stopped", the step reached and the best val loss.

    The process is the folder's only writer (RunFolderLock): a second one
    writing the same folder is refused. resume=True continues the run with
    the settings it started with (model_config and train_config are ignored).
    head_class: a learner's attention Head (tinyllm/exercise.py) to use in
    every head, on the readable path; None: the kid's own, fused.
    Under torchrun, process 0 holds the lock and is the only one to touch
    run_dir (the others receive what it read) and to call callback."""
    world = World.from_env()
    with joined(world), ExitStack() as held:
        folder = RunFolder(run_dir)

        def lock_and_open():
            held.enter_context(RunFolderLock(run_dir))  # until the run ends
            return open_for_writing(folder, corpus, resume), corpus.md5

        resume_state, main_md5 = world.from_main(lock_and_open)
        if corpus.md5 != main_md5:  # on another machine, another file
            raise TinyLLMError(
                f"Process {world.rank} read {corpus.name} (md5 {corpus.md5}), process 0 another text "
                f"(md5 {main_md5}): give every process the same corpus."
            )
        if resume_state:
            model_config = GPTConfig(**resume_state["config"])
            train_config = TrainConfig(**resume_state["train"])
        trainer = Trainer(folder, model_config, train_config, corpus, head_class, resume_state, world, engine)
        return trainer.run(callback if callback and world.is_main else lambda event: None)


def open_for_writing(folder: RunFolder, corpus: Corpus, resume: bool) -> dict | None:
    """Check that the folder may be (re)started or resumed and tidy what a
    killed run left. Returns the resumable checkpoint when resuming."""
    if resume and not folder.latest.exists() and folder.model.exists():
        raise TinyLLMError(
            f"{folder.path} cannot be resumed: it stopped before its first resumable checkpoint. "
            "Run the same command without --resume to start it again."
        )
    if not resume and not folder.latest.exists() and not folder.summary.exists():
        # Killed between its first checkpoint and its first resumable one: nothing
        # can continue it, so it starts again (the same settings give the same run).
        for leftover in [folder.model, folder.log, *folder.snapshot_files()]:
            leftover.unlink(missing_ok=True)
    if not resume and (folder.latest.exists() or folder.model.exists()):
        raise TinyLLMError(f"{folder.path} already holds a run. Continue it with --resume, or choose another --out.")
    if not resume:
        return None
    ckpt = load_checkpoint(folder.latest, resumable=True)
    if ckpt["corpus"]["md5"] != corpus.md5:
        raise TinyLLMError(
            f"{folder.path} was trained on {ckpt['corpus']['name']} (md5 {ckpt['corpus']['md5']}); "
            f"give the same corpus to resume it (got md5 {corpus.md5})."
        )
    return ckpt


class Trainer:
    """One run being trained: its model, optimizer, data and clock, the step,
    and the named parts around the step."""

    def __init__(
        self, folder, model_config, train_config, corpus, head_class=None, resume_state=None, world=None, engine=None
    ):
        self.folder, self.cfg, self.corpus = folder, train_config, corpus
        self.world, self.engine = world or World(), engine or Engine()
        self.vocab = Vocab(resume_state["vocab"]) if resume_state else Vocab.from_text(corpus.text)
        model_config.vocab_size = len(self.vocab)
        validate(model_config, train_config, len(corpus.text))
        check_batch(train_config.batch_size, self.world)
        self.device = device_for(pick_device(train_config.device), self.world)
        self.bf16 = uses_bf16(self.engine.precision, self.device)
        if self.world.is_main:
            folder.snapshots.mkdir(parents=True, exist_ok=True)
            folder.remove_leftovers()
            if not resume_state:
                atomic_write_json(folder.corpus, corpus_facts(corpus, self.vocab, model_config.block_size))

        ids = torch.tensor(self.vocab.encode(corpus.text), dtype=torch.long)
        self.train_ids, self.val_ids = split(ids)
        self.block_size = model_config.block_size
        cfg = train_config
        self.eval_sets = {
            "train": fixed_batches(self.train_ids, self.block_size, cfg.batch_size, cfg.eval_batches),
            "val": fixed_batches(self.val_ids, self.block_size, cfg.batch_size, cfg.eval_batches),
        }

        torch.manual_seed(cfg.seed)
        self.model = GPT(model_config)
        if head_class is not None:
            use_heads(self.model, head_class)  # every head the learner's, same weights, same random numbers
        self.model.to(self.device).set_fast(head_class is None)
        self.head_name = Path(getattr(head_class, "source_file", "your Head")).name if head_class else None
        if self.head_name is None and resume_state:
            self.head_name = resume_state.get("head")
        decay = [p for p in self.model.parameters() if p.dim() >= 2]  # matrices and embeddings
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]  # biases and LayerNorm gains
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr,
            betas=(0.9, 0.99),
            **({"fused": True} if self.device.startswith("cuda") else {}),  # one kernel for every weight on a GPU
        )
        self.batch_gen = torch.Generator().manual_seed(cfg.seed)

        self.step, self.elapsed_before, self.best_val, self.rows = 0, 0.0, float("inf"), []
        self.losses = {}  # of the latest evaluation
        if resume_state:
            self.model.load_state_dict(resume_state["model"])
            self.optimizer.load_state_dict(resume_state["resume"]["optimizer"])
            self.batch_gen.set_state(resume_state["resume"]["batch_rng"])
            torch.set_rng_state(resume_state["resume"]["torch_rng"])
            self.step = resume_state["step"]
            self.elapsed_before = resume_state["elapsed_s"]
            self.best_val = resume_state["resume"]["best_val"]
            self.losses = resume_state["losses"]
            if self.world.is_main:  # the others never read the run folder
                self.rows = [r for r in folder.read_log() if r["step"] <= self.step]
        self.world.own_dropout(cfg.seed, self.step)
        # The step's model: compiled when asked, wrapped by DDP under torchrun. It shares its
        # weights with self.model, the plain one that evaluates, samples and is saved.
        compiled = torch.compile(self.model) if self.engine.compile else self.model
        self.step_model = wrap(compiled, self.world, self.device)
        self.logged = {r["step"] for r in self.rows}
        self.snapshots = set(snapshot_steps(cfg.steps))
        self.start_step, self.loss = self.step, None
        self.t_start = self.interval_start = time.time()
        self.last_progress = 0.0  # the first progress is written after the first step
        self.interval_tokens, self.tokens_per_s = 0, 0.0

    # -- the step ------------------------------------------------------------

    def train_step(self):
        """One update: a random batch, its loss, the gradients, a clip, a step."""
        lr = lr_at(self.step, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = random_batch(self.train_ids, self.block_size, self.cfg.batch_size, self.batch_gen)
        self.interval_tokens += x.numel()
        x, y = self.world.rows(x), self.world.rows(y)  # this process's share of the global batch
        with torch.autocast(torch.device(self.device).type, torch.bfloat16, enabled=self.bf16):
            _, loss = self.step_model(x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DDP, this also averages the gradients over the processes
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.step += 1

        self.loss = self.world.mean(loss.detach()).item()  # the global batch's loss
        if not math.isfinite(self.loss):
            self.loss = None  # progress.json is JSON: no NaN in it
            raise TinyLLMError(
                f"Training diverged at step {self.step}: the loss is not a number any more. "
                "Try a smaller --lr; the last good checkpoint is kept."
            )

    # -- the parts around it -------------------------------------------------

    def run(self, callback) -> dict:
        """Evaluate when due, step until the last step or a stop, then finish.
        Under torchrun, `main` (process 0) alone does the parts around the step."""
        main = self.world.is_main
        stop = StopFlag(self.folder if main else None)
        restore_signals = stop.install()
        status = "done"
        self.model.train()
        try:
            while True:
                if main and self.evaluation_due():
                    callback(dict(kind="eval", **self.evaluate()))
                if self.step >= self.cfg.steps:
                    break
                if self.world.any(stop.check()):  # every process stops at this same step
                    status = "stopped"
                    break
                self.train_step()
                if main and time.time() - self.last_progress > 1.0:  # about once a second
                    self.last_progress = time.time()
                    self.tokens_per_s = self.interval_tokens / max(1e-9, time.time() - self.interval_start)
                    progress = self.write_progress("running")
                    callback(dict(kind="step", lr=lr_at(self.step - 1, self.cfg), **progress))
        except BaseException:
            if main:
                self.write_progress("failed")
            raise
        finally:
            restore_signals()
        summary = self.finish(status)
        callback(dict(kind="end", **summary))
        return summary

    def evaluation_due(self) -> bool:
        step = self.step
        due = step % self.cfg.eval_interval == 0 or step in self.snapshots or step == self.cfg.steps
        return due and step not in self.logged

    def elapsed(self) -> float:
        """Seconds of training, over every session of a resumed run."""
        return self.elapsed_before + time.time() - self.t_start

    def evaluate(self) -> dict:
        """Losses on the fixed batches; the checkpoint if it is the best so far;
        a snapshot at a snapshot step; a sample; a log row; the resumable state."""
        if self.interval_tokens:
            self.tokens_per_s = self.interval_tokens / (time.time() - self.interval_start)
        self.losses = {k: round(mean_loss(self.model, b, self.device), 4) for k, b in self.eval_sets.items()}
        is_best = self.losses["val"] < self.best_val
        if is_best:
            self.best_val = self.losses["val"]
            save_checkpoint(self.folder.model, self.model, self.vocab, self.meta())
        if self.step in self.snapshots:
            save_checkpoint(self.folder.snapshot(self.step), self.model, self.vocab, self.meta(), half=True)
        sample = sample_text(self.model, self.vocab, "", SampleSettings(self.cfg.sample_chars, seed=0))
        self.model.train()
        row = dict(
            step=self.step,
            train_loss=self.losses["train"],
            val_loss=self.losses["val"],
            lr=lr_at(self.step, self.cfg),
            tokens_per_s=round(self.tokens_per_s),
            elapsed_s=round(self.elapsed(), 2),
            best=is_best,
            snapshot=self.step in self.snapshots,
            sample=sample,
        )
        self.rows.append(row)
        self.logged.add(self.step)
        write_jsonl(self.folder.log, self.rows)
        self.save_latest()
        self.interval_start, self.interval_tokens = time.time(), 0
        return row

    def meta(self) -> dict:
        """What every checkpoint records beside the weights."""
        return dict(
            train=self.cfg.to_dict(),
            step=self.step,
            losses=self.losses,
            corpus=dict(name=self.corpus.name, md5=self.corpus.md5, chars=len(self.corpus.text)),
            elapsed_s=round(self.elapsed(), 2),
            device=torch.device(self.device).type,  # "cuda", not process 0's "cuda:0"
            **({"head": self.head_name} if self.head_name else {}),
            **({"processes": self.world.size} if self.world.size > 1 else {}),
        )

    def save_latest(self):
        """The newest state, with what resuming needs to continue number for number."""
        resume = dict(
            optimizer=self.optimizer.state_dict(),
            batch_rng=self.batch_gen.get_state(),
            torch_rng=torch.get_rng_state(),
            best_val=self.best_val,
        )
        save_checkpoint(self.folder.latest, self.model, self.vocab, self.meta(), resume=resume)

    def write_progress(self, status: str) -> dict:
        done = self.step - self.start_step
        seconds = time.time() - self.t_start
        rate = done / max(1e-9, seconds)
        # an estimate from a handful of steps (start-up included) misleads: wait for 20 steps and 5 s
        eta = (self.cfg.steps - self.step) / rate if done >= 20 and seconds >= 5 else None
        progress = dict(
            status=status,
            step=self.step,
            steps=self.cfg.steps,
            loss=None if self.loss is None else round(self.loss, 4),
            elapsed_s=round(self.elapsed(), 1),
            eta_s=None if eta is None else round(eta, 1),
            tokens_per_s=round(self.tokens_per_s),
            pid=os.getpid(),
            updated=time.time(),
        )
        atomic_write_json(self.folder.progress, progress)
        return progress

    def finish(self, status: str) -> dict:
        """For a stopped run the resumable state; the last progress; for a
        finished run the exact loss of its kept (best) checkpoint over the
        whole validation split. Another process than 0 only says how it ended."""
        if not self.world.is_main:
            return dict(status=status, step=self.step, best_val=None, run_dir=None, elapsed_s=round(self.elapsed(), 1))
        if status == "stopped":
            self.save_latest()
        progress = self.write_progress(status)
        summary = dict(
            status=status,
            step=self.step,
            best_val=self.best_val,
            run_dir=str(self.folder.path),
            elapsed_s=progress["elapsed_s"],
        )
        if status == "done":
            best = load_checkpoint(self.folder.model)
            self.model.load_state_dict(best["model"])
            summary["best_step"] = best["step"]
            summary["exact_val_loss"] = round(exact_loss(self.model, self.val_ids, device=self.device), 4)
            atomic_write_json(self.folder.summary, summary, indent=1)
        return summary


def configs_from(values: dict) -> tuple:
    """Split a flat dict of settings into (GPTConfig, TrainConfig); unknown keys are an error."""
    model_keys = {f.name for f in fields(GPTConfig)} - {"vocab_size"}
    train_keys = {f.name for f in fields(TrainConfig)}
    unknown = set(values) - model_keys - train_keys
    if unknown:
        raise TinyLLMError(f"Unknown settings: {', '.join(sorted(unknown))}.")
    model_config = GPTConfig(**{k: v for k, v in values.items() if k in model_keys})
    train_config = TrainConfig(**{k: v for k, v in values.items() if k in train_keys})
    return model_config, train_config
