"""Altair charts used by several pages. Native Vega-Lite: nothing loads
from a CDN, so the pictures work offline."""

import functools
import json
from typing import NamedTuple

import altair as alt
import numpy as np
import pandas as pd

from tinyllm.explain import glyph

SEQUENTIAL = "blues"
DIVERGING = "redblue"
# Streamlit fits a chart's axes, title and legend inside its height unless the
# chart says otherwise; with fit-x the height is the plot's alone, so a short
# strip or a list of bars keeps the room its marks need.
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")


def labelled_axis(labels, title, **options):
    """An ordinal axis of indices 0, 1, ... shown as labels[index]."""
    return alt.Axis(title=title, labelExpr=f"{json.dumps(labels)}[datum.value]", **options)


def axis_with_chars(chars, title, every=False):
    """An ordinal axis of positions whose labels are the characters there.
    every=True keeps every label (for an axis given room for them: Vega
    would hide "crowded" ones); otherwise Vega drops labels that would
    collide, as on a phone."""
    overlap = False if every else "greedy"
    return labelled_axis([glyph(c) for c in chars], title, labelAngle=0, labelFontSize=11, labelOverlap=overlap)


def matrix_frame(matrix, row_name, col_name, value_name) -> pd.DataFrame:
    """A rows x cols matrix as a long table: one row per cell (what Altair draws)."""
    values = np.asarray(matrix, dtype=np.float32)
    rows, cols = values.shape
    return pd.DataFrame(
        {
            row_name: np.repeat(np.arange(rows), cols),
            col_name: np.tile(np.arange(cols), rows),
            value_name: values.ravel(),
        }
    )


HIDDEN = "#d4d4d4"  # the future: masked, not "weight 0"
MARKED = "#d1495b"  # the selected row


def vega_lite(chart, validate=True) -> dict:
    """An Altair chart's Vega-Lite description, as Streamlit would send it.
    Altair's default theme gives every chart a 300 x 300 view; Streamlit
    sizes charts itself (st.altair_chart drops that theme too)."""
    spec = chart.to_dict(validate=validate)
    view = spec.get("config", {}).get("view", {})
    for size in ("continuousWidth", "continuousHeight"):
        view.pop(size, None)
    return spec


class Picture(NamedTuple):
    """A chart in two parts: `spec`, its Vega-Lite description as JSON text,
    which refers to its tables by name only, and `tables`, those tables by
    name. ui.widgets.draw shows it. Kept apart, the description can be built
    once and reused, and a rerun that changes only the numbers sends only
    the new rows."""

    spec: str
    tables: dict


def attention_heatmap(weights, chars, height=460, clickable=False, marked_query=None) -> Picture:
    """weights[query][key] with the characters on both axes. Cells above the
    diagonal (the future, hidden by the mask) are grey, so they cannot be
    mistaken for weight 0. clickable: a click selects its cell, in the
    selection named "cell" (fields query and key); marked_query: a row to
    outline."""
    grid = matrix_frame(weights, "query", "key", "weight")
    shown = np.array([glyph(c) for c in chars])
    query, key = grid["query"].to_numpy(), grid["key"].to_numpy()
    named = np.array([f"{n} {g}" for n, g in enumerate(shown)], dtype=object)  # "3 b": position and character
    grid["cell"] = named[query] + " ← " + named[key]
    hidden = key > query
    # The grey future is a table of its own: it is the same for every head and
    # every step, so a slider that changes the weights leaves it alone.
    future = grid.loc[hidden, ["query", "key", "cell"]].assign(cell=lambda d: d["cell"] + " (hidden: the future)")
    tables = {"cells": grid.loc[~hidden], "future": future}
    if marked_query is not None:
        tables["marked"] = pd.DataFrame({"query": [marked_query]})
    spec = attention_heatmap_spec(tuple(chars), height, clickable, marked_query is not None)
    return Picture(spec, tables)


@functools.lru_cache(maxsize=64)
def attention_heatmap_spec(chars: tuple, height: int, clickable: bool, marked: bool) -> str:
    """The heatmap's description, the same for every head and every query of
    one text: built once (Altair takes a tenth of a second to build it)."""
    # Fixed axes, not read from the rows: moving the outlined row then redraws
    # that outline alone, not the thousands of cells.
    positions = alt.Scale(domain=list(range(len(chars))))
    x = alt.X("key:O", scale=positions, axis=axis_with_chars(chars, "key position (attended to)"))
    y = alt.Y("query:O", scale=positions, axis=axis_with_chars(chars, "query position (looking)", every=True))
    colour = alt.Color("weight:Q", scale=alt.Scale(scheme=SEQUENTIAL, domain=[0, 1]), legend=alt.Legend(title="weight"))
    # one label per cell, not five fields: the browser works out every tooltip
    # whenever the rows change, thousands of cells each time
    label = alt.Tooltip("cell:N", title="query ← key")
    seen = (
        alt.Chart(alt.Data(name="cells"))
        .mark_rect()
        .encode(x=x, y=y, color=colour, tooltip=[label, alt.Tooltip("weight:Q", format=".3f")])
    )
    future = alt.Chart(alt.Data(name="future")).mark_rect(color=HIDDEN).encode(x=x, y=y, tooltip=[label])
    if clickable:
        # toggle: a click on a selected cell unselects it, so every click
        # changes the selection, even on the cell clicked last. Defined on
        # one layer, it hears clicks on the grey cells too.
        seen = seen.add_params(alt.selection_point(name="cell", fields=["query", "key"], on="click", toggle="true"))
    layers = [seen, future]
    if marked:
        layers.append(
            alt.Chart(alt.Data(name="marked")).mark_rect(fill=None, stroke=MARKED, strokeWidth=2.5).encode(y=y)
        )
    chart = alt.layer(*layers).properties(height=max(height, 13 * len(chars)))  # room for every row's character
    return json.dumps(vega_lite(chart))


