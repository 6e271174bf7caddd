"""A head's habits: what it attends to, measured, named and put in words.

The export labels every head of every snapshot; the pages say it in a
sentence. Both read this module, the one home of a habit's targets, its
score, its threshold and its words. docs/export.md ("Head labels") says
what each habit's keys are.
"""

import torch

from tinyllm.trace import trace

LABEL_THRESHOLD = 0.4  # a head is named after a pattern that holds this much of its attention
MAX_OFFSET = 8  # how far back a "fixed offset" head may look
VOWELS = set("aeiouAEIOU")
LABEL_NUMBERS = 2**23  # attention weights held at once while labelling heads (scores and weights: 64 MB)


# What a head's habits are called on the pages, by the score's name.
HABITS = {
    "previous": "the previous character",
    "back": "{offset} characters back",
    "self": "itself",
    "start": "the first position",
    "same": "earlier copies of its own character",
    "after_same": "what followed its own character before",
    "space": "the last space or newline",
    "word_start": "the start of its word",
    "vowel": "the last vowel",
    "consonant": "the last consonant",
}


def habit_sentence(label: dict) -> str:
    """What a head does, from its exported label: its strongest habit and
    how much of its attention that habit explains, then the next two."""
    others = sorted(((v, k) for k, v in label["scores"].items() if k != label["habit"]), reverse=True)[:2]
    then = ", ".join(f"{HABITS[k].format(offset=label['offset'])} {v:.0%}" for v, k in others)
    if label["clear"]:
        return f"mostly attends to **{label['label']}** ({label['score']:.0%} of its attention; then {then})"
    return (
        f"no single habit: its strongest is **{label['label']}** with {label['score']:.0%} of its "
        f"attention, then {then}"
    )


def latest_before(flags: list, inclusive=False) -> list:
    """For each position i, the latest position k < i (k <= i if inclusive)
    whose flag is set, or -1."""
    latest, found = [], -1
    for i, flag in enumerate(flags):
        if inclusive and flag:
            found = i
        latest.append(found)
        if not inclusive and flag:
            found = i
    return latest


def habit_targets(ids: torch.Tensor, chars) -> dict:
    """For each habit, a (B, T, T) mask: the keys j that query i would look
    at if the head had that habit (always j <= i). chars: the vocabulary."""
    B, T = ids.shape
    earlier = torch.ones(T, T, dtype=torch.bool).tril(-1)  # j < i
    offsets = torch.arange(T)[:, None] - torch.arange(T)[None, :]  # i - j
    same = ids[:, :, None] == ids[:, None, :]
    after_same = torch.zeros(B, T, T, dtype=torch.bool)
    after_same[:, :, 1:] = same[:, :, :-1] & (offsets[:, 1:] >= 0)  # ids[j - 1] == ids[i], j <= i
    targets = dict(
        previous=(offsets == 1).expand(B, T, T),
        self=(offsets == 0).expand(B, T, T),
        start=torch.zeros(B, T, T, dtype=torch.bool),
        same=same & earlier,
        after_same=after_same,
    )
    targets["start"][:, 1:, 0] = True
    latest = {name: torch.zeros(B, T, T, dtype=torch.bool) for name in ("space", "word_start", "vowel", "consonant")}
    for b, row in enumerate(ids.tolist()):
        text = [chars[i] for i in row]
        spaces = [c in " \n" for c in text]
        found = dict(
            space=latest_before(spaces),
            vowel=latest_before([c in VOWELS for c in text]),
            consonant=latest_before([c.isalpha() and c not in VOWELS for c in text]),
        )
        word_starts = [k + 1 for k in latest_before(spaces, inclusive=True)]
        found["word_start"] = [s if s >= 1 and s <= i else -1 for i, s in enumerate(word_starts)]
        for name, positions in found.items():
            for i, j in enumerate(positions):
                if j >= 0:
                    latest[name][b, i, j] = True
    return {**targets, **latest}


def head_scores(weights: torch.Tensor, targets: dict) -> tuple:
    """How much of a head's attention each habit explains: the weight on the
    habit's keys, averaged over the queries that have such keys.
    weights: (B, T, T) for B texts; targets: habit_targets of those texts.
    `back` is the best fixed distance d from 2 to MAX_OFFSET. Returns (scores, d)."""
    B, T, _ = weights.shape
    scores = {}
    for name, mask in targets.items():
        has = mask.any(-1)
        scores[name] = float((weights * mask).sum(-1)[has].mean()) if has.any() else 0.0

    def at_offset(d):  # mean weight on position i - d, over queries i >= d
        return float(weights[:, d:, :].diagonal(dim1=1, dim2=2).mean()) if d < T else 0.0

    scores["back"], offset = max(((at_offset(d), d) for d in range(2, min(MAX_OFFSET, T - 1) + 1)), default=(0.0, 2))
    return scores, offset


def label_head(scores: dict, offset: int) -> dict:
    """The habit that explains most of a head's attention, in words, with its
    score; `clear` when it holds at least LABEL_THRESHOLD of the attention
    (else it is only the head's strongest habit among weak ones)."""
    name, score = max(scores.items(), key=lambda item: item[1])
    return dict(habit=name, label=HABITS[name].format(offset=offset), score=score, clear=score >= LABEL_THRESHOLD)


def label_texts(model, vocab, text: str) -> torch.Tensor:
    """(B, T) ids: consecutive windows of text (the validation slice) to
    measure the heads' habits on, as many as fit LABEL_NUMBERS (at most 32)."""
    c = model.config
    T = c.block_size
    most = max(1, min(32, LABEL_NUMBERS // (2 * T * T * c.n_head * c.n_layer)))
    ids = vocab.encode(text[: most * T])
    return torch.tensor(ids[: len(ids) // T * T]).view(-1, T)


def head_labels(model, ids: torch.Tensor, targets: dict) -> list:
    """[[{habit, label, score, clear, offset, scores}] per head] per layer:
    each head's strongest habit on the texts ids (B, T), whose habit_targets
    are given (the same for every snapshot: computed once)."""
    labels = []
    for block in trace(model, ids)["blocks"]:
        row = []
        for head in block["heads"]:
            scores, offset = head_scores(head["weights"], targets)
            label = label_head(scores, offset)
            row.append(
                dict(
                    label,
                    score=round(label["score"], 3),
                    offset=offset,
                    scores={k: round(v, 3) for k, v in scores.items()},
                )
            )
        labels.append(row)
    return labels
