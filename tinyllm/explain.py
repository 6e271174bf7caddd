"""Small derived views the chapters explain, computed from exported numbers.

Pages draw; these functions compute. Each one works on the plain lists of
an export (or of tinyllm.export.analyze_text), so the app needs no model
for them.
"""

import math
import string
import unicodedata

import numpy as np

# The most characters each of the app's text boxes takes, by its use. The kid
# reads at most its context (64 characters for the kid, 256 at the training
# form's most), so a longer text is never used; the limit keeps one
# visitor's paste, or a forged message (the browser's limit binds only the
# browser), out of the server's memory and its caches.
TEXT_BOX_LIMITS = {"own text": 1_000, "prompt": 1_000, "encode": 200}


def attention_steps(head: dict, i: int) -> dict:
    """Head.forward for one query position i, step by step, from the head's
    exported q, k, v: the dot products, the scaling, the mask, the softmax
    and the weighted sum. Reproduces the exported weights (a test checks)."""
    q, k, v = head["q"], head["k"], head["v"]
    head_size = len(q[i])
    T = len(k)
    dots = [sum(a * b for a, b in zip(q[i], k[j])) for j in range(T)]
    scaled = [d / math.sqrt(head_size) for d in dots]
    visible = [j <= i for j in range(T)]  # the tril mask: row i sees columns 0..i
    top = max(s for s, ok in zip(scaled, visible) if ok)
    # subtracting the largest score before exp changes nothing but avoids overflow
    exps = [math.exp(s - top) if ok else 0.0 for s, ok in zip(scaled, visible)]
    total = sum(exps)
    weights = [e / total for e in exps]
    out = [sum(weights[j] * v[j][d] for j in range(i + 1)) for d in range(head_size)]
    return dict(
        dots=dots, scaled=scaled, visible=visible, weights=weights, out=out, sqrt_head_size=math.sqrt(head_size)
    )


def char_kind(ch: str) -> str:
    """A coarse class for colouring characters in pictures."""
    if ch in "aeiouAEIOU":
        return "vowel"
    if ch.isalpha():
        return "capital" if ch.isupper() else "consonant"
    if ch.isdigit():
        return "digit"
    if ch.isspace():
        return "space / newline"
    if ch in string.punctuation:
        return "punctuation"
    return "other"


def perplexity(loss: float) -> float:
    """e^loss: the kid is as unsure as if it chose among this many characters."""
    return math.exp(loss)


def surprise_colour(loss: float | None, worst: float = 6.0) -> str:
    """A background colour for a character: white when expected, red when surprising."""
    if loss is None:
        return "transparent"
    t = max(0.0, min(1.0, loss / worst))
    return f"rgba(220, 50, 47, {0.05 + 0.85 * t:.2f})"


def glyph(ch: str) -> str:
    """One visible symbol per character, for axes and coloured text. A
    character that shows nothing or changes how its neighbours show (a
    control, zero-width or right-to-left override character, a line
    separator) is named by its code point instead: an uploaded text may hold any."""
    if ch in GLYPHS:
        return GLYPHS[ch]
    if unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp"):
        return f"⟨U+{ord(ch):04X}⟩"
    return ch


GLYPHS = {"\n": "↵", " ": "␣", "\t": "⇥"}


def similarity_by_distance(similarity) -> list:
    """Mean similarity of two positions as a function of how far apart they
    are: entry d averages similarity[i][i + d] over every i."""
    T = len(similarity)
    return [sum(similarity[i][i + d] for i in range(T - d)) / (T - d) for d in range(T)]


def duration(minutes: float) -> str:
    """A training time in words: '12 minutes', '40 seconds'."""
    if minutes >= 1.5:
        return f"{minutes:.0f} minutes"
    seconds = minutes * 60
    return f"{seconds:.0f} seconds" if seconds >= 1.5 else "about a second"


RISE = 0.1  # how far likeness must climb back for describe_distances to call it a peak


def describe_distances(by_distance: list, shown: int = 5) -> dict:
    """What the mean similarity by distance of the position vectors shows,
    in facts a page can print: the values at distances 1..shown, whether
    neighbours are the most alike, whether it falls steadily over those
    distances, and the distances (2 or more) where it rises again to a peak:
    a local maximum at least RISE above the lowest value before it (a rise
    a reader can see, not rounding) and at least half the neighbours' likeness."""
    near = [float(v) for v in by_distance[1 : shown + 1]]
    further = [float(v) for v in by_distance[2:]]
    peaks = [
        d
        for d in range(2, len(by_distance) - 1)
        if by_distance[d] > by_distance[d - 1]
        and by_distance[d] >= by_distance[d + 1]
        and by_distance[d] - min(by_distance[1:d]) >= RISE
        and by_distance[d] > 0.5 * by_distance[1]
    ]
    return dict(
        near=near,
        neighbours_most_alike=bool(further) and near[0] > max(further),
        steady=all(a > b for a, b in zip(near, near[1:])),
        peaks=peaks,
    )


