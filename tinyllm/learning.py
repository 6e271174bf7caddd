"""What the kid learned when: its surprise at every character of one
validation passage, at every saved snapshot, and by kind of character.

The export (`tinyllm.export`, learning.json) calls `passage_losses` once per
snapshot; the Training chapter colours the passage by those losses and
plots `class_means`; `learning_story` turns the means into the sentence the
page prints. Nothing here imports the app.

A character's **class** is decided by the character and the one before it,
so it is computed from the passage, never assumed. The classes do not
overlap: each character is in the first class of CLASSES whose rule it
meets (a capital is a capital even where it begins a word), or in none
(digits, symbols).
"""

import unicodedata

import torch
from torch.nn import functional as F

PASSAGE_CHARS = 1024  # the passage: the first this many characters of the validation split
BELOW = 1.0  # the loss the story asks about: "which class falls below 1.0 first"
WINDOWS_AT_ONCE = 32  # windows per forward pass: bounds the memory (no faster with more)


def in_word(before: str) -> bool:
    """Whether a letter after the two characters `before` continues a word:
    it follows a letter, or an apostrophe that follows one (don't, o'er)."""
    return before[1].isalpha() or (before[1] == "'" and before[0].isalpha())


# (name, one of them, rule) in the order of precedence. A rule sees the two
# characters before (spaces before the passage's start) and the character.
CLASSES = (
    ("spaces and newlines", "space or newline", lambda before, ch: ch.isspace()),
    ("capitals", "capital", lambda before, ch: ch.isupper()),
    ("first letters of words", "first letter of a word", lambda before, ch: ch.isalpha() and not in_word(before)),
    ("letters inside words", "letter inside a word", lambda before, ch: ch.isalpha() and in_word(before)),
    ("punctuation marks", "punctuation mark", lambda before, ch: unicodedata.category(ch).startswith("P")),
)
CLASS_RULES = (
    "Each character is counted in one class at most, the first whose rule it meets: spaces and newlines; "
    "capitals (a capital is a capital even where it begins a word); first letters of words (a lowercase letter "
    "after anything but a letter); letters inside words (after a letter, or after an apostrophe inside a word, "
    "as in don't); punctuation marks. Digits and other symbols are in no class."
)


def class_of(passage: str) -> list:
    """For each character of the passage from its second on (the ones the
    kid predicts): the index of its class in CLASSES, or None."""
    classes = []
    for i in range(1, len(passage)):
        before = passage[max(0, i - 2) : i].rjust(2)  # the passage's start counts as a space
        found = next((c for c, (*_, rule) in enumerate(CLASSES) if rule(before, passage[i])), None)
        classes.append(found)
    return classes


@torch.no_grad()
def passage_losses(model, ids: list) -> torch.Tensor:
    """-ln p of every character of `ids` from the second on, each predicted
    from the up-to-block_size characters before it: (len(ids) - 1,).

    The first window (the first T characters) predicts characters 1 .. T
    (each from all the characters before it); after that, character t is
    the last prediction of the window ids[t - T : t]."""
    T = model.config.block_size
    ids = torch.tensor(ids)
    n = len(ids)
    if n < 2:
        return torch.zeros(0)
    first = ids[: min(T, n - 1)]
    logits, _ = model(first[None])
    losses = [F.cross_entropy(logits[0], ids[1 : len(first) + 1], reduction="none")]
    # the window that ends just before character t, for every t after the first window
    targets = torch.arange(T + 1, n)
    for chunk in targets.split(WINDOWS_AT_ONCE):
        windows = torch.stack([ids[t - T : t] for t in chunk.tolist()])  # (B, T)
        logits, _ = model(windows)
        losses.append(F.cross_entropy(logits[:, -1], ids[chunk], reduction="none"))
    return torch.cat(losses)


def class_means(losses: torch.Tensor, classes: list) -> list:
    """The mean loss of each class's characters (None for a class with none)."""
    means = []
    for c in range(len(CLASSES)):
        members = [i for i, found in enumerate(classes) if found == c]
        means.append(float(losses[members].mean()) if members else None)
    return means


