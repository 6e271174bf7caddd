"""Widgets that every page needs the same way."""

import hashlib
import json

import altair as alt
import pandas as pd
import streamlit as st

from ui.charts import Picture, vega_lite


def index_slider(label: str, count: int, key: str, default: int = 0, where=st, **options) -> int:
    """A slider over 0 .. count - 1, for a position, a layer or a head.

    With one choice there is nothing to slide (Streamlit refuses a slider
    whose minimum is its maximum), so the page says so and uses 0. The value
    lives in Session State, set before the slider is drawn, so that a page
    may also set it (a click on a chart) without Streamlit's warning about a
    widget with both a default and a Session State value.
    """
    if count <= 1:
        where.caption(f"{label}: 0 (the only one)")
        return 0
    value = st.session_state.get(key, default)
    st.session_state[key] = min(max(int(value), 0), count - 1)
    return where.slider(label, 0, count - 1, key=key, **options)


_CHECKED_SHAPES = set()  # the charts draw() has checked (a hash of each)


def draw(chart, where=st, **options):
    """Draw a chart (an Altair chart or a ui.charts.Picture) so that a rerun
    with new rows redraws it in place.

    Streamlit names each table of a chart after a hash of its rows, and those
    names are part of the chart's description: new rows, a new description,
    and the browser builds the whole chart again (slow for a heatmap:
    docs/experiments.md). Here each table is named by its place in the chart
    instead, so while the chart's shape stays the same, a rerun that only
    changes the numbers (a slider move) sends just the new rows, and the
    browser swaps them into the chart already on screen.
    `options` go to st.vega_lite_chart (width, key, on_select, ...).
    """
    if isinstance(chart, Picture):
        spec, tables = json.loads(chart.spec), chart.tables
    else:
        spec, tables = named_tables(chart)
    spec["datasets"] = tables
    return where.vega_lite_chart(spec, **options)


def named_tables(chart) -> tuple[dict, dict]:
    """An Altair chart's description with each table named by its place
    (table_0, table_1, ...), and the tables by name."""
    tables = {}

    def named(part):
        if isinstance(part.data, pd.DataFrame):
            name = f"table_{len(tables)}"
            tables[name] = part.data
            part = part.copy(deep=False)
            part.data = alt.Data(name=name)
        if isinstance(part, alt.LayerChart):
            part = part.copy(deep=False)
            part.layer = [named(layer) for layer in part.layer]
        return part

    chart = named(chart)
    spec = vega_lite(chart, validate=False)
    # Checking a chart against the Vega-Lite schema takes longer than all the
    # rest; a shape checked once stays valid, so each is checked only once.
    shape = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).digest()
    if shape not in _CHECKED_SHAPES:
        vega_lite(chart)
        _CHECKED_SHAPES.add(shape)
    return spec, tables
