"""Two runs side by side: the settings that differ, and which one learned
better, by how much and from which step, in sentences computed from the two
runs' own files (the Compare page and Meet the kid draw them).

Everything here reads what a run folder holds, and a run folder is untrusted
input even when it is committed: a value that is not what export writes is
left out (a loss that is not a finite number is no loss), never an error.
"""

import math
from dataclasses import dataclass

from tinyllm.explain import count, duration, perplexity
from tinyllm.model import GPTConfig
from tinyllm.settings import SETTINGS, described
from tinyllm.train import TrainConfig

# The settings two runs are compared on, in the order a reader meets them:
# the model's shape, then the training.
COMPARED = [d.name for d in described(GPTConfig) + described(TrainConfig)]
LEARNING_FORMAT = ("peek-export/learning", 1)  # export/learning.json, by its format and version


def number(value) -> float | None:
    """A finite number from a run's file, else None (a bool is no number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def is_step(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --- the settings -------------------------------------------------------------


def settings_of(card: dict) -> dict:
    """{setting: value} of a run's model card (model_card.json): its model's
    shape and its training settings, plus the text it read and whose Head."""
    config = card.get("config") if isinstance(card.get("config"), dict) else {}
    train = card.get("train_settings") if isinstance(card.get("train_settings"), dict) else {}
    values = {name: config.get(name, train.get(name)) for name in COMPARED}
    corpus = card.get("corpus") if isinstance(card.get("corpus"), dict) else {}
    values["corpus"] = (corpus.get("name"), corpus.get("md5"))
    values["head"] = "a learner's" if card.get("head") else "the kid's own"
    return values


def plain(value) -> str:
    """A setting's value as a reader writes it: 2e-3 as 0.002, 6000 as 6,000."""
    if isinstance(value, tuple):  # the text: (name, md5), said by its name
        return plain(value[0])
    if isinstance(value, bool) or value is None:
        return "?" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# What one setting's value says in a sentence ("1 block", "a context of 8
# characters"): the same words whichever run has it. Others: "Label 3".
PHRASES = {
    "n_layer": lambda v: count(v, "block"),
    "n_head": lambda v: count(v, "head") + " per layer",
    "block_size": lambda v: "a context of " + count(v, "character"),
    "n_embd": lambda v: f"a width of {v:,}",
    "steps": lambda v: count(v, "step"),
    "batch_size": lambda v: f"batches of {v:,} snippets",
}


def phrase(name: str, value) -> str:
    if name in PHRASES and is_step(value):
        return PHRASES[name](value)
    if name == "corpus":
        return f"the text {value[0] or '?'}"
    if name == "head":
        return f"{value} attention Head"
    return f"{SETTINGS[name].label.lower()} {plain(value)}"


@dataclass
class Difference:
    name: str  # the setting's name (n_layer), or "corpus" / "head"
    label: str  # how the form names it ("Layers")
    a: object  # its value in the first run
    b: object  # ... and in the second

    def sentence(self) -> str:
        """The second run's value, against the first's: '1 block instead of 4'."""
        said = f"{phrase(self.name, self.b)} instead of "
        if self.name in PHRASES and is_step(self.a):
            return said + plain(self.a)
        if self.name == "corpus":
            return said + (self.a[0] or "?")
        if self.name == "head":
            return said + f"{self.a} one"
        return said + plain(self.a)


def settings_table(card_a: dict, card_b: dict) -> list:
    """Every compared setting of two runs, a Difference each, in reading
    order (the Compare page highlights those whose values differ)."""
    a, b = settings_of(card_a), settings_of(card_b)
    labels = {name: SETTINGS[name].label for name in COMPARED} | {"corpus": "Text", "head": "Attention Head"}
    return [Difference(name, labels[name], a[name], b[name]) for name in labels]


def settings_diff(card_a: dict, card_b: dict) -> list:
    """The settings in which the second run differs from the first."""
    return [d for d in settings_table(card_a, card_b) if d.a != d.b]


def head_size(settings: dict) -> int | None:
    width, heads = settings["n_embd"], settings["n_head"]
    return width // heads if is_step(width) and is_step(heads) and heads > 0 else None


def differences_sentence(card_a: dict, card_b: dict) -> str:
    """'1 block instead of 4', the differences of the second run from the
    first, joined; when the heads differ but the width does not, what that does
    to each head's size is said too."""
    diff = settings_diff(card_a, card_b)
    if not diff:
        return "the same settings"
    a, b = settings_of(card_a), settings_of(card_b)
    parts = []
    for d in diff:
        part = d.sentence()
        if d.name == "n_head" and a["n_embd"] == b["n_embd"]:
            sizes = [head_size(s) for s in (a, b)]
            if None not in sizes:
                part += f" (each {sizes[1]:,} numbers wide instead of {sizes[0]:,}: the same width)"
        parts.append(part)
    return ", ".join(parts)


