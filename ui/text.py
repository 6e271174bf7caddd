"""Text drawn character by character, each with its own colour."""

import html

import streamlit as st

from tinyllm.explain import glyph


def coloured_text(chars, colours, titles=None, selected=None):
    """Render chars as spans with background colours (and hover titles).
    Newlines are shown as ↵ and then break the line, as in the text."""
    spans = []
    for n, (ch, colour) in enumerate(zip(chars, colours)):
        title = html.escape(titles[n]) if titles else ""
        border = "outline: 2px solid #1f4e79;" if n == selected else ""
        shown = html.escape(glyph(ch)) if ch in " \n" else html.escape(ch)
        spans.append(
            f'<span title="{title}" style="background:{colour};{border}'
            f'padding:1px 1px;border-radius:3px;">{shown}</span>'
        )
        if ch == "\n":
            spans.append("<br>")
        elif ch == " ":
            spans.append("<wbr>")  # the shown ␣ is no space: say where a line may break
    st.html(
        '<div style="overflow-wrap: anywhere; font-family: monospace; font-size: 1.15rem; line-height: 2.0;">'
        + "".join(spans)
        + "</div>"
    )
