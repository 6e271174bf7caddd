"""Knock it out, drawn: the panel of The whole kid (switch parts off, see the
guess and the loss change) and each head's cost on Attention. The numbers
come from tinyllm/knockout.py: the live knock-out and the exported table."""

import pandas as pd
import streamlit as st

from tinyllm.explain import glyph
from tinyllm.knockout import Off, head_costs, knock_out
from tinyllm.runfolder import RunFolder
from ui.loaders import current_run, model, mtime_ns


def head_name(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


@st.cache_data(max_entries=256, show_spinner=False)
def _knocked(run_dir: str, mtime: int, text: str, pos: int, off: Off) -> dict:
    kid, vocab, _ = model()
    return knock_out(kid, vocab, text, pos, off)


def knocked(text: str, pos: int, off: Off) -> dict:
    run_dir = current_run()
    return _knocked(str(run_dir), mtime_ns(RunFolder(run_dir).model), text, pos, off)


def top_table(top: list, chars: list, where):
    """The five likeliest next characters, as a table (characters shown as text)."""
    frame = pd.DataFrame({"next": [glyph(chars[i]) for i, _ in top], "probability": [p for _, p in top]})
    where.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "probability": st.column_config.ProgressColumn("probability", min_value=0.0, max_value=1.0, format="%.3f")
        },
    )


@st.fragment
def knockout_panel(text: str, pos: int, cfg: dict):
    """Switch heads, feed-forward layers or the position embedding off; see
    the top 5 at `pos` and the loss on `text`, before and after."""
    L, H = cfg["n_layer"], cfg["n_head"]
    st.subheader("Knock it out")
    st.markdown(
        "What does a part of the kid do? Switch it off and see. A head switched off outputs zeros before "
        "the projection mixes the heads; a feed-forward layer switched off adds nothing to the stream; "
        "without the position embedding the kid reads the characters with no idea where they stand."
    )
    c1, c2, c3 = st.columns([3, 2, 2])
    heads = c1.multiselect(
        "Heads off",
        [(b, h) for b in range(L) for h in range(H)],
        key="knock_heads",
        format_func=lambda p: head_name(*p),
    )
    ffwd = c2.multiselect("Feed-forward layers off", range(L), key="knock_ffwd", format_func=lambda b: f"block {b}")
    positions = c3.checkbox("Position embedding off", key="knock_positions")
    off = Off(heads=tuple(sorted(heads)), ffwd=tuple(sorted(ffwd)), positions=positions)
    result = knocked(text, pos, off)
    _, vocab, _ = model()
    before, after = result["before"], result["after"]
    left, right = st.columns(2)
    left.markdown(f"**Everything on**: the 5 likeliest after position {pos}")
    top_table(before["top"], vocab.chars, left)
    right.markdown(f"**{'With those parts off' if off else 'Nothing switched off yet'}**")
    top_table(after["top"], vocab.chars, right)
    if before["loss"] is None:
        st.caption("A text of one character predicts nothing that can be checked, so it has no loss.")
        return
    change = after["loss"] - before["loss"]
    left.metric("Loss on this text", f"{before['loss']:.3f}")
    right.metric("Loss on this text", f"{after['loss']:.3f}", delta=f"{change:+.3f}", delta_color="inverse")
    if off:
        n = len(result["text"]) - 1
        st.caption(
            f"The loss is the mean of −ln p(what really came next) over the {n} "
            f"{'position' if n == 1 else 'positions'} of this text with a next character. "
            "The Attention chapter lists what each head costs on "
            "the validation text."
        )


def cost_words(cost: float) -> str:
    verb = "raises" if cost >= 0 else "lowers"
    return f"switching it off {verb} the loss by {abs(cost):.3f}"


def costs_sentence(table: dict, rows: list, threshold: float) -> str:
    """Which heads matter most, and whether the weak ones do, from head_costs' rows."""
    first, *then = rows[:3]
    name = head_name(first["layer"], first["head"])
    where = (
        f"on the first {table['slice_chars']:,} characters of validation text (loss {table['base_loss']:.3f} "
        "with every head on)"
    )
    if len(rows) == 1:
        sentence = f"Switching off the only head, **{name}**, {where}, changes the loss by {first['cost']:+.3f}."
    else:
        sentence = f"Switched off alone, {where}, **{name}** changes the loss most: by {first['cost']:+.3f}"
        sentence += "; then " + " and ".join(f"**{head_name(r['layer'], r['head'])}** ({r['cost']:+.3f})" for r in then)
        sentence += "."
    weak = [r for r in rows if not r["clear"]]
    clear = [r for r in rows if r["clear"]]
    if not weak:
        return sentence + f" {'Every head has' if len(rows) > 1 else 'It has'} a habit above {threshold:.0%}."
    if len(rows) == 1:
        return sentence + f" It has no habit above {threshold:.0%}."
    worst = max(r["cost"] for r in weak)
    heads = f"{len(weak)} *weak* heads" if len(weak) > 1 else "one *weak* head"
    sentence += f" The {heads}, with no habit above {threshold:.0%}, change it by at most {worst:+.3f} each"
    if clear and worst < 0.1 * first["cost"]:
        sentence += f", less than a tenth of {name}'s cost: one at a time, the kid hardly needs them."
    else:
        sentence += "."
    if len(weak) > 1:
        sentence += " Switched off together they may matter more: try it on The whole kid."
    return sentence


def head_costs_view(table: dict, labels: list, threshold: float):
    """Each head's cost, sortable, and a sentence on which heads matter."""
    rows = head_costs(table, labels)
    if not rows:
        return
    st.markdown("#### What each head costs")
    st.markdown(costs_sentence(table, rows, threshold))
    frame = pd.DataFrame(
        {
            "head": [head_name(r["layer"], r["head"]) for r in rows],
            "cost": [r["cost"] for r in rows],
            "habit": [r["label"] + ("" if r["clear"] else " (weak)") for r in rows],
            "share": [r["score"] for r in rows],
        }
    )
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        height=min(35 * (len(rows) + 1) + 8, 700),  # the kid's every head without scrolling
        column_config={
            "share": st.column_config.NumberColumn("habit share", format="%.2f"),
            "cost": st.column_config.NumberColumn(
                "cost", format="%+.3f", help="How much the loss changes with this head alone switched off."
            ),
        },
    )
    st.caption("Costliest first; click a column's name to sort by it.")
