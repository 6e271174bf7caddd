"""Live computations for text the reader types, cached per run and text."""

import streamlit as st

from tinyllm.export import analyze_text
from ui.data import model


@st.cache_data(max_entries=32, show_spinner="Running the kid on your text...")
def _analyze(path: str, mtime: int, text: str) -> dict:
    kid, vocab, _ = model()
    return analyze_text(kid, vocab, text)


def analyze(text: str) -> dict:
    """The export-format attention and predictions of `text`, from the checkpoint."""
    from ui.data import current_run, mtime_ns

    path = current_run() / "model.pt"
    return _analyze(str(path), mtime_ns(path), text)


def own_text_input(key: str, block_size: int, default: str):
    """A text box for the reader's own prompt; returns (analysis, note) or (None, message)."""
    _, vocab, _ = model()
    text = st.text_area(f"Your text (up to {block_size} characters are used)", default, key=key,
                        height=90)
    unknown = vocab.unknown(text)
    if unknown:
        return None, ("The kid has never seen " + ", ".join(f"`{c}`" for c in unknown)
                      + ". Remove these characters to run it.")
    if not text:
        return None, "Type at least one character."
    note = None
    if len(text) > block_size:
        note = (f"Your text has {len(text)} characters; the kid reads at most {block_size}, "
                f"so only the last {block_size} are used.")
    return analyze(text), note
