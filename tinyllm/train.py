"""Training: the loop that turns a random model into the kid.

The loop knows nothing about terminals or web pages. It writes everything
into a run folder and reports progress through a callback:

  model.pt              the checkpoint with the best validation loss so far
  latest.pt             the newest state, with optimizer and random states (resumable)
  log.jsonl             one row per evaluation: losses, learning rate, speed, a sample
  progress.json         step, loss and ETA, rewritten about once a second
  snapshots/step_N.pt   the model at log-spaced steps, to watch it learn

Every file is written atomically. Ctrl-C, SIGTERM or a file named STOP in
the run folder ends the run cleanly; `resume=True` continues it.
"""

import math
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from tinyllm.checkpoint import load_checkpoint, save_checkpoint
from tinyllm.data import Corpus, Vocab, split, split_point
from tinyllm.errors import TinyLLMError
from tinyllm.exercise import use_heads
from tinyllm.flow import SLICE_CHARS
from tinyllm.io import atomic_write_json, read_jsonl, write_jsonl
from tinyllm.model import GPT, GPTConfig
from tinyllm.runs import RunFolderLock
from tinyllm.sample import SampleSettings, sample_text
from tinyllm.settings import bound_problems, name_in, setting

# Snapshots at roughly log-spaced steps: the kid changes fastest early on.
SNAPSHOT_STEPS = [0, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000]
EVAL_SEED = 0  # the fixed evaluation batches are the same for every run


@dataclass
class TrainConfig:
    # How the kid is trained. Each setting's description lives here, once:
    # the command line's --help, the app's form and the error messages read it.
    steps: int = setting(
        6000,
        "How many times the kid sees a batch and adjusts its weights.",
        label="Steps",
        minimum=1,
        form=(50, 20000, 50),
    )
    batch_size: int = setting(
        32,
        "Snippets of text (block_size characters each) per step: more is smoother, slower.",
        label="Batch size",
        minimum=1,
        form=(1, 128, 1),
    )
    lr: float = setting(
        2e-3,
        "Peak learning rate, the size of each adjustment: too high diverges, too low crawls.",
        label="Learning rate",
        above=0.0,
        form=(1e-4, 1e-2, 1e-4),
    )
    min_lr: float = setting(
        1e-4,
        "Learning rate at the end of the cosine decay (at most the peak).",
        label="Final learning rate",
        minimum=0.0,
    )
    warmup_steps: int = setting(
        100,
        "Steps of linear warm-up from 0 to the peak learning rate: early gradients are wild.",
        label="Warm-up steps",
        minimum=0,
    )
    weight_decay: float = setting(
        0.1,
        "AdamW's pull of weight matrices towards zero.",
        label="Weight decay",
        minimum=0.0,
    )
    grad_clip: float = setting(
        1.0,
        "Gradients with a larger norm are scaled down to this.",
        label="Gradient clip",
        above=0.0,
    )
    eval_interval: int = setting(
        250,
        "Evaluate, and log a sample, every this many steps.",
        label="Evaluation interval",
        minimum=1,
    )
    eval_batches: int = setting(
        20,
        "Fixed batches per evaluation, for train and for val (the same ones every time).",
        label="Evaluation batches",
        minimum=1,
    )
    seed: int = setting(
        1337,
        "The same seed repeats the same run, number for number, on the same CPU.",
        label="Seed",
        minimum=0,
        below=2**63,
        form=(0, 2**31 - 1, 1),
    )
    device: str = setting(
        "auto",
        "Where to train: auto picks CUDA, else MPS, else the CPU.",
        label="Device",
        choices=("auto", "cpu", "cuda", "mps"),
    )
    sample_chars: int = setting(
        200,
        "Length of the sample logged at each evaluation.",
        label="Sample length",
        minimum=1,
    )

    def to_dict(self):
        return asdict(self)