def count(n: int, noun: str) -> str:
    """'1 block', '4 blocks', '1,024 characters': a number with its noun, singular for one."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


NEAR_TIE = 0.02  # two habits' shares this close are a near-tie: neither clearly explains the head better


def near_ties(label: dict) -> list:
    """The habits (by score name) whose share of a head's attention is within
    NEAR_TIE of its strongest habit's, largest first: the label names one of
    a near-tie, not a winner."""
    top = label["score"]
    others = [(v, k) for k, v in label["scores"].items() if k != label["habit"] and top - v <= NEAR_TIE]
    return [k for _, k in sorted(others, reverse=True)]


RARE = 20  # a character seen fewer times than this: too rare for its embedding to have learned much


def too_rare(count: int) -> bool:
    """Whether a character seen `count` times in the corpus is too rare for
    its place among the embeddings (its neighbours) to mean anything: its
    vector was moved by a handful of examples, or stayed near its random start."""
    return count < RARE


def unit_rows(matrix) -> np.ndarray:
    """The rows of a matrix scaled to length 1 (a zero row stays zero): their
    dot products are the rows' cosine similarities."""
    rows = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1, norms)


CASE_GAP = 0.1  # how much more alike a letter and its capital must be than two characters on average


def case_pairs(chars: list, matrix) -> dict | None:
    """Whether a lowercase letter's embedding points like its capital's, from
    the embedding matrix (one row per character): the lowercase letters that
    have their capital in the vocabulary (`letters`, how many: `pairs`), for how many the capital is the
    nearest other character (`nearest`), the mean cosine of a letter with its
    capital (`pair_mean`) and of all pairs of different characters
    (`all_mean`). `strength` is "strong" when the capital is the nearest for
    at least half the letters, "weak" when the pairs are only more alike than
    all pairs by CASE_GAP, else None: the pattern is not there. None with
    fewer than 3 such letters (no pattern to speak of)."""
    index = {ch: i for i, ch in enumerate(chars)}
    capitals = {ch: ch.upper() for ch in chars if ch.islower() and ch.upper() != ch}
    pairs = [(index[ch], index[up]) for ch, up in capitals.items() if up in index]
    if len(pairs) < 3:
        return None
    unit = unit_rows(matrix)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)  # a character is not its own neighbour
    nearest = sum(int(similarity[a].argmax() == b) for a, b in pairs)
    pair_mean = float(np.mean([similarity[a, b] for a, b in pairs]))
    n = len(chars)
    all_mean = float(similarity[np.isfinite(similarity)].sum() / (n * (n - 1)))
    if 2 * nearest >= len(pairs):
        strength = "strong"
    elif pair_mean - all_mean >= CASE_GAP:
        strength = "weak"
    else:
        strength = None
    letters = [chars[a] for a, _ in pairs]
    return dict(
        pairs=len(pairs), letters=letters, nearest=nearest, pair_mean=pair_mean, all_mean=all_mean, strength=strength
    )


def smoothness(matrix) -> list:
    """For each column (a dimension of the position vectors, one row per
    position), how smoothly it changes from one position to the next: the
    correlation of its value at each position with its value at the next
    (1: a slow wave or a ramp; 0 or less: it jumps about). A constant column: 0."""
    return lagged_correlation(matrix, 1)


def lagged_correlation(matrix, lag: int) -> list:
    """For each column, the correlation of its value at each row with its
    value `lag` rows further on (over the rows that have one)."""
    values = np.asarray(matrix, dtype=np.float64)
    if len(values) <= lag:
        return [0.0] * values.shape[1]
    spread = values.std(axis=0)
    z = (values - values.mean(axis=0)) / np.where(spread == 0, 1, spread)
    return [float(v) for v in (z[lag:] * z[:-lag]).mean(axis=0)]


def repeating_dimensions(matrix, period: int, k: int = 2) -> list:
    """The k columns that most clearly repeat every `period` rows: alike
    `period` rows on (a high lagged correlation) and unlike at some distance
    in between (its lowest lagged correlation before the period), by the gap
    between the two, largest first. Each: {dimension, at_period, lowest, lowest_at}."""
    lags = {lag: lagged_correlation(matrix, lag) for lag in range(1, period + 1)}
    found = []
    for d in range(len(lags[period])):
        lowest_at = min(range(1, period), key=lambda lag: lags[lag][d]) if period > 1 else period
        found.append(dict(dimension=d, at_period=lags[period][d], lowest=lags[lowest_at][d], lowest_at=lowest_at))
    return sorted(found, key=lambda f: f["lowest"] - f["at_period"])[:k]