# --- which learned better -------------------------------------------------------


@dataclass
class Side:
    """One run, as the comparison needs it."""

    name: str  # as the sentence names it: "the kid", "'one-block'"
    rows: list  # its log rows (training.json's or log.jsonl's): step, val_loss, elapsed_s
    loss: float | None = None  # the exact validation loss of its kept checkpoint (None: none known)
    minutes: float | None = None  # how long it trained
    text: tuple | None = None  # the text it read: (name, md5) (None: not known)

    def curve(self) -> dict:
        """{step: validation loss measured during training}, for the rows that hold both."""
        return {row["step"]: row["val_loss"] for row in curve_rows(self.name, self.rows)}


def curve_rows(name: str, rows: list) -> list:
    """A run's validation loss for a chart: {run, step, minutes, val_loss}
    per log row that holds a step and a loss (minutes: None when not logged)."""
    kept = []
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and is_step(row.get("step")) and number(row.get("val_loss")) is not None:
            seconds = number(row.get("elapsed_s"))
            minutes = None if seconds is None else seconds / 60
            kept.append({"run": name, "step": row["step"], "minutes": minutes, "val_loss": row["val_loss"]})
    return kept


def capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def ahead_since(better: dict, worse: dict) -> tuple:
    """(the steps both measured, the first of them from which `better` stays
    below `worse` to the end; None if it is not below at the last)."""
    common = sorted(better.keys() & worse.keys())
    since = None
    for step in reversed(common):
        if not better[step] < worse[step]:
            break
        since = step
    return common, since


def verdict(a: Side, b: Side) -> str:
    """Which run is better, by how much and from which step, in sentences.

    Better is the lower exact validation loss of the kept checkpoints; a run
    without one (it failed, or was never exported) is compared on the
    validation loss both measured at their last common step instead."""
    if a.text and b.text and a.text[1] != b.text[1]:
        losses = ", ".join(f"{s.loss:.3f} for {s.name}" for s in (a, b) if number(s.loss) is not None)
        return (
            f"{capital(a.name)} and {b.name} read different texts ({plain(a.text)} and {plain(b.text)}): a loss "
            "measures surprise on its own text, so theirs cannot say which learned better"
            + (f" (validation loss {losses})." if losses else ".")
        )
    curve_a, curve_b = a.curve(), b.curve()
    common = sorted(curve_a.keys() & curve_b.keys())
    loss_a, loss_b = number(a.loss), number(b.loss)
    lead = ""
    if loss_a is None or loss_b is None:
        if not common:
            return (
                f"{capital(a.name)} and {b.name} cannot be compared: they have no validation loss "
                "measured at the same step, and not both have a kept checkpoint."
            )
        missing = " and ".join(s.name for s in (a, b) if number(s.loss) is None)
        lead = (
            f"{capital(missing)} {'lack' if ' and ' in missing else 'lacks'} a kept checkpoint's exact loss, so "
            f"this compares the validation loss at step {common[-1]:,}, the last step both measured. "
        )
        loss_a, loss_b = curve_a[common[-1]], curve_b[common[-1]]
    if round(loss_a, 3) == round(loss_b, 3):
        return lead + f"{capital(a.name)} and {b.name} are as good as each other: validation loss {loss_a:.3f}."
    better, worse = (a, b) if loss_a < loss_b else (b, a)
    low, high = sorted((loss_a, loss_b))
    sentences = [
        f"{capital(better.name)} is better: validation loss {low:.3f} against {high:.3f} for {worse.name}, "
        f"{high - low:.3f} lower ({100 * (high - low) / high:.1f}% lower). As unsure as picking among "
        f"{perplexity(low):.1f} characters instead of {perplexity(high):.1f}."
    ]
    steps, since = ahead_since(better.curve(), worse.curve())
    if not steps:
        sentences.append(
            "They never measured the validation loss at the same step, so when it pulled ahead is unknown."
        )
    elif since is None:
        sentences.append(
            f"Yet at step {steps[-1]:,}, the last step both measured, {worse.name} was not behind: "
            "the kept checkpoints are from different steps."
        )
    elif len(steps) == 1:
        sentences.append(f"Step {since:,} is the only step both measured: when it pulled ahead is unknown.")
    elif since == steps[0]:
        sentences.append(f"It was ahead at every step both measured, from step {since:,} to step {steps[-1]:,}.")
    else:
        behind = sum(1 for s in steps if s < since)
        sentences.append(
            f"It has been ahead since step {since:,} and stayed ahead to step {steps[-1]:,}; "
            f"before that it was not ahead at {behind} of the {len(steps)} evaluations both made."
        )
    minutes = number(a.minutes), number(b.minutes)
    if None not in minutes:
        sentences.append(
            f"Training took {duration(minutes[0])} for {a.name}, {duration(minutes[1])} for {b.name}, "
            "each on the machine that trained it, busy or not."
        )
    return lead + " ".join(sentences)