def validate(model_config: GPTConfig, train_config: TrainConfig, corpus_chars: int | None = None, words="cli"):
    """Refuse bad settings before any work starts, naming each setting as
    the reader knows it: its flag (words="cli") or the form's label ("form")."""

    def name(setting_name):
        return name_in(words, setting_name, (GPTConfig, TrainConfig))

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
    """Set by Ctrl-C, SIGTERM, a STOP file in the run folder, or the caller."""

    def __init__(self, run_dir: Path):
        self.stop_file = run_dir / "STOP"
        self.requested = False

    def __call__(self, signum=None, frame=None):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user really wants out
        self.requested = True

    def check(self) -> bool:
        if self.stop_file.exists():
            self.stop_file.unlink(missing_ok=True)
            self.requested = True
        return self.requested

    def install(self):
        """Catch SIGINT/SIGTERM (only possible from the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        old = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        return lambda: [signal.signal(s, h) for s, h in old.items()]


def prompt_starts(val_text: str, length: int, n: int = 3) -> list:
    """Where to cut n sample prompts from the validation text: just after a
    newline near 20%, 50% and 80% of it, so each starts at a line."""
    starts = []
    for fraction in [0.2, 0.5, 0.8][:n]:
        start = int(fraction * len(val_text))
        newline = val_text.find("\n", start, start + 500)
        start = newline + 1 if newline >= 0 else start
        starts.append(min(start, len(val_text) - length))
    return starts


def corpus_facts(corpus: Corpus, vocab: Vocab, block_size: int) -> dict:
    """What the export needs to know about the corpus, so that it does not
    need the corpus itself: character counts, three validation passages
    of block_size + 1 characters (the model reads block_size of them; the
    last one is the answer to the final prediction), and the start of the
    validation split, where the feed-forward neurons' contexts are found."""
    counts = Counter(corpus.text)
    n_train = split_point(len(corpus.text))
    val_text = corpus.text[n_train:]
    prompts = [val_text[s : s + block_size + 1] for s in prompt_starts(val_text, block_size + 1)]
    return dict(
        name=corpus.name,
        md5=corpus.md5,
        chars=len(corpus.text),
        train_chars=n_train,
        val_chars=len(val_text),
        counts=[counts[ch] for ch in vocab.chars],
        prompts=prompts,
        val_slice=val_text[:SLICE_CHARS],
    )


def train(model_config, train_config, corpus, run_dir, resume=False, callback=None, head_class=None) -> dict:
    """Train (or resume) a run in run_dir, as its only writer (RunFolderLock):
    a second process writing the same folder is refused. See train_run."""
    with RunFolderLock(run_dir):
        return train_run(model_config, train_config, corpus, run_dir, resume, callback, head_class)


