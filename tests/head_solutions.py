"""The Head exercise solved, and each classic mistake planted in a copy of it.

The solution is the template with its five steps written as the kid's own
Head writes them (tinyllm/model.py); each mistake changes one line of it.
"""

from tinyllm.exercise import TEMPLATE

SOLUTION_STEPS = """        k = self.key(x)  # (B, T, hs)
        q = self.query(x)  # (B, T, hs)
        v = self.value(x)  # (B, T, hs)
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])  # (B, T, T)
        masked = scores.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        weights = F.softmax(masked, dim=-1)  # each row sums to 1
        return weights @ v  # (B, T, hs)
"""

TODO = '        raise NotImplementedError("write the five steps, then return")\n'
assert TODO in TEMPLATE
SOLUTION = TEMPLATE.replace(TODO, SOLUTION_STEPS)

# mistake: (the line as the solution writes it, the line with the mistake)
MISTAKES = {
    "no_scaling": ("q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])", "q @ k.transpose(-2, -1)"),
    "scale_by_head_size": ("/ math.sqrt(k.shape[-1])", "/ k.shape[-1]"),
    "no_mask": ('masked = scores.masked_fill(self.tril[:T, :T] == 0, float("-inf"))', "masked = scores"),
    "zero_mask": ('float("-inf"))', "0.0)"),
    "softmax_dim": ("F.softmax(masked, dim=-1)", "F.softmax(masked, dim=-2)"),
    "keys_not_transposed": ("scores = q @ k.transpose(-2, -1)", "scores = q @ k"),
    "returns_weights": ("return weights @ v", "return weights"),
    "query_key_swapped": (
        "k = self.key(x)  # (B, T, hs)\n        q = self.query(x)",
        "k = self.query(x)  # (B, T, hs)\n        q = self.key(x)",
    ),
}


def with_mistake(name: str) -> str:
    old, new = MISTAKES[name]
    assert old in SOLUTION, name
    return SOLUTION.replace(old, new, 1)


def planted(line: str, once=False) -> str:
    """The solution with `line` (one line, or several at the same indent) run first in forward
    (which the check calls once per head); once: the first time only."""
    first = "        k = self.key(x)  # (B, T, hs)\n"
    if once:
        line = "if not globals().get('_once'):\n    globals()['_once'] = True\n" + "".join(
            f"    {part}\n" for part in line.splitlines()
        )
    lines = "".join(f"        {part}\n" for part in line.splitlines())
    return SOLUTION.replace(first, lines + first)
