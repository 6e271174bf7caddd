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

from dataclasses import fields
from pathlib import Path

import torch

from tinyllm.data import Vocab
from tinyllm.errors import TinyLLMError
from tinyllm.io import atomic_torch_save
from tinyllm.model import GPT, GPTConfig, count_params

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


def load_checkpoint(path) -> dict:
    """Read and check a checkpoint file; raise TinyLLMError saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise TinyLLMError(f"No checkpoint at {path}. Train one with: python -m tinyllm train --out DIR")
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
        raise TinyLLMError(
            f"{path} has checkpoint format version {ckpt.get('version')}; this tinyllm reads version {VERSION}."
        )
    problem = metadata_problem(ckpt)
    if problem:
        raise TinyLLMError(f"{path} is not a checkpoint this tinyllm can use: {problem}.")
    return ckpt


def is_count(value, smallest=0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= smallest


def metadata_problem(ckpt: dict) -> str | None:
    """What is wrong with a checkpoint's metadata and weights, in words, or
    None. The file is untrusted (an upload, a copy from elsewhere): every
    field the readers use is checked, and the weights' shapes against the
    config's, before anything is built from them (a config that claims a
    huge model with small weights must not make us allocate the huge one)."""
    config = ckpt.get("config")
    names = {f.name for f in fields(GPTConfig)}
    if not isinstance(config, dict) or set(config) != names:
        return f"its config must hold exactly {', '.join(sorted(names))}"
    if not all(is_count(config[name], 1) for name in names - {"dropout"}):
        return "its config's sizes must be whole numbers of at least 1"
    if not isinstance(config["dropout"], (int, float)) or not 0 <= config["dropout"] < 1:
        return "its config's dropout must be a number in [0, 1)"
    if config["n_embd"] % config["n_head"]:
        return "its config's n_embd is not a multiple of n_head"
    vocab = ckpt.get("vocab")
    if not isinstance(vocab, list) or not all(isinstance(c, str) and len(c) == 1 for c in vocab):
        return "its vocabulary must be a list of single characters"
    if len(set(vocab)) != len(vocab) or len(vocab) != config["vocab_size"]:
        return f"its vocabulary of {len(vocab)} characters does not match vocab_size {config['vocab_size']}"
    if not is_count(ckpt.get("step")) or not all(isinstance(ckpt.get(k), dict) for k in ("losses", "train", "corpus")):
        return "its step, losses, training settings or corpus are missing or of the wrong kind"
    weights = ckpt.get("model")
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        return "its weights must be a dict of tensors"
    gpt_config = GPTConfig(**config)
    if sum(v.numel() for v in weights.values()) != count_params(gpt_config):
        return "its weights do not have the sizes its config describes"
    with torch.device("meta"):  # shapes only: nothing is allocated
        expected = {k: v.shape for k, v in GPT(gpt_config).state_dict().items()}
    if {k: v.shape for k, v in weights.items()} != expected:
        return "its weights do not have the shapes its config describes"
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
