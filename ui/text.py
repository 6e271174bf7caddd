"""Text from a corpus or a visitor, shown as text and nothing else.

Every piece of text a page did not write itself (sample passages, the
vocabulary, a visitor's prompt or typed text, run names, error messages that
quote them) goes through one of these before Streamlit sees it. Streamlit
renders Markdown in st.markdown, captions, alerts and radio labels: an
uploaded text holding `![](//x.yz)` would make every viewer's browser fetch
that address, and a backtick would break the sentence around it. Characters
that show nothing or reverse the text around them (zero-width, right-to-left
override) are named by their code point (tinyllm.explain.glyph), so that
what is on screen is what is in the text.
"""

import html
import re

import streamlit as st

from tinyllm.explain import TEXT_BOX_LIMITS, glyph


def shown(text: str, lines: bool = False) -> str:
    """text with every invisible character named (glyph), spaces kept as
    spaces; newlines as ↵, or kept when lines is True (a code block)."""
    return "".join(ch if ch == " " or (lines and ch == "\n") else glyph(ch) for ch in text)


def code(text: str) -> str:
    """Markdown for text as inline code: the text exactly, whatever it holds.

    A code span may not hold its own fence, so the fence is one backtick
    longer than the longest run of backticks inside; the spaces around the
    text are stripped again by Markdown (and let it begin or end with a
    backtick). A single character is shown as its glyph (␣ for a space)."""
    inside = glyph(text) if len(text) == 1 else shown(text)
    fence = "`" * (max((len(run) for run in re.findall("`+", inside)), default=0) + 1)
    return f"{fence} {inside} {fence}"


def codes(chars) -> str:
    """A list of characters, each as inline code: `a`, `b`, `c`."""
    return ", ".join(code(ch) for ch in chars)


# Characters that start Markdown (or Streamlit's :emoji: and $math$) anywhere
# in a line, and those that do only at a line's start (lists, quotes, headings).
_INLINE = re.compile(r"([\\`*_{}\[\]()<>#+!|~$:&])")
_LINE_START = re.compile(r"^(\s*)([-=.])|^(\s*\d+)([.)])", re.M)


def escaped(text: str) -> str:
    """Markdown for text as plain words: every character that could start
    Markdown escaped with a backslash, every invisible character named,
    newlines kept."""
    text = _INLINE.sub(r"\\\1", shown(str(text), lines=True))
    return _LINE_START.sub(lambda m: f"{m[1] or m[3] or ''}\\{m[2] or m[4]}", text)


def code_block(text: str):
    """A passage (a sample the kid wrote, a corpus excerpt) in a code block,
    its invisible characters named and its lines kept."""
    st.code(shown(text, lines=True), language=None, wrap_lines=True)


def coloured_text(chars, colours, titles=None, selected=None):
    """Render chars as spans with background colours (and hover titles).
    Newlines are shown as ↵ and then break the line, as in the text."""
    spans = []
    for n, (ch, colour) in enumerate(zip(chars, colours)):
        title = html.escape(titles[n]) if titles else ""
        border = "outline: 2px solid #1f4e79;" if n == selected else ""
        spans.append(
            f'<span title="{title}" style="background:{colour};{border}'
            f'padding:1px 1px;border-radius:3px;">{html.escape(glyph(ch))}</span>'
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


def text_box(use: str, label: str, value: str, key: str, single_line=False, **options) -> str:
    """A text area (or a one-line input) of at most TEXT_BOX_LIMITS[use]
    characters: the browser stops the typing there and shows the count, and
    Streamlit cuts a longer value sent by a forged message before the page or
    Session State sees it (tests/test_attacks.py checks both)."""
    box = st.text_input if single_line else st.text_area
    return box(label, value, key=key, max_chars=TEXT_BOX_LIMITS[use], **options)