# Vega's "blues" scheme, the colours of the big heatmaps, light to dark
BLUES = [
    "#cfe1f2",
    "#bed8ec",
    "#a8cee5",
    "#8fc1de",
    "#74b2d7",
    "#5ba3cf",
    "#4592c6",
    "#3181bd",
    "#206fb2",
    "#125ca4",
    "#0a4a90",
]


def rgb(colour: str) -> list:
    """'#d4d4d4' -> [212, 212, 212]"""
    return [int(colour[i : i + 2], 16) for i in (1, 3, 5)]


def small_heatmap(weights, size=384) -> np.ndarray:
    """One head's weights as a picture (rows of RGB pixels) at least `size`
    pixels wide, so that a browser shrinks it rather than blurs it, coloured
    like the big heatmaps, the future grey. A picture, not a chart: sixteen
    of them on one page cost the browser nothing to draw, where sixteen
    charts of thousands of cells took seconds."""
    values = np.clip(np.asarray(weights, dtype=np.float64), 0, 1)
    anchors = np.array([rgb(c) for c in BLUES], dtype=np.float64)
    where = values * (len(BLUES) - 1)  # a weight's place between two anchor colours
    low = np.floor(where).astype(int).clip(0, len(BLUES) - 2)
    share = (where - low)[..., None]
    pixels = anchors[low] * (1 - share) + anchors[low + 1] * share
    n = len(values)
    pixels[np.triu(np.ones((n, n), dtype=bool), k=1)] = rgb(HIDDEN)
    per_cell = -(-size // n)  # rounded up
    return np.repeat(np.repeat(pixels.round().astype(np.uint8), per_cell, axis=0), per_cell, axis=1)


def similarity_heatmap(matrix, labels, title_x, title_y, height=460):
    df = matrix_frame(matrix, "row", "col", "cosine")
    df["row label"] = np.array(labels)[df["row"].to_numpy()]
    df["col label"] = np.array(labels)[df["col"].to_numpy()]
    return (
        alt.Chart(df)
        .mark_rect()
        .encode(
            x=alt.X("col:O", axis=labelled_axis(labels, title_x, labelAngle=0)),
            y=alt.Y("row:O", axis=labelled_axis(labels, title_y)),
            color=alt.Color(
                "cosine:Q",
                scale=alt.Scale(scheme=DIVERGING, domain=[-1, 1], reverse=True),
                legend=alt.Legend(title="cosine similarity"),
            ),
            tooltip=[alt.Tooltip("row label:N"), alt.Tooltip("col label:N"), alt.Tooltip("cosine:Q", format=".3f")],
        )
        .properties(height=height)
    )


def candidates_bar(candidates, title="probability"):
    """candidates: [(label, prob)] -> horizontal bars, likeliest on top."""
    df = pd.DataFrame(candidates, columns=["character", "probability"])
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), title=title),
            # labelOverlap=False: every candidate keeps its label (Vega hides "crowded" ones)
            y=alt.Y("character:N", sort="-x", title=None, axis=alt.Axis(labelFontSize=14, labelOverlap=False)),
            tooltip=[alt.Tooltip("character:N"), alt.Tooltip("probability:Q", format=".3f")],
        )
        .properties(height=34 * len(candidates) + 30)
    )


def believed_and_drawn(candidates, believed, drawn):
    """Two bars per candidate: what the kid believed (temperature 1) and the
    distribution the character was really drawn from (after the knobs)."""
    names = ["the kid believed", "drawn from"]
    df = pd.DataFrame(
        [
            dict(character=c, distribution=name, probability=p)
            for c, b, d in zip(candidates, believed, drawn)
            for name, p in zip(names, (b, d))
        ]
    )
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y(
                "character:N", sort=list(candidates), title=None, axis=alt.Axis(labelFontSize=14, labelOverlap=False)
            ),
            yOffset=alt.YOffset("distribution:N", sort=names),
            color=alt.Color(
                "distribution:N",
                sort=names,
                scale=alt.Scale(range=["#9db4cc", "#1f4e79"]),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=[
                alt.Tooltip("character:N"),
                alt.Tooltip("distribution:N"),
                alt.Tooltip("probability:Q", format=".3f"),
            ],
        )
        .properties(height=40 * len(candidates), autosize=FIT_WIDTH)
    )


