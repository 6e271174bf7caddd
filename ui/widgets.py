"""Widgets that every page needs the same way."""

import streamlit as st


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