# --------------------------------------------------------------------------
# The sentences the page prints, from an exported learning.json


def class_counts_sentence(doc: dict) -> str:
    """'In this passage: 180 spaces and newlines, ..., and no punctuation
    (2 characters in no class).' Every class named with its count."""
    parts = [
        f"no {name}" if not n else f"1 {one}" if n == 1 else f"{n:,} {name}"
        for (name, one, _), n in zip(CLASSES, (c["count"] for c in doc["classes"]))
    ]
    unclassed = sum(1 for c in doc["class_of"] if c is None)
    rest = f" ({unclassed:,} of its characters are in no class)" if unclassed else ""
    return f"Of the {len(doc['class_of']):,} characters it predicts: {', '.join(parts[:-1])} and {parts[-1]}{rest}."


def learning_story(doc: dict, below: float = BELOW) -> str:
    """What the kid learned first and last, from the classes' mean losses:
    which class falls below `below` first and at which step, and which
    stays highest. Every clause is computed from `doc`."""
    steps, means = doc["steps"], doc["class_means"]
    names = [c["name"] for c in doc["classes"]]
    present = [c for c, cls in enumerate(doc["classes"]) if cls["count"]]
    if not present:
        return "No character of this passage is in any class, so there is no class to follow."
    last = len(steps) - 1
    if len(present) == 1:
        c = present[0]
        return (
            f"Only one class has characters in this passage, {names[c]}: its mean loss goes from "
            f"{means[0][c]:.2f} at step {steps[0]:,} to {means[last][c]:.2f} at step {steps[-1]:,}."
        )
    first_below = {c: next((s for s in range(len(steps)) if means[s][c] < below), None) for c in present}
    sentences = []
    already = [c for c in present if first_below[c] == 0]
    if len(already) == len(present):
        sentences.append(
            f"Every class is already below a loss of {below:.1f} at step {steps[0]:,}, the first snapshot: "
            f"there is little to be surprised by here."
        )
    else:
        if already:
            sentences.append(f"{_names(already, names, capital=True)} already below {below:.1f} at step {steps[0]:,}.")
        falling = [c for c in present if first_below[c] not in (None, 0)]
        if falling:
            earliest = min(first_below[c] for c in falling)
            first = [c for c in falling if first_below[c] == earliest]
            both = " both" if len(first) == 2 else " all" if len(first) > 2 else ""
            sentences.append(
                f"{_names(first, names, capital=True)} the first to fall below a loss of {below:.1f}:{both} "
                f"at step {steps[earliest]:,}."
            )
        never = [c for c in present if first_below[c] is None]
        if len(never) == len(present):
            closest = min(present, key=lambda c: means[last][c])
            sentences.append(
                f"No class falls below a loss of {below:.1f} by step {steps[-1]:,}; {names[closest]} come closest, "
                f"at {means[last][closest]:.2f}."
            )
        elif never:
            sentences.append(f"{_names(never, names, capital=True)} still above {below:.1f} at step {steps[-1]:,}.")
    highest = max(present, key=lambda c: means[last][c])
    # the earliest snapshot from which it is the highest at every later one
    since = last
    while since > 0 and max(present, key=lambda c: means[since - 1][c]) == highest:
        since -= 1
    lowest = min(present, key=lambda c: means[last][c])
    held = f"the highest mean loss at every snapshot from step {steps[since]:,} on" if since < last else "the highest"
    sentences.append(
        f"{names[highest].capitalize()} stay hardest to guess: {held}, {means[last][highest]:.2f} at step "
        f"{steps[-1]:,}, against {means[last][lowest]:.2f} for {names[lowest]}."
    )
    return " ".join(sentences)


def _names(classes: list, names: list, capital=False) -> str:
    """'Spaces and newlines are', 'Capitals and punctuation are'."""
    words = [names[c] for c in classes]
    text = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return (text[0].upper() + text[1:] if capital else text) + " are"
