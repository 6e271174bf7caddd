"""Every training setting, described once: a table beside the dataclasses.

GPTConfig (model.py) and TrainConfig (train.py) are plain dataclasses: a
name, a default and a short comment per field. What the reader of a command
line or of the app's form needs about each setting lives here, keyed by the
field's name: a one-line help text, the label the app's form shows, the
bounds a value must keep and, for the settings the form offers, the form's
range and step. The command line's flags, the app's form and the validation
messages are all made from this table, so a setting is renamed or
re-explained in one place (tests/test_cli.py checks that every field has
its row, and every row its field).

Messages name a setting the way the reader met it: `--n-embd` on the
command line (words="cli"), "Width (n_embd)" in the app's form (words="form").
"""

import math
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple


@dataclass(frozen=True)
class Setting:
    help: str  # one line: the flag's --help and the form's tooltip
    label: str  # how the app's form (and its messages) name the setting
    minimum: float | None = None  # the smallest allowed value
    above: float | None = None  # a strict lower bound
    below: float | None = None  # a strict upper bound
    choices: tuple | None = None  # the only allowed values
    form: tuple | None = None  # (low, high, step) when the app's form offers it (maybe narrower than the bounds)


SETTINGS = {
    # GPTConfig: the shape of the model (vocab_size comes from the corpus: no row)
    "block_size": Setting(
        "How many characters the kid can read at once: its context.",
        "Context (block size)",
        minimum=1,
        form=(8, 256, 8),
    ),
    "n_embd": Setting(
        "Numbers in every vector inside the model (a multiple of the heads).",
        "Width (n_embd)",
        minimum=1,
        form=(16, 256, 16),
    ),
    "n_head": Setting(
        "Attention heads per layer; each has n_embd / n_head numbers and looks for its own pattern.",
        "Heads per layer",
        minimum=1,
        form=(1, 8, 1),
    ),
    "n_layer": Setting("Transformer blocks stacked on top of each other.", "Layers", minimum=1, form=(1, 8, 1)),
    "dropout": Setting(
        "Fraction of activations zeroed while training (after attention and feed-forward), against memorising.",
        "Dropout",
        minimum=0.0,
        below=1.0,
        form=(0.0, 0.5, 0.05),
    ),
    # TrainConfig: how the kid is trained
    "steps": Setting(
        "How many times the kid sees a batch and adjusts its weights.", "Steps", minimum=1, form=(50, 20000, 50)
    ),
    "batch_size": Setting(
        "Snippets of text (block_size characters each) per step: more is smoother, slower.",
        "Batch size",
        minimum=1,
        form=(1, 128, 1),
    ),
    "lr": Setting(
        "Peak learning rate, the size of each adjustment: too high diverges, too low crawls.",
        "Learning rate",
        above=0.0,
        form=(1e-4, 1e-2, 1e-4),
    ),
    "min_lr": Setting(
        "Learning rate at the end of the cosine decay (at most the peak).", "Final learning rate", minimum=0.0
    ),
    "warmup_steps": Setting(
        "Steps of linear warm-up from 0 to the peak learning rate: early gradients are wild.",
        "Warm-up steps",
        minimum=0,
    ),
    "weight_decay": Setting("AdamW's pull of weight matrices towards zero.", "Weight decay", minimum=0.0),
    "grad_clip": Setting("Gradients with a larger norm are scaled down to this.", "Gradient clip", above=0.0),
    "eval_interval": Setting("Evaluate, and log a sample, every this many steps.", "Evaluation interval", minimum=1),
    "eval_batches": Setting(
        "Fixed batches per evaluation, for train and for val (the same ones every time).",
        "Evaluation batches",
        minimum=1,
    ),
    "seed": Setting(
        "The same seed repeats the same run, number for number, on the same CPU.",
        "Seed",
        minimum=0,
        below=2**63,
        form=(0, 2**31 - 1, 1),
    ),
    "device": Setting(
        "Where to train: auto picks CUDA, else MPS, else the CPU.", "Device", choices=("auto", "cpu", "cuda", "mps")
    ),
    "sample_chars": Setting("Length of the sample logged at each evaluation.", "Sample length", minimum=1),
}


class Described(NamedTuple):
    """A config field with its row of SETTINGS: all a flag, a form widget or a message needs."""

    name: str
    default: object
    help: str
    label: str
    minimum: float | None
    above: float | None
    below: float | None
    choices: tuple | None
    form: tuple | None


def described(config_class) -> list:
    """The fields of a config class that have a row in SETTINGS, in the
    class's order (vocab_size, which comes from the corpus, has none)."""
    return [
        Described(f.name, f.default, **asdict(SETTINGS[f.name])) for f in fields(config_class) if f.name in SETTINGS
    ]


def flag(name: str) -> str:
    """The command-line flag of a setting: n_embd -> --n-embd."""
    return "--" + name.replace("_", "-")


def name_in(words: str, name: str) -> str:
    """How a message names a setting: its flag, or the form's label."""
    return flag(name) if words == "cli" else SETTINGS[name].label


def shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def bound_problems(config, words: str) -> list:
    """Each field of config outside its bounds in SETTINGS, as a sentence."""
    problems = []
    for rules in described(type(config)):
        value, name = getattr(config, rules.name), name_in(words, rules.name)
        if rules.choices is not None:
            if value not in rules.choices:
                problems.append(f"{name} must be one of {', '.join(rules.choices)}, not {value}")
            continue
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{name} must be a finite number, not {value}")
        elif rules.minimum is not None and not value >= rules.minimum:
            problems.append(f"{name} must be at least {shown(rules.minimum)}, not {shown(value)}")
        elif rules.above is not None and not value > rules.above:
            problems.append(f"{name} must be above {shown(rules.above)}, not {shown(value)}")
        elif rules.below is not None and not value < rules.below:
            problems.append(f"{name} must be below {shown(rules.below)}, not {shown(value)}")
    return problems


def form_fields(*config_classes) -> list:
    """The settings the app's training form offers, in the order given."""
    return [d for config_class in config_classes for d in described(config_class) if d.form]
