"""Widgets that every page needs the same way."""

import hashlib
import json

import altair as alt
import pandas as pd
import streamlit as st

from ui.charts import Picture, vega_lite
from ui.text import escaped


def index_slider(label: str, count: int, key: str, default: int = 0, where=st, address=None, **options) -> int:
    """A slider over 0 .. count - 1, for a position, a layer or a head.

    With one choice there is nothing to slide (Streamlit refuses a slider
    whose minimum is its maximum), so the page says so and uses 0. The value
    lives in Session State, set before the slider is drawn, so that a page
    may also set it (a click on a chart) without Streamlit's warning about a
    widget with both a default and a Session State value.

    address: the name of a query parameter (`pos`) that keeps the value in
    the page's address, so that a link or the Back button lands on it (see
    address_news); the default is left out of the address.
    """
    default = min(max(default, 0), max(count - 1, 0))  # a default past a short text: its last position
    news, asked = address_news(key, address) if address else (False, None)
    if news:
        value, problem = (default, None) if asked is None else address_index(asked, count, label.lower(), default, 0)
        st.session_state[key] = value
        if problem:
            where.info(problem, icon=":material/link_off:")
    if count <= 1:
        where.caption(f"{label}: 0 (the only one)")
        value = 0
    else:
        value = st.session_state.get(key, default)
        st.session_state[key] = min(max(int(value), 0), count - 1)
        if address:
            options["on_change"] = moved_by_reader(key)
        value = where.slider(label, 0, count - 1, key=key, **options)
    if address:
        write_address(key, address, str(value), str(default))
    return value


# --- the page's address: what it shows, in a link that can be shared ------
#
# A page that keeps a choice in its address (?sample=2&pos=30) reads it when
# the address brings news: the page was just entered (its widgets are new),
# or the address changed from outside (a link, the Back button) since the
# page last wrote it. Otherwise the widget, which the reader moves, wins, and
# the page writes its value back. A value at its default is left out, so
# that opening a page adds no step to the browser's history (each change of
# the address is one). The address is typed by anyone: every value is
# checked, and a bad one falls back with a note in the reader's words.


MOVED = "address.moved"  # the widgets kept in the address that the reader moved, for this run


def moved_by_reader(key: str):
    """The on_change of a widget kept in the address. A run the reader starts
    by moving a widget comes with the address the browser held at that
    moment, which may be older than the page's last write (two quick presses
    of an arrow key: the second leaves before the first's ?pos= arrives).
    That address is no news: in such a run the widgets win."""
    return lambda: st.session_state.setdefault(MOVED, set()).add(key)


def address_news(key: str, param: str) -> tuple[bool, str | None]:
    """(whether the address brings news for the widget `key`, the value of
    `param` there, None when absent: the default)."""
    asked = st.query_params.get(param)
    if key in st.session_state and st.session_state.get(MOVED):
        return False, asked  # the reader moved a widget: this run is theirs (moved_by_reader)
    return key not in st.session_state or asked != st.session_state.get(f"{key}.address"), asked


def write_address(key: str, param: str, value: str | None, default: str | None = None):
    """Keep the widget's value in the address, left out at its default (or
    when None), and unchanged when the address already means it."""
    held = st.query_params.get(param)
    if (default if held is None else held) != value:
        if value is None or value == default:
            if held is not None:
                del st.query_params[param]
        else:
            st.query_params[param] = value
    st.session_state[f"{key}.address"] = st.query_params.get(param)
    st.session_state.get(MOVED, set()).discard(key)  # its move is read: the next run is news again


def address_index(asked: str, count: int, what: str, fallback: int, first: int) -> tuple[int, str | None]:
    """An index from the address, numbered from `first` (1 for "sample 1"),
    checked: (the index from 0 to use, a note for the reader or None). Not a
    number: the fallback; past either end: the nearest end."""
    shown = escaped(asked if len(asked) <= 20 else asked[:20] + "…")
    try:
        number = int(asked)
    except ValueError:
        problem = f"The address asks for {what} “{shown}”, which is not a number: {what} {fallback + first} is shown."
        return fallback, problem
    last = count - 1 + first
    if first <= number <= last:
        return number - first, None
    nearest = min(max(number, first), last)
    span = f"{what}s {first} to {last}" if count > 1 else f"only {what} {first}"
    return nearest - first, f"The address asks for {what} {number}, but there are {span}: {what} {nearest} is shown."


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
