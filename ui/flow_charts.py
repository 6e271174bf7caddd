"""Pictures for "The whole kid": the forward pass as a diagram, a vector as a
strip of coloured cells, the pushes behind a logit, a neuron's contexts."""

import functools
import html
import json

import altair as alt
import numpy as np
import pandas as pd

from tinyllm.explain import glyph
from ui.charts import DIVERGING, FIT_WIDTH, Picture, vega_lite
from ui.text import shown

SELECTED = "#1f4e79"
# A space or a newline as an axis label: its glyph alone (␣ sits on the
# baseline) looks as if it labelled the gap below its bar; with its name it
# reads as the label of its own bar.
NAMED = {" ": "␣ space", "\n": "↵ newline", "\t": "⇥ tab"}


def char_label(ch: str) -> str:
    """A character as the label of a bar: its glyph, named when it is white space."""
    return NAMED.get(ch, glyph(ch))


PLAIN = "#f1efe6"


class Diagram:
    """A column of boxes joined by arrows, drawn as SVG top to bottom. Laid
    out here rather than by Graphviz: the browser spent most of a second
    laying out a DOT graph on every change of stage."""

    WIDTH, ROW, GAP, MIDDLE = 380, 26, 16, 175  # SVG units
    STREAM_X = 355  # where the residual stream's bypass runs

    def __init__(self):
        self.parts, self.y = [], 10

    def box(self, label, selected=False, plain=False, width=None):
        width = width or min(len(label) * 6.3 + 22, self.WIDTH - 60)
        x = self.MIDDLE - width / 2
        fill, ink = (SELECTED, "white") if selected else ("none" if plain else PLAIN, "#1d1d1f")
        if not plain:
            self.parts.append(
                f'<rect x="{x:.0f}" y="{self.y}" width="{width:.0f}" height="{self.ROW}" rx="8" '
                f'fill="{fill}" stroke="#555" stroke-width="{2 if selected else 1}"/>'
            )
        self.parts.append(
            f'<text x="{self.MIDDLE}" y="{self.y + 17}" text-anchor="middle" fill="{ink}">{html.escape(label)}</text>'
        )
        return self.advance()

    def heads(self, n_head, selected):
        size, gap = 30, 4
        left = self.MIDDLE - (n_head * size + (n_head - 1) * gap) / 2
        fill, ink = (SELECTED, "white") if selected else (PLAIN, "#1d1d1f")
        for h in range(n_head):
            x = left + h * (size + gap)
            self.parts.append(
                f'<rect x="{x:.0f}" y="{self.y}" width="{size}" height="{self.ROW}" rx="4" '
                f'fill="{fill}" stroke="#555"/><text x="{x + size / 2:.0f}" y="{self.y + 17}" '
                f'text-anchor="middle" fill="{ink}">h{h}</text>'
            )
        return self.advance()

    def plus(self, selected=False):
        r = self.ROW / 2
        fill, ink = (SELECTED, "white") if selected else (PLAIN, "#1d1d1f")
        self.parts.append(
            f'<circle cx="{self.MIDDLE}" cy="{self.y + r}" r="{r - 1}" fill="{fill}" stroke="#555" '
            f'stroke-width="{2 if selected else 1}"/>'
            f'<text x="{self.MIDDLE}" y="{self.y + 18}" text-anchor="middle" fill="{ink}">+</text>'
        )
        return self.advance()

    def advance(self):
        top = self.y
        self.y += self.ROW + self.GAP
        return top

    def arrow(self, top_of_next):
        """The arrow from the row above down into the row starting at top_of_next."""
        self.parts.append(
            f'<line x1="{self.MIDDLE}" y1="{top_of_next - self.GAP}" x2="{self.MIDDLE}" '
            f'y2="{top_of_next - 2}" stroke="#888" marker-end="url(#tip)"/>'
        )

    def bypass(self, leave_y, plus_top):
        """The residual stream going round a sub-layer, into the side of a +."""
        x, r = self.STREAM_X, self.ROW / 2
        self.parts.append(
            f'<path d="M {self.MIDDLE} {leave_y} H {x} V {plus_top + r} H {self.MIDDLE + r + 1}" '
            f'fill="none" stroke="#888" stroke-dasharray="4 3" marker-end="url(#tip)"/>'
        )

    def svg(self) -> str:
        return (
            f'<svg viewBox="0 0 {self.WIDTH} {self.y}" width="{self.WIDTH}" height="{self.y}" '
            'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11" role="img" '
            'aria-label="the forward pass"><defs><marker id="tip" viewBox="0 0 10 10" refX="9" refY="5" '
            'markerWidth="6" markerHeight="6" orient="auto"><path d="M0 0 L10 5 L0 10 z" fill="#888"/>'
            f"</marker></defs>{''.join(self.parts)}</svg>"
        )


