"""Altair charts used by several pages. Native Vega-Lite: nothing loads
from a CDN, so the pictures work offline."""

import base64
import functools
import io
import json
from typing import NamedTuple

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image

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
    # positions as small integers: fewer bytes for the browser to read
    return pd.DataFrame(
        {
            row_name: np.repeat(np.arange(rows, dtype=np.int16), cols),
            col_name: np.tile(np.arange(cols, dtype=np.int16), rows),
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
    seen, future = seen_and_future(matrix_frame(weights, "query", "key", "weight"))
    tables = {"cells": seen, "future": future}
    if marked_query is not None:
        tables["marked"] = pd.DataFrame({"query": [marked_query]})
    spec = attention_heatmap_spec(tuple(chars), height, clickable, marked_query is not None)
    return Picture(spec, tables)


def attention_picture(weights, chars, height=460) -> Picture:
    """The same heatmap as attention_heatmap (axes, colours, grey future,
    cells named on hover), its cells drawn as one picture: for a slider that
    changes every weight at each move (the training scrubber), the browser
    swaps one small image instead of colouring thousands of cells again.
    Hovering names a cell but does not give its weight."""
    n = len(chars)
    buffer = io.BytesIO()
    Image.fromarray(small_heatmap(weights, size=n)).save(buffer, format="PNG")  # a pixel per cell
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    # the cells' positions alone, the same at every step: the browser keeps them
    seen, future = seen_and_future(matrix_frame(np.zeros((n, n)), "query", "key", "weight")[["query", "key"]])
    tables = {"picture": pd.DataFrame({"url": [url]}), "cells": seen, "future": future}
    return Picture(attention_picture_spec(tuple(chars), height), tables)


def seen_and_future(grid):
    """A heatmap's long table split in two: the cells a query sees (key at or
    before it) and the future's, hidden by the mask, without their weights.
    The future is a table of its own because it is the same for every head
    and every step: a slider that changes the weights leaves it alone."""
    hidden = (grid["key"] > grid["query"]).to_numpy()
    return grid[~hidden].reset_index(drop=True), grid.loc[hidden, ["query", "key"]].reset_index(drop=True)


def position_axes(chars):
    """The heatmaps' two axes of positions, labelled with the characters
    there, and the parameter "positions" that cell_layer's labels read.
    Fixed, not read from the rows: new weights leave the axes alone."""
    positions = alt.Scale(domain=list(range(len(chars))))
    x = alt.X("key:O", scale=positions, axis=axis_with_chars(chars, "key position (attended to)"))
    y = alt.Y("query:O", scale=positions, axis=axis_with_chars(chars, "query position (looking)", every=True))
    labels = alt.param(name="positions", value=[f"{n} {glyph(c)}" for n, c in enumerate(chars)])
    return x, y, labels


def cell_layer(table, x, y, future=False, tooltip=(), **encoding):
    """The heatmap cells of a named table, each named on hover "3 b ← 1 o"
    (the query's position and character, then the key's), future ones
    "(hidden: the future)". The browser writes the names from the two
    positions and the chart's "positions", once per table: the rows that
    travel at every slider move carry numbers only."""
    label = "positions[datum.query] + ' ← ' + positions[datum.key]"
    if future:
        label += " + ' (hidden: the future)'"
    return (
        alt.Chart(alt.Data(name=table))
        .transform_calculate(cell=label)
        .encode(x=x, y=y, tooltip=[alt.Tooltip("cell:N", title="query ← key"), *tooltip], **encoding)
    )


WEIGHT_COLOUR = alt.Color(
    "weight:Q", scale=alt.Scale(scheme=SEQUENTIAL, domain=[0, 1]), legend=alt.Legend(title="weight")
)


def heatmap_spec(layers, labels, chars, height) -> str:
    """The layers of a heatmap of len(chars) rows as one description, tall
    enough for every row's character. Thousands of cells: drawn on a canvas,
    not as thousands of SVG shapes, and without a screen-reader description
    written for every cell (a canvas shows none of them, and the browser
    would write them all again whenever the weights change)."""
    chart = alt.layer(*layers).add_params(labels)
    chart = chart.properties(height=max(height, 13 * len(chars)), usermeta={"embedOptions": {"renderer": "canvas"}})
    return json.dumps(vega_lite(chart.configure_mark(aria=False)))


@functools.lru_cache(maxsize=64)
def attention_heatmap_spec(chars: tuple, height: int, clickable: bool, marked: bool) -> str:
    """The heatmap's description, the same for every head and every query of
    one text: built once (Altair is slow to build it; docs/experiments.md)."""
    x, y, labels = position_axes(chars)
    weight = alt.Tooltip("weight:Q", format=".3f")
    seen = cell_layer("cells", x, y, tooltip=[weight], color=WEIGHT_COLOUR).mark_rect()
    future = cell_layer("future", x, y, future=True).mark_rect(color=HIDDEN)
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
    return heatmap_spec(layers, labels, chars, height)


@functools.lru_cache(maxsize=16)
def attention_picture_spec(chars: tuple, height: int) -> str:
    """attention_picture's description, the same at every step: built once."""
    x, y, labels = position_axes(chars)
    # from the plot's top left corner across the whole plot, stretched
    # (aspect=False) into sharp squares (smooth=False), not a blur
    whole_plot = dict(x=0, y=0, align="left", baseline="top", width=alt.ExprRef("width"), height=alt.ExprRef("height"))
    # The colour legend is the picture's: its row has no weight to colour,
    # but the legend shows the scale, the one the picture's pixels were
    # coloured with. invalid="show": Vega-Lite would otherwise drop that row
    # for its missing weight, and draw no picture at all.
    picture = (
        alt.Chart(alt.Data(name="picture"))
        .mark_image(**whole_plot, aspect=False, smooth=False, invalid="show")
        .encode(url=alt.Url("url:N"), color=WEIGHT_COLOUR, tooltip=alt.value(None))
    )
    # invisible cells over the picture: they name the cell under the mouse
    seen = cell_layer("cells", x, y).mark_rect(opacity=0)
    future = cell_layer("future", x, y, future=True).mark_rect(opacity=0)
    return heatmap_spec([picture, seen, future], labels, chars, height)


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
    charts of thousands of cells made the page slow to open."""
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
    """A square matrix of cosines, labels on both axes. Down the side every
    row keeps its label (each row is given 14 pixels, up to 100 rows); across
    the top, where the chart is too narrow for every label (a phone), Vega
    leaves some out (those that would overlap), which the page says; hovering a
    cell names both."""
    n = len(labels)
    every_row = n <= 100
    df = matrix_frame(matrix, "row", "col", "cosine")
    df["row label"] = np.array(labels)[df["row"].to_numpy()]
    df["col label"] = np.array(labels)[df["col"].to_numpy()]
    return (
        alt.Chart(df)
        .mark_rect()
        .encode(
            x=alt.X("col:O", axis=labelled_axis(labels, title_x, labelAngle=0, labelOverlap="greedy", labelFontSize=9)),
            y=alt.Y("row:O", axis=labelled_axis(labels, title_y, labelOverlap=False if every_row else "parity")),
            color=alt.Color(
                "cosine:Q",
                scale=alt.Scale(scheme=DIVERGING, domain=[-1, 1], reverse=True),
                # above, not beside: the columns get the width, room for their labels
                legend=alt.Legend(title="cosine similarity", orient="top", direction="horizontal"),
            ),
            tooltip=[alt.Tooltip("row label:N"), alt.Tooltip("col label:N"), alt.Tooltip("cosine:Q", format=".3f")],
        )
        .properties(height=max(height, 14 * n) if every_row else height)
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
                legend=alt.Legend(title=None, orient="top", direction="horizontal"),  # above, never on a curve
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


def embedding_scatter(coords, chars, kinds, height=460, x_title="PC 1", y_title="PC 2", domain=None) -> Picture:
    """Characters as labelled dots at their 2-d coordinates, coloured by kind.
    domain: ((x low, x high), (y low, y high)) to fix the axes (the training
    scrubber keeps one frame for every step, so the dots move and the axes
    stay); otherwise the axes fit the dots."""
    points = pd.DataFrame(
        {
            "x": [c[0] for c in coords],
            "y": [c[1] for c in coords],
            "char": [glyph(c) for c in chars],
            "kind": kinds,
            "id": list(range(len(chars))),
        }
    )
    frame = tuple(tuple(axis) for axis in domain) if domain else None
    present = tuple(kind for kind in KIND_COLOURS if kind in set(kinds))  # the legend names only these
    return Picture(embedding_scatter_spec(height, x_title, y_title, frame, present), {"points": points})


@functools.lru_cache(maxsize=16)
def embedding_scatter_spec(height, x_title, y_title, frame, kinds) -> str:
    """The scatter's description, the same at every training step: built once."""
    # padding: room for the labels of the outermost characters, never cut at the edge
    scale_x = alt.Scale(domain=list(frame[0]), padding=14) if frame else alt.Scale(padding=14)
    scale_y = alt.Scale(domain=list(frame[1]), padding=14) if frame else alt.Scale(padding=14)
    base = alt.Chart(alt.Data(name="points")).encode(
        x=alt.X("x:Q", title=x_title, scale=scale_x),
        y=alt.Y("y:Q", title=y_title, scale=scale_y),
        color=alt.Color(
            "kind:N",
            scale=alt.Scale(domain=list(kinds), range=[KIND_COLOURS[kind] for kind in kinds]),
            # three columns fit a phone's width (four cut the last one off at 390 px)
            legend=alt.Legend(title=None, orient="bottom", columns=3),
        ),
        tooltip=[alt.Tooltip("char:N"), alt.Tooltip("id:O"), alt.Tooltip("kind:N")],
    )
    dots = base.mark_circle(size=60, opacity=0.35)
    labels = base.mark_text(fontSize=15, fontWeight="bold").encode(text=alt.Text("char:N"))
    return json.dumps(vega_lite((dots + labels).properties(height=height)))


def snapshot_timeline(rows, snapshot_steps, selected, height=60) -> Picture:
    """Where the snapshots lie in training: a dot per snapshot, the selected
    one large and dark, under the scrubber and spaced like its stops (one
    stop per snapshot, so that steps 50 and 100 stay apart on a phone), with
    the validation loss as a thin line between them. The axis names the
    steps, so the early, close snapshots read as such."""
    steps = list(snapshot_steps)
    # each evaluation at its place between the snapshots around it
    at = np.interp([r["step"] for r in rows], steps, range(len(steps)))
    losses = pd.DataFrame({"at": at, "step": [r["step"] for r in rows], "val_loss": [r["val_loss"] for r in rows]})
    dots = losses[losses["step"].isin(steps)].reset_index(drop=True)
    # the selected dot is a table of one row: a move redraws that dot alone
    tables = {"losses": losses, "snapshots": dots, "selected": dots[dots["step"] == selected]}
    return Picture(snapshot_timeline_spec(height, tuple(steps)), tables)


@functools.lru_cache(maxsize=4)
def snapshot_timeline_spec(height, steps) -> str:
    """The timeline's description, the same at every step of one run: built once."""
    n = len(steps)
    ticks = sorted({round(i * (n - 1) / 4) for i in range(5)})  # five labels, the first and the last among them
    axis = labelled_axis([f"{s:,}" for s in steps], "training step", values=ticks, labelOverlap=True)
    x = alt.X("at:Q", axis=axis, scale=alt.Scale(domain=[0, max(1, n - 1)], nice=False, padding=0))
    y = alt.Y("val_loss:Q", title=None, axis=None, scale=alt.Scale(zero=False))
    tooltip = [alt.Tooltip("step:Q", format=","), alt.Tooltip("val_loss:Q", format=".3f", title="val loss")]
    line = alt.Chart(alt.Data(name="losses")).mark_line(color="#999", strokeWidth=1).encode(x=x, y=y)
    dot = {"stroke": "white", "strokeWidth": 1}
    dots = alt.Chart(alt.Data(name="snapshots")).mark_circle(size=40, color="#9bb3cc", **dot)
    selected = alt.Chart(alt.Data(name="selected")).mark_circle(size=180, color="#1f4e79", **dot)
    chart = alt.layer(line, dots.encode(x=x, y=y, tooltip=tooltip), selected.encode(x=x, y=y, tooltip=tooltip))
    return json.dumps(vega_lite(chart.properties(height=height, autosize=FIT_WIDTH)))


# One colour per class of tinyllm.learning.CLASSES, in its order.
CLASS_COLOURS = ["#138d75", "#6a3d9a", "#d35400", "#1f4e79", "#333333"]


def step_ticks(last_step: int) -> list:
    """Steps worth a label on a log-like axis: 0, 10, 30, 100, 300, ... up to last_step."""
    return [0] + [v for e in range(1, 8) for v in (10**e, 3 * 10**e) if v <= last_step]


def class_losses(doc: dict, selected: int, below: float, height=260) -> Picture:
    """The mean loss of each class of characters (learning.json) at every
    snapshot, on a log-like axis of steps, with the chosen step marked and
    a dashed line at `below`. Only classes with characters are drawn; each
    is named with its count in the legend."""
    labels = [f"{c['name']} ({c['count']:,})" for c in doc["classes"]]
    present = [i for i, c in enumerate(doc["classes"]) if c["count"]]
    means = pd.DataFrame(
        [
            {"step": step, "class": labels[c], "loss": row[c]}
            for step, row in zip(doc["steps"], doc["class_means"])
            for c in present
        ],
        columns=["step", "class", "loss"],
    )
    tables = {"means": means, "chosen": pd.DataFrame({"step": [selected]}), "below": pd.DataFrame({"loss": [below]})}
    spec = class_losses_spec(
        height,
        tuple(labels[c] for c in present),
        tuple(CLASS_COLOURS[c] for c in present),
        tuple(step_ticks(doc["steps"][-1])),
    )
    return Picture(spec, tables)


@functools.lru_cache(maxsize=8)
def class_losses_spec(height, labels, colours, ticks) -> str:
    """The chart's description, the same at every step of one run: built once."""
    x = alt.X(
        "step:Q",
        scale=alt.Scale(type="symlog", nice=False),
        axis=alt.Axis(values=list(ticks), format=",d", labelOverlap=True),
        title="training step (log-like scale)",
    )
    lines = (
        alt.Chart(alt.Data(name="means"))
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("loss:Q", title="mean loss of the class", scale=alt.Scale(zero=True)),
            color=alt.Color(
                "class:N",
                scale=alt.Scale(domain=list(labels), range=list(colours)),
                # below the plot, one class a row: long names fit a phone
                legend=alt.Legend(title=None, orient="bottom", direction="vertical", labelLimit=0),
            ),
            tooltip=[alt.Tooltip("step:Q", format=","), alt.Tooltip("class:N"), alt.Tooltip("loss:Q", format=".2f")],
        )
    )
    below = (
        alt.Chart(alt.Data(name="below"))
        .mark_rule(strokeDash=[6, 4], color="gray")
        .encode(y="loss:Q", tooltip=[alt.Tooltip("loss:Q", title="loss")])
    )
    chosen = (
        alt.Chart(alt.Data(name="chosen"))
        .mark_rule(color=MARKED, strokeWidth=2)
        .encode(x=x, tooltip=[alt.Tooltip("step:Q", format=",", title="chosen step")])
    )
    return json.dumps(vega_lite(alt.layer(below, chosen, lines).properties(height=height, autosize=FIT_WIDTH)))


# --- Compare two runs (pages/compare.py) ----------------------------------

COMPARED_COLOURS = ["#1f77b4", "#e6550d"]  # the first run, the second


def compared_losses(rows, runs, x_field, x_title, height=280):
    """Two runs' validation loss on one chart. rows: {run, step, minutes,
    val_loss}; runs: the two names, in order (the colours follow them)."""
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_line(point=True)
        .encode(
            x=alt.X(f"{x_field}:Q", title=x_title),
            y=alt.Y("val_loss:Q", title="validation loss (lower is better)", scale=alt.Scale(zero=False)),
            color=alt.Color(
                "run:N",
                scale=alt.Scale(domain=list(runs), range=COMPARED_COLOURS),
                legend=alt.Legend(title=None, orient="top", direction="horizontal", labelLimit=300),
            ),
            tooltip=[
                alt.Tooltip("run:N"),
                alt.Tooltip("step:Q", format=","),
                alt.Tooltip("minutes:Q", format=".1f"),
                alt.Tooltip("val_loss:Q", format=".4f"),
            ],
        )
        .properties(height=height)
    )


def class_curves(rows, classes, loss_domain, height=260):
    """One run's mean loss per class of character at every snapshot (rows:
    {step, class, loss}); the same classes' colours and the same loss scale
    on both sides, so the two charts read against each other."""
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_line(point=True)
        .encode(
            # symlog: the snapshots are log-spaced, and step 0 has a place
            x=alt.X(
                "step:Q",
                title="training step (log-like scale)",
                scale=alt.Scale(type="symlog", nice=False),
                axis=alt.Axis(
                    values=sorted({r["step"] for r in rows}),
                    labelOverlap="greedy",
                    labelExpr="format(datum.value, ',')",
                ),
            ),
            y=alt.Y("loss:Q", title="mean loss", scale=alt.Scale(domain=list(loss_domain))),
            color=alt.Color(
                "class:N",
                scale=alt.Scale(domain=list(classes), scheme="category10"),
                legend=alt.Legend(title=None, orient="top", columns=3, labelLimit=200),
            ),
            tooltip=[alt.Tooltip("class:N"), alt.Tooltip("step:Q", format=","), alt.Tooltip("loss:Q", format=".3f")],
        )
        .properties(height=height)
    )
