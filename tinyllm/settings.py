"""Each training setting is described once: on its dataclass field.

GPTConfig (model.py) and TrainConfig (train.py) declare their fields with
`setting(...)`, which keeps the description beside the default: a one-line
help text, the label the app's form shows, the bounds a value must keep and,
for the settings the form offers, the form's range and step. The command
line's flags, the app's form and the validation messages are all made from
these fields, so a setting is renamed or re-explained in one place.

Messages name a setting the way the reader met it: `--n-embd` on the
command line (words="cli"), "Width (n_embd)" in the app's form (words="form").
"""

import math
from dataclasses import field, fields


def setting(default, help, *, label, minimum=None, above=None, below=None, choices=None, form=None):
    """A dataclass field with its description.

    minimum: the smallest allowed value; above / below: strict bounds;
    choices: the only allowed values; form: (low, high, step) when the app's
    training form offers the setting (the form's range may be narrower)."""
    return field(
        default=default,
        metadata=dict(help=help, label=label, minimum=minimum, above=above, below=below, choices=choices, form=form),
    )


def described(config_class) -> list:
    """The fields of a config class that carry a description (vocab_size,
    which comes from the corpus, does not)."""
    return [f for f in fields(config_class) if "help" in f.metadata]


def flag(name: str) -> str:
    """The command-line flag of a setting: n_embd -> --n-embd."""
    return "--" + name.replace("_", "-")


def name_in(words: str, name: str, config_classes) -> str:
    """How a message names a setting: its flag, or the form's label."""
    if words == "cli":
        return flag(name)
    for config_class in config_classes:
        for f in described(config_class):
            if f.name == name:
                return f.metadata["label"]
    raise KeyError(name)


def shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def bound_problems(config, words: str) -> list:
    """Each field of config outside its declared bounds, as a sentence."""
    problems = []
    for f in described(type(config)):
        value, rules = getattr(config, f.name), f.metadata
        name = flag(f.name) if words == "cli" else rules["label"]
        if rules["choices"] is not None:
            if value not in rules["choices"]:
                problems.append(f"{name} must be one of {', '.join(rules['choices'])}, not {value}")
            continue
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{name} must be a finite number, not {value}")
        elif rules["minimum"] is not None and not value >= rules["minimum"]:
            problems.append(f"{name} must be at least {shown(rules['minimum'])}, not {shown(value)}")
        elif rules["above"] is not None and not value > rules["above"]:
            problems.append(f"{name} must be above {shown(rules['above'])}, not {shown(value)}")
        elif rules["below"] is not None and not value < rules["below"]:
            problems.append(f"{name} must be below {shown(rules['below'])}, not {shown(value)}")
    return problems


def form_fields(*config_classes) -> list:
    """The settings the app's training form offers, in the order given."""
    return [f for config_class in config_classes for f in described(config_class) if f.metadata["form"]]
