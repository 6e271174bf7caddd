"""Checkpoints: a state dict plus plain metadata, nothing else.

Everything in the file is a tensor, a number, a string, a list or a dict,
so it loads with torch.load(..., weights_only=True): opening a checkpoint
never runs code from it. The metadata says what the weights are:

  format, version   "tinyllm-checkpoint", 1
  config            GPTConfig as a dict
  vocab             the characters, in id order
  train             the training settings (TrainConfig as a dict)
  step              optimizer updates done
  losses            {"train": ..., "val": ...} at that step (fixed batches)
  corpus            {"name", "md5", "chars"}
  elapsed_s, device how long training took so far, and where
  head              only for a run trained with a learner's Head: its file's name
  processes         only for a run trained by several processes (torchrun): how many
  model             the state dict (float16 in snapshots, to keep them small)
  resume            only in latest.pt: optimizer and random-number states
"""

import math
import zipfile
from collections import Counter
from dataclasses import fields
from pathlib import Path

import torch

from tinyllm.data import Vocab
from tinyllm.errors import TinyLLMError
from tinyllm.io import atomic_torch_save
from tinyllm.model import GPT, GPTConfig, count_params
from tinyllm.settings import bound_problems

FORMAT = "tinyllm-checkpoint"
VERSION = 1


def save_checkpoint(path, model: GPT, vocab: Vocab, meta: dict, half=False, resume=None):
    state = model.state_dict()
    if half:
        # Snapshots are for looking at, not for resuming: float16 halves them.
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    ckpt = dict(
        format=FORMAT,
        version=VERSION,
        config=model.config.to_dict(),
        vocab=list(vocab.chars),
        model={k: v.detach().cpu().clone() for k, v in state.items()},
        **meta,
    )
    if resume is not None:
        ckpt["resume"] = resume
    atomic_torch_save(ckpt, path)