def loss_curves(rows, uniform_loss, best_step=None, height=320):
    df = pd.DataFrame(rows)
    long = df.melt(id_vars=["step"], value_vars=["train_loss", "val_loss"], var_name="split", value_name="loss")
    long["split"] = long["split"].map({"train_loss": "train", "val_loss": "validation"})
    lines = (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("step:Q", title="training step"),
            y=alt.Y("loss:Q", title="loss (lower is better)", scale=alt.Scale(zero=False)),
            color=alt.Color(
                "split:N",
                scale=alt.Scale(domain=["train", "validation"], range=["#1f77b4", "#e6550d"]),
                legend=alt.Legend(title=None, orient="top-right"),
            ),
            tooltip=[alt.Tooltip("step:Q"), alt.Tooltip("split:N"), alt.Tooltip("loss:Q", format=".4f")],
        )
    )
    uniform = (
        alt.Chart(pd.DataFrame({"loss": [uniform_loss], "label": ["uniform guess"]}))
        .mark_rule(strokeDash=[6, 4], color="gray")
        .encode(y="loss:Q", tooltip=[alt.Tooltip("label:N"), alt.Tooltip("loss:Q")])
    )
    layers = [lines, uniform]
    if best_step is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"step": [best_step]}))
            .mark_rule(color="green")
            .encode(x="step:Q", tooltip=[alt.Tooltip("step:Q", title="kept checkpoint")])
        )
    return alt.layer(*layers).properties(height=height)


def metric_line(rows, field, title, height=180, fmt=".3g"):
    df = pd.DataFrame(rows)[["step", field]].dropna()
    return (
        alt.Chart(df)
        .mark_line()
        .encode(
            x=alt.X("step:Q", title="training step"),
            y=alt.Y(f"{field}:Q", title=title),
            tooltip=[alt.Tooltip("step:Q"), alt.Tooltip(f"{field}:Q", format=fmt)],
        )
        .properties(height=height)
    )


# One strong colour per kind of character (tinyllm.explain.char_kind), all
# readable on the app's cream background and told apart from each other.
KIND_COLOURS = {
    "vowel": "#c0392b",
    "consonant": "#1f4e79",
    "capital": "#6a3d9a",
    "digit": "#d35400",
    "space / newline": "#138d75",
    "punctuation": "#333333",
    "other": "#7f6000",
}


def embedding_scatter(coords, chars, kinds, height=460, x_title="PC 1", y_title="PC 2", domain=None):
    df = pd.DataFrame(
        {
            "x": [c[0] for c in coords],
            "y": [c[1] for c in coords],
            "char": [glyph(c) for c in chars],
            "kind": kinds,
            "id": list(range(len(chars))),
        }
    )
    # padding: room for the labels of the outermost characters, never cut at the edge
    scale_x = alt.Scale(domain=domain[0], padding=14) if domain else alt.Scale(padding=14)
    scale_y = alt.Scale(domain=domain[1], padding=14) if domain else alt.Scale(padding=14)
    base = alt.Chart(df).encode(
        x=alt.X("x:Q", title=x_title, scale=scale_x),
        y=alt.Y("y:Q", title=y_title, scale=scale_y),
        color=alt.Color(
            "kind:N",
            scale=alt.Scale(domain=list(KIND_COLOURS), range=list(KIND_COLOURS.values())),
            legend=alt.Legend(title=None, orient="bottom", columns=4),
        ),
        tooltip=[alt.Tooltip("char:N"), alt.Tooltip("id:O"), alt.Tooltip("kind:N")],
    )
    dots = base.mark_circle(size=60, opacity=0.35)
    labels = base.mark_text(fontSize=15, fontWeight="bold").encode(text=alt.Text("char:N"))
    return (dots + labels).properties(height=height)


def snapshot_timeline(rows, snapshot_steps, selected, height=60):
    """Where the snapshots lie in training, on an axis of steps: the
    validation loss as a thin line, a dot per snapshot, the selected one
    large and dark. The scrubber above it is spaced by snapshot (so that
    steps 50 and 100 stay apart on a phone); this shows their real spacing."""
    losses = pd.DataFrame({"step": [r["step"] for r in rows], "val_loss": [r["val_loss"] for r in rows]})
    dots = losses[losses["step"].isin(snapshot_steps)].assign(selected=lambda d: d["step"] == selected)
    x = alt.X("step:Q", title="training step", axis=alt.Axis(format=",d"), scale=alt.Scale(nice=False))
    y = alt.Y("val_loss:Q", title=None, axis=None, scale=alt.Scale(zero=False))
    line = alt.Chart(losses).mark_line(color="#999", strokeWidth=1).encode(x=x, y=y)
    points = (
        alt.Chart(dots)
        .mark_circle(stroke="white", strokeWidth=1)
        .encode(
            x=x,
            y=y,
            size=alt.condition("datum.selected", alt.value(180), alt.value(40)),
            color=alt.condition("datum.selected", alt.value("#1f4e79"), alt.value("#9bb3cc")),
            tooltip=[alt.Tooltip("step:Q", format=","), alt.Tooltip("val_loss:Q", format=".3f", title="val loss")],
        )
    )
    return (line + points).properties(height=height, autosize=FIT_WIDTH)