def card_side(name: str, card: dict | None, rows: list) -> Side:
    """A Side from a run's model card (None: it has none) and its log rows."""
    card = card or {}
    loss = number(card.get("exact_val_loss")) or number(card.get("val_loss"))
    corpus = card.get("corpus") if isinstance(card.get("corpus"), dict) else {}
    text = (corpus["name"], corpus["md5"]) if isinstance(corpus.get("md5"), str) else None
    return Side(name, rows, loss, number(card.get("training_minutes")), text)


def sibling_line(name: str, card: dict, kid_card: dict) -> str:
    """One line for Meet the kid: what differs from the kid, and the validation loss."""
    loss, kid_loss = card_side(name, card, []).loss, card_side("kid", kid_card, []).loss
    said = f"{name}: {differences_sentence(kid_card, card)}"
    if loss is None:
        return said + "; its validation loss is not known"
    said += f"; validation loss {loss:.3f}"
    if kid_loss is not None:
        said += f" ({loss - kid_loss:+.3f} against the kid)"
    return said


# --- what the two runs learned ------------------------------------------------------


def learning_rows(doc) -> list | None:
    """export/learning.json's mean loss per class of character at every
    snapshot, as rows {step, class, loss}; None if the document is not one
    (missing, another format, or damaged)."""
    if not isinstance(doc, dict) or (doc.get("format"), doc.get("version")) != LEARNING_FORMAT:
        return None
    steps, classes, means = doc.get("steps"), doc.get("classes"), doc.get("class_means")
    if not (isinstance(steps, list) and isinstance(classes, list) and isinstance(means, list)):
        return None
    if len(means) != len(steps) or not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in classes):
        return None
    rows = []
    for step, row in zip(steps, means):
        if not is_step(step) or not isinstance(row, list) or len(row) != len(classes):
            return None
        for cls, value in zip(classes, row):
            if number(value) is not None:  # null: no character of that class in the passage
                rows.append({"step": step, "class": cls["name"], "loss": value})
    return rows


def head_rows(attention: dict, knockout: dict) -> list:
    """Each head's habit label (attention.json) and what knocking it out
    costs (knockout.json: the loss without it, less the loss with all), as
    rows {layer, head, habit, cost} (a part the files lack is None)."""
    labels = attention.get("labels") if isinstance(attention, dict) else None
    heads = knockout.get("heads") if isinstance(knockout, dict) else None
    base = number(knockout.get("base_loss")) if isinstance(knockout, dict) else None
    labels = labels if isinstance(labels, list) else []
    heads = heads if isinstance(heads, list) else []
    rows = []
    for layer in range(max(len(labels), len(heads))):
        layer_labels = labels[layer] if layer < len(labels) and isinstance(labels[layer], list) else []
        layer_costs = heads[layer] if layer < len(heads) and isinstance(heads[layer], list) else []
        for head in range(max(len(layer_labels), len(layer_costs))):
            label = layer_labels[head] if head < len(layer_labels) and isinstance(layer_labels[head], dict) else {}
            loss = number(layer_costs[head]) if head < len(layer_costs) else None
            habit = label.get("label") if isinstance(label.get("label"), str) else None
            rows.append(
                dict(
                    layer=layer,  # counted from 0, as on every page
                    head=head,
                    habit=habit,
                    clear=label.get("clear") is True,
                    cost=None if loss is None or base is None else round(loss - base, 4),
                )
            )
    return rows


def matching_steps(samples_a: list, samples_b: list) -> list:
    """The steps at which both runs logged a sample (training.json's samples)."""

    def steps(samples):
        return {
            s["step"]
            for s in samples
            if isinstance(s, dict) and is_step(s.get("step")) and isinstance(s.get("text"), str)
        }

    return sorted(steps(samples_a) & steps(samples_b))