def forward_diagram(cfg: dict, selected: dict | None = None, compact=False) -> str:
    """SVG of the forward pass, drawn from the run's own config. The selected
    stage's block is opened up (LayerNorms, the heads side by side, the
    feed-forward widths, the two additions to the stream); the other blocks
    stay one box each."""
    C, n_head, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    key = (selected or {}).get("key")
    open_block = None if compact or selected is None else selected["block"]
    d = Diagram()
    d.box(f"up to {cfg['block_size']} characters", plain=True)
    d.arrow(d.box(f"token + position embedding ({C} numbers)", key == "embedding"))
    for b in range(L):
        if b != open_block:
            d.arrow(d.box(f"block {b}: attention ({n_head} heads) + feed-forward"))
            continue
        cluster_top = d.y - d.GAP / 2
        d.y += 8
        d.arrow(d.box("LayerNorm 1", key == "ln1"))
        d.arrow(d.heads(n_head, key == "heads"))
        d.arrow(d.box(f"concat, projection: {C} numbers", key == "attn"))
        first_plus = d.plus(key == "attn")
        d.arrow(first_plus)
        d.bypass(cluster_top, first_plus)
        d.arrow(d.box("LayerNorm 2", key == "ln2"))
        d.arrow(d.box(f"{C} → {4 * C}, ReLU (the neurons)", key == "hidden"))
        d.arrow(d.box(f"{4 * C} → {C}", key == "ffwd"))
        second_plus = d.plus(key == "ffwd")
        d.arrow(second_plus)
        d.bypass(first_plus + d.ROW + d.GAP / 2, second_plus)
        d.parts.insert(
            0,
            f'<rect x="8" y="{cluster_top:.0f}" width="{d.WIDTH - 16}" '
            f'height="{d.y - d.GAP / 2 - cluster_top + 4:.0f}" rx="10" fill="none" stroke="#aaa"/>'
            f'<text x="16" y="{cluster_top + 14:.0f}" fill="#555">block {b}</text>'
            f'<text x="{d.STREAM_X - 4}" y="{cluster_top + 14:.0f}" text-anchor="end" fill="#666" '
            'font-size="10">dashed: the residual stream</text>',
        )
        d.y += 8
    d.arrow(d.box("final LayerNorm", key == "ln_f"))
    d.arrow(d.box(f"head: {cfg['vocab_size']} logits", key == "logits"))
    d.arrow(d.box("softmax → the next character", key == "probs"))
    return d.svg()