def train_run(
    model_config: GPTConfig,
    train_config: TrainConfig,
    corpus: Corpus,
    run_dir,
    resume=False,
    callback=None,
    head_class=None,
) -> dict:
    """Train (or resume) a run in run_dir. Returns a summary dict with
    status "done" or "stopped", the step reached and the best val loss.

    head_class: a learner's attention Head (tinyllm/exercise.py) to use in
    every head, on the readable path; None: the kid's own, fused."""
    run_dir = Path(run_dir)
    latest_path = run_dir / "latest.pt"
    log_path = run_dir / "log.jsonl"
    callback = callback or (lambda event: None)

    resume_state = None
    if resume and not latest_path.exists() and (run_dir / "model.pt").exists():
        raise TinyLLMError(
            f"{run_dir} cannot be resumed: it stopped before its first resumable checkpoint. "
            "Run the same command without --resume to start it again."
        )
    if not resume and not latest_path.exists() and not (run_dir / "summary.json").exists():
        # Killed between its first checkpoint and its first resumable one: nothing
        # can continue it, so it starts again (the same settings give the same run).
        for leftover in [run_dir / "model.pt", log_path, *run_dir.glob("snapshots/*.pt")]:
            leftover.unlink(missing_ok=True)
    if resume:
        ckpt = load_checkpoint(latest_path)
        if ckpt["corpus"]["md5"] != corpus.md5:
            raise TinyLLMError(
                f"{run_dir} was trained on {ckpt['corpus']['name']} (md5 {ckpt['corpus']['md5']}); "
                f"give the same corpus to resume it (got md5 {corpus.md5})."
            )
        # A resumed run keeps the settings it started with.
        model_config = GPTConfig(**ckpt["config"])
        train_config = TrainConfig(**ckpt["train"])
        resume_state = ckpt
    elif (run_dir / "latest.pt").exists() or (run_dir / "model.pt").exists():
        raise TinyLLMError(f"{run_dir} already holds a run. Continue it with --resume, or choose another --out.")

    vocab = Vocab(resume_state["vocab"]) if resume_state else Vocab.from_text(corpus.text)
    model_config.vocab_size = len(vocab)
    validate(model_config, train_config, len(corpus.text))
    device = pick_device(train_config.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "snapshots").mkdir(exist_ok=True)
    # Left by a run that was killed: a STOP nobody will read (one that names
    # this very process is a stop asked for while it started), half-written files.
    stop_file = run_dir / "STOP"
    if stop_file.exists() and stop_file.read_text(errors="replace").strip() != str(os.getpid()):
        stop_file.unlink(missing_ok=True)
    for leftover in run_dir.rglob(".*.tmp"):
        leftover.unlink(missing_ok=True)

    if not resume:
        facts = corpus_facts(corpus, vocab, model_config.block_size)
        atomic_write_json(run_dir / "corpus.json", facts)
    ids = torch.tensor(vocab.encode(corpus.text), dtype=torch.long)
    train_ids, val_ids = split(ids)
    cfg = train_config
    eval_sets = {
        "train": fixed_batches(train_ids, model_config.block_size, cfg.batch_size, cfg.eval_batches),
        "val": fixed_batches(val_ids, model_config.block_size, cfg.batch_size, cfg.eval_batches),
    }

    torch.manual_seed(cfg.seed)
    model = GPT(model_config)
    if head_class is not None:
        use_heads(model, head_class)  # every head the learner's, same weights, same random numbers
    model.to(device).set_fast(head_class is None)
    head_name = Path(getattr(head_class, "source_file", "your Head")).name if head_class else None
    if head_name is None and resume_state:
        head_name = resume_state.get("head")
    decay = [p for p in model.parameters() if p.dim() >= 2]  # matrices and embeddings
    no_decay = [p for p in model.parameters() if p.dim() < 2]  # biases and LayerNorm gains
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.99),
    )
    batch_gen = torch.Generator().manual_seed(cfg.seed)

    step, elapsed_before, best_val, rows = 0, 0.0, float("inf"), []
    if resume_state:
        model.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["resume"]["optimizer"])
        batch_gen.set_state(resume_state["resume"]["batch_rng"])
        torch.set_rng_state(resume_state["resume"]["torch_rng"])
        step = resume_state["step"]
        elapsed_before = resume_state["elapsed_s"]
        best_val = resume_state["resume"]["best_val"]
        rows = [r for r in read_jsonl(log_path) if r["step"] <= step] if log_path.exists() else []
    logged = {r["step"] for r in rows}
    snapshots = set(snapshot_steps(cfg.steps))

    def elapsed() -> float:  # seconds of training, over every session of a resumed run
        return elapsed_before + time.time() - t_start

    def meta(losses):
        return dict(
            train=cfg.to_dict(),
            step=step,
            losses=losses,
            corpus=dict(name=corpus.name, md5=corpus.md5, chars=len(corpus.text)),
            elapsed_s=round(elapsed(), 2),
            device=device,
            **({"head": head_name} if head_name else {}),
        )

    def save_latest(losses):
        resume = dict(
            optimizer=optimizer.state_dict(),
            batch_rng=batch_gen.get_state(),
            torch_rng=torch.get_rng_state(),
            best_val=best_val,
        )
        save_checkpoint(latest_path, model, vocab, meta(losses), resume=resume)

    def write_progress(status, loss=None):
        done = step - start_step
        rate = done / max(1e-9, time.time() - t_start)
        # an estimate from a handful of steps (start-up included) misleads: wait for 20 steps and 5 s
        eta = (cfg.steps - step) / rate if done >= 20 and time.time() - t_start >= 5 else None
        progress = dict(
            status=status,
            step=step,
            steps=cfg.steps,
            loss=loss,
            elapsed_s=round(elapsed(), 1),
            eta_s=None if eta is None else round(eta, 1),
            tokens_per_s=round(tokens_per_s),
            pid=os.getpid(),
            updated=time.time(),
        )
        atomic_write_json(run_dir / "progress.json", progress)
        return progress

    stop = StopFlag(run_dir)
    restore_signals = stop.install()
    t_start = time.time()
    start_step = step
    last_losses = resume_state["losses"] if resume_state else {}
    tokens_per_s, loss_value, last_progress = 0.0, None, 0.0
    interval_start, interval_tokens = time.time(), 0
    status = "done"
    model.train()
    try:
        while True:
            is_eval_step = step % cfg.eval_interval == 0 or step in snapshots or step == cfg.steps
            if is_eval_step and step not in logged:
                if interval_tokens:
                    tokens_per_s = interval_tokens / (time.time() - interval_start)
                last_losses = {k: round(mean_loss(model, b, device), 4) for k, b in eval_sets.items()}
                is_best = last_losses["val"] < best_val
                if is_best:
                    best_val = last_losses["val"]
                    save_checkpoint(run_dir / "model.pt", model, vocab, meta(last_losses))
                if step in snapshots:
                    save_checkpoint(
                        run_dir / "snapshots" / f"step_{step:06d}.pt",
                        model,
                        vocab,
                        meta(last_losses),
                        half=True,
                    )
                sample = sample_text(model, vocab, "", SampleSettings(cfg.sample_chars, seed=0))
                model.train()
                row = dict(
                    step=step,
                    train_loss=last_losses["train"],
                    val_loss=last_losses["val"],
                    lr=lr_at(step, cfg),
                    tokens_per_s=round(tokens_per_s),
                    elapsed_s=round(elapsed(), 2),
                    best=is_best,
                    snapshot=step in snapshots,
                    sample=sample,
                )
                rows.append(row)
                logged.add(step)
                write_jsonl(log_path, rows)
                save_latest(last_losses)
                callback(dict(kind="eval", **row))
                interval_start, interval_tokens = time.time(), 0
            if step >= cfg.steps:
                break
            if stop.check():
                status = "stopped"
                save_latest(last_losses)
                break

            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = random_batch(train_ids, model_config.block_size, cfg.batch_size, batch_gen)
            _, loss = model(x.to(device), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            interval_tokens += x.numel()
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                loss_value = None  # progress.json is JSON: no NaN in it
                raise TinyLLMError(
                    f"Training diverged at step {step}: the loss is not a number any more. "
                    "Try a smaller --lr; the last good checkpoint is kept."
                )

            if time.time() - last_progress > 1.0:
                last_progress = time.time()
                tokens_per_s = interval_tokens / max(1e-9, time.time() - interval_start)
                progress = write_progress("running", round(loss_value, 4))
                callback(dict(kind="step", lr=lr, **progress))
    except BaseException:
        write_progress("failed", loss_value)
        raise
    finally:
        restore_signals()

    progress = write_progress(status, loss_value)
    summary = dict(status=status, step=step, best_val=best_val, run_dir=str(run_dir), elapsed_s=progress["elapsed_s"])
    if status == "done":
        # The exact loss of the kept (best) checkpoint over the whole validation split.
        best = load_checkpoint(run_dir / "model.pt")
        model.load_state_dict(best["model"])
        summary["best_step"] = best["step"]
        summary["exact_val_loss"] = round(exact_loss(model, val_ids, device=device), 4)
        atomic_write_json(run_dir / "summary.json", summary, indent=1)
    callback(dict(kind="end", **summary))
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