# What one checkpoint may make in memory, all told: the file as read, the
# weights as float32, the model built from them and every head's causal mask
# (block_size squared). The kid makes about 10 MB; a model at the app's
# default limits about 25 MB. A file that claims more is refused before any
# of it is made: a 100 KB forgery with a context of 12,000 would otherwise
# allocate gigabytes of masks.
MAX_CHECKPOINT_BYTES = 256 * 2**20
# The pickled metadata (everything but the tensors' bytes); the kid's is 11 KB.
MAX_METADATA_BYTES = 2**20
WEIGHT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def load_checkpoint(path, resumable=False) -> dict:
    """Read and check a checkpoint file; raise TinyLLMError saying what is wrong.
    resumable: it must also hold what resuming needs (latest.pt does)."""
    path = Path(path)
    if not path.is_file():
        raise TinyLLMError(f"No checkpoint at {path}. Train one with: python -m tinyllm train --out DIR")
    size_problem = file_size_problem(path)
    if size_problem:
        raise TinyLLMError(f"{path} is not a checkpoint this tinyllm can use: {size_problem}.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds (EOFError, KeyError, RuntimeError...)
        raise TinyLLMError(
            f"{path} cannot be read as a checkpoint: it is truncated, damaged or not a "
            f"tinyllm file ({type(e).__name__})."
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise TinyLLMError(f"{path} is not a tinyllm checkpoint (no '{FORMAT}' marker).")
    if ckpt.get("version") != VERSION:
        version = ckpt.get("version") if is_count(ckpt.get("version")) else "unknown"  # never echo a file's text
        raise TinyLLMError(f"{path} has checkpoint format version {version}; this tinyllm reads version {VERSION}.")
    problem = metadata_problem(ckpt) or (resume_problem(ckpt) if resumable or "resume" in ckpt else None)
    if problem:
        raise TinyLLMError(f"{path} is not a checkpoint this tinyllm can use: {problem}.")
    return ckpt


def file_size_problem(path: Path) -> str | None:
    """Sizes read from the file system and the zip's directory, before
    anything is unpickled."""
    if path.stat().st_size > MAX_CHECKPOINT_BYTES:
        return f"the file is larger than {MAX_CHECKPOINT_BYTES // 2**20} MB"
    try:
        with zipfile.ZipFile(path) as archive:
            pickled = [i.file_size for i in archive.infolist() if i.filename.endswith("data.pkl")]
    except (zipfile.BadZipFile, OSError):
        return None  # torch.load says what is wrong with it
    if len(pickled) != 1 or pickled[0] > MAX_METADATA_BYTES:
        return f"its metadata must be one record of at most {MAX_METADATA_BYTES // 2**10} KB"
    return None


def is_count(value, smallest=0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= smallest


def is_number(value) -> bool:
    """A finite int or float (a bool is not a number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def tensors_in(value) -> list:
    """Every tensor anywhere in a loaded checkpoint."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors_in(v)]
    return []


def tensor_problem(ckpt: dict) -> str | None:
    """Each tensor must own exactly its bytes: a view (a stride of 0 makes 44 KB
    look like 200 million numbers), an offset into a larger storage or two
    tensors on one storage are what torch.save never writes for tinyllm."""
    seen = set()
    for t in tensors_in(ckpt):
        storage = t.untyped_storage()
        if t.layout != torch.strided or t.is_quantized:
            return "its tensors must be plain dense tensors"
        if t.storage_offset() or not t.is_contiguous() or storage.nbytes() != t.numel() * t.element_size():
            return "its tensors must each own their numbers (no views, no offsets into larger storage)"
        if storage.nbytes() and storage.data_ptr() in seen:
            return "two of its tensors share their numbers"
        seen.add(storage.data_ptr())
    return None


def bytes_to_build(config: GPTConfig, stored_bytes: int) -> int:
    """Everything building a model from a checkpoint makes: the tensors as
    read, a float32 copy of the weights, the model's own float32 weights and
    each head's block_size x block_size float32 mask."""
    masks = config.n_layer * config.n_head * config.block_size**2 * 4
    return stored_bytes + 2 * 4 * count_params(config) + masks


def metadata_problem(ckpt: dict) -> str | None:
    """What is wrong with a checkpoint's metadata and weights, in words, or
    None. The file is untrusted (an upload, a copy from elsewhere): every
    field the readers use is checked, values and not only types, and the
    bytes the model will take are counted, before anything is built from
    them (a config that claims a huge model with small weights must not make
    us allocate the huge one)."""
    config = ckpt.get("config")
    names = {f.name for f in fields(GPTConfig)}
    if not isinstance(config, dict) or set(config) != names:
        return f"its config must hold exactly {', '.join(sorted(names))}"
    if not all(is_count(config[name], 1) for name in names - {"dropout"}):
        return "its config's sizes must be whole numbers of at least 1"
    if not is_number(config["dropout"]) or not 0 <= config["dropout"] < 1:
        return "its config's dropout must be a number in [0, 1)"
    if config["n_embd"] % config["n_head"]:
        return "its config's n_embd is not a multiple of n_head"
    vocab = ckpt.get("vocab")
    if not isinstance(vocab, list) or not all(isinstance(c, str) and len(c) == 1 for c in vocab):
        return "its vocabulary must be a list of single characters"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in vocab):
        return "its vocabulary holds a character that is not text (a lone surrogate)"
    if len(set(vocab)) != len(vocab) or len(vocab) != config["vocab_size"]:
        return f"its vocabulary of {len(vocab)} characters does not match vocab_size {config['vocab_size']}"
    problem = training_problem(ckpt)
    if problem:
        return problem
    weights = ckpt.get("model")
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        return "its weights must be a dict of tensors"
    gpt_config = GPTConfig(**config)
    problem = tensor_problem(ckpt)
    if problem:
        return problem
    stored = sum(t.untyped_storage().nbytes() for t in tensors_in(ckpt))
    if bytes_to_build(gpt_config, stored) > MAX_CHECKPOINT_BYTES:
        return (
            f"the model it describes would take more than {MAX_CHECKPOINT_BYTES // 2**20} MB "
            f"(context {config['block_size']:,}, {count_params(gpt_config):,} parameters)"
        )
    if sum(v.numel() for v in weights.values()) != count_params(gpt_config):
        return "its weights do not have the sizes its config describes"
    with torch.device("meta"):  # shapes only: nothing is allocated
        expected = {k: v.shape for k, v in GPT(gpt_config).state_dict().items()}
    if {k: v.shape for k, v in weights.items()} != expected:
        return "its weights do not have the shapes its config describes"
    if not all(v.dtype in WEIGHT_DTYPES for v in weights.values()):
        return "its weights must be floating-point numbers (float32, float16 or bfloat16)"
    if not all(torch.isfinite(v).all() for v in weights.values()):
        return "its weights hold numbers that are not finite (NaN or infinity)"
    return None


def training_problem(ckpt: dict) -> str | None:
    """The record of training beside the weights: step, losses, settings,
    corpus, time and device, as the CLI, the export and resuming read them."""
    from tinyllm.train import TrainConfig  # train.py imports this file

    if not is_count(ckpt.get("step")):
        return "its step must be a whole number"
    losses = ckpt.get("losses")
    if not isinstance(losses, dict) or not all(is_number(losses.get(k)) for k in ("train", "val")):
        return "its losses must hold a finite train and val loss"
    train = ckpt.get("train")
    settings = {f.name: f for f in fields(TrainConfig)}
    if not isinstance(train, dict) or set(train) != set(settings):
        return f"its training settings must hold exactly {', '.join(settings)}"
    for name, value in train.items():
        kind = type(settings[name].default)
        fits = isinstance(value, str) if kind is str else is_number(value) and (kind is float or is_count(value))
        if not fits:
            return f"its training setting {name} must be a {'text' if kind is str else kind.__name__}"
    if bound_problems(TrainConfig(**train), "cli"):
        return "its training settings are out of their bounds"
    corpus = ckpt.get("corpus")
    if not (
        isinstance(corpus, dict)
        and isinstance(corpus.get("name"), str)
        and isinstance(corpus.get("md5"), str)
        and is_count(corpus.get("chars"))
    ):
        return "its corpus must say its name, md5 and number of characters"
    if not is_number(ckpt.get("elapsed_s")) or ckpt["elapsed_s"] < 0 or not isinstance(ckpt.get("device"), str):
        return "its training time must be a number of seconds and its device a name"
    if "head" in ckpt and not isinstance(ckpt["head"], str):
        return "its head must be a file name"
    return None


def resume_problem(ckpt: dict) -> str | None:
    """What resuming reads (latest.pt): the optimizer's state, shaped like the
    weights, and both random-number states. Run after metadata_problem."""
    resume = ckpt.get("resume")
    if not isinstance(resume, dict) or set(resume) != {"optimizer", "batch_rng", "torch_rng", "best_val"}:
        return "it holds no state to resume from (optimizer, random numbers, best loss)"
    rng = torch.get_rng_state()
    for name in ("batch_rng", "torch_rng"):
        state = resume[name]
        if not isinstance(state, torch.Tensor) or state.dtype != rng.dtype or state.shape != rng.shape:
            return f"its {name} is not a random-number state"
    best = resume["best_val"]
    if not isinstance(best, float) or math.isnan(best):
        return "its best_val must be a number"
    optimizer = resume["optimizer"]
    if not isinstance(optimizer, dict) or set(optimizer) != {"state", "param_groups"}:
        return "its optimizer state must hold state and param_groups"
    # The optimizer numbers the weights group by group (train.py puts the
    # matrices first), so its moments are checked against the weights' shapes
    # as a whole: no shape the weights do not have.
    shapes = sorted(tuple(v.shape) for v in ckpt["model"].values())
    groups = optimizer["param_groups"]
    if not isinstance(groups, list) or not all(
        isinstance(g, dict) and isinstance(g.get("params"), list) and all(is_count(i) for i in g["params"])
        for g in groups
    ):
        return "its optimizer's param_groups must be a list of groups of parameters"
    if sorted(i for g in groups for i in g["params"]) != list(range(len(shapes))):
        return "its optimizer's groups do not cover the weights once each"
    state = optimizer["state"]
    if not isinstance(state, dict) or not set(state) <= set(range(len(shapes))):  # empty before the first step
        return "its optimizer state does not match the weights"
    for moments in state.values():
        if not isinstance(moments, dict) or set(moments) != {"step", "exp_avg", "exp_avg_sq"}:
            return "its optimizer state must hold step, exp_avg and exp_avg_sq for each weight"
        if any(not isinstance(t, torch.Tensor) or not t.is_floating_point() for t in moments.values()):
            return "its optimizer state must hold floating-point tensors"
        if moments["exp_avg"].shape != moments["exp_avg_sq"].shape or moments["step"].numel() != 1:
            return "its optimizer state does not have the weights' shapes"
        if not all(torch.isfinite(t).all() for t in moments.values()):
            return "its optimizer state holds numbers that are not finite"
    if Counter(tuple(m["exp_avg"].shape) for m in state.values()) - Counter(shapes):
        return "its optimizer state does not have the weights' shapes"
    return None


def build_model(ckpt: dict, device="cpu") -> tuple:
    """The model (in eval mode) and vocabulary a checkpoint describes."""
    config = GPTConfig(**ckpt["config"])
    model = GPT(config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    model.load_state_dict(state)
    model.to(device).eval()
    return model, Vocab(ckpt["vocab"])


def load_model(path, device="cpu") -> tuple:
    """(model, vocab, checkpoint metadata) from a checkpoint path."""
    ckpt = load_checkpoint(path)
    model, vocab = build_model(ckpt, device)
    return model, vocab, ckpt