def stream_strips(strips: list, limit: float, height=26):
    """Aligned strips, one row per vector (the stream before, what was
    added, the stream after...), each cell a dimension, all on one colour
    scale from -limit to +limit (blue negative, red positive): the scale
    every stage of this text and position shares. The scale is symmetric
    logarithmic (linear within limit / 100 of zero): the stream starts small
    and grows, and on a linear scale its first stages would all look white."""
    names = [name for name, _ in strips]
    width = max(len(v) for _, v in strips)
    df = pd.DataFrame(
        {
            "row": np.repeat(names, [len(v) for _, v in strips]),
            "dimension": np.concatenate([np.arange(len(v)) for _, v in strips]),
            "value": np.concatenate([np.asarray(v, dtype=np.float32) for _, v in strips]),
        }
    )
    step = 16 if width <= 128 else 64
    return (
        alt.Chart(df)
        .mark_rect()
        .encode(
            x=alt.X("dimension:O", axis=alt.Axis(values=list(range(0, width, step)), labelAngle=0, title="dimension")),
            y=alt.Y("row:N", sort=names, title=None, axis=alt.Axis(labelLimit=130, labelFontSize=12)),
            color=alt.Color(
                "value:Q",
                scale=alt.Scale(
                    type="symlog", constant=limit / 100, scheme=DIVERGING, domain=[-limit, limit], reverse=True
                ),
                legend=alt.Legend(
                    orient="bottom",
                    values=[-limit, -limit / 10, 0, limit / 10, limit],
                    format=".2~f",
                    title=["one colour scale for every stage", f"at this position (log scale): ±{limit:.2f}"],
                    titleOrient="top",
                    titleLimit=300,
                    gradientLength=180,
                    offset=4,
                ),
            ),
            tooltip=["row:N", "dimension:O", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(height=height * len(strips), autosize=FIT_WIDTH)
    )


ADDED_COLOURS = alt.Scale(domain=["attention", "feed-forward"], range=["#e07a24", "#5a8f29"])


def stream_overview_chart(rows: list, selected: str) -> Picture:
    """The whole trip at one position: the residual stream's length after
    each stage (the line) and the length of what each addition added (the
    bars), one row per stage, top to bottom as the diagram runs; the
    selected stage marked. A click on a row selects its stage (the
    selection parameter "pick", by the field "stage")."""
    df = pd.DataFrame(rows)
    df["order"] = np.arange(len(df))
    df["chosen"] = df["stage"] == selected
    df["span"] = float(np.nanmax(df[["stream", "added"]].to_numpy(dtype=float))) * 1.08
    return Picture(stream_overview_spec(tuple(df["short"])), {"stages": df})


@functools.lru_cache(maxsize=16)
def stream_overview_spec(shorts: tuple) -> str:
    """The overview's description, the same at every position and stage of a
    run: built once (Altair takes longer to describe a layered chart than the
    page takes to compute its numbers)."""
    y = alt.Y(
        "short:N",
        sort=list(shorts),
        title=None,
        axis=alt.Axis(labelLimit=150, labelOverlap=False),
        scale=alt.Scale(paddingInner=0),  # rows touch: a click between two bars still lands on a row
    )
    pick = alt.selection_point(name="pick", fields=["stage"], on="click", clear=False, toggle=False)
    base = alt.Chart(alt.Data(name="stages"))
    band = base.mark_bar(color=SELECTED).encode(
        x=alt.X("span:Q", title="length (norm) at this position"),
        y=y,
        opacity=alt.condition("datum.chosen", alt.value(0.18), alt.value(0.02)),
    )
    # On top of everything, so that a click anywhere on a row (on a bar, on the
    # line) lands on it: the row's whole width, all but invisible.
    catcher = (
        base.mark_bar(color=SELECTED, opacity=0.001, cursor="pointer")
        .encode(
            x="span:Q",
            y=y,
            tooltip=[
                alt.Tooltip("stage:N"),
                alt.Tooltip("stream:Q", title="stream's length", format=".2f"),
                alt.Tooltip("added:Q", title="length added", format=".2f"),
            ],
        )
        .add_params(pick)
    )
    added = (
        base.transform_filter("isValid(datum.added)")
        .mark_bar(height=10)
        .encode(
            x="added:Q",
            y=y,
            color=alt.Color("what:N", scale=ADDED_COLOURS, legend=alt.Legend(orient="top", title="added:")),
        )
    )
    line = base.mark_line(color="#1d1d1f", point=alt.OverlayMarkDef(color="#1d1d1f", size=18)).encode(
        x="stream:Q", y=y, order="order:Q"
    )
    chart = alt.layer(band, added, line, catcher).properties(height=17 * len(shorts), autosize=FIT_WIDTH)
    return json.dumps(vega_lite(chart))


def contrast_chart(rows: list, limit: float, a: str, b: str):
    """The pushes on logit(a) - logit(b), one bar per row (a group or a
    head), in the order given, on a fixed scale from -limit to +limit (the
    same whether the groups are opened up or not)."""
    df = pd.DataFrame(rows, columns=["part", "push"])
    df["direction"] = np.where(df["push"] >= 0, f"for {a}", f"for {b}")
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            y=alt.Y("part:N", sort=df["part"].tolist(), title=None, axis=alt.Axis(labelOverlap=False, labelLimit=200)),
            x=alt.X(
                "push:Q",
                title=f"push on logit({a}) − logit({b})",
                scale=alt.Scale(domain=[-limit, limit], clamp=True),
            ),
            color=alt.Color(
                "direction:N",
                scale=alt.Scale(domain=[f"for {a}", f"for {b}"], range=[SELECTED, "#d1495b"]),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["part:N", alt.Tooltip("push:Q", format=".3f")],
        )
        .properties(height=20 * len(df), autosize=FIT_WIDTH)
    )


def votes_chart(votes, chars, top=5):
    """What a neuron votes for: the `top` characters it pushes up most and
    the `top` it pushes down most, every bar labelled with its character."""
    votes = np.asarray(votes, dtype=np.float32)
    order = np.argsort(-votes, kind="stable")
    up = list(order[:top])
    down = [i for i in order[::-1][:top] if i not in up][::-1]
    df = pd.DataFrame({"char": [char_label(chars[i]) for i in up + down], "vote": votes[up + down]})
    df["direction"] = np.where(df["vote"] >= 0, "up", "down")
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            y=alt.Y("char:N", sort=None, title=None, axis=alt.Axis(labelOverlap=False, labelFontSize=13)),
            x=alt.X("vote:Q", title="push per unit of activation"),
            color=alt.Color(
                "direction:N", scale=alt.Scale(domain=["up", "down"], range=[SELECTED, "#d1495b"]), legend=None
            ),
            tooltip=[alt.Tooltip("char:N", title="character"), alt.Tooltip("vote:Q", format=".3f")],
        )
        .properties(height=22 * len(df), autosize=FIT_WIDTH)
    )


def top_bars(values, labels, x_title, top=12):
    """The `top` largest values as bars, largest first, each with its label
    (a neuron's number, a character)."""
    values = np.asarray(values)
    order = np.argsort(-values)[:top]
    df = pd.DataFrame({"which": [labels[i] for i in order], "value": values[order]})
    return (
        alt.Chart(df)
        .mark_bar(color=SELECTED)
        .encode(
            y=alt.Y("which:N", sort=None, title=None, axis=alt.Axis(labelOverlap=False, labelFontSize=13)),
            x=alt.X("value:Q", title=x_title),
            tooltip=[alt.Tooltip("which:N", title="which"), alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(height=20 * len(df), autosize=FIT_WIDTH)
    )


def context_html(text: str, offset: int, window: int, before: int = 24) -> str:
    """The characters a neuron read before firing, the firing character marked;
    the line starts where the kid's window started (it saw nothing earlier)."""
    start = max(offset - offset % window, offset - before)
    seen = html.escape(shown(text[start:offset]))
    fired = html.escape(glyph(text[offset]))
    return (
        f'<span style="color:#666">{seen}</span><span style="background:{SELECTED};color:white;'
        f'padding:0 3px;border-radius:3px">{fired}</span>'
    )
