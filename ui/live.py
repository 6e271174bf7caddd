"""The choice of a text to look at: a sample passage, or the reader's own."""

import streamlit as st

from ui.loaders import computed, model
from ui.text import code, codes, text_box


def choose_text(page: str, samples: list, block_size: int, default_own: str):
    """A choice between the exported sample passages and the reader's own text.

    Returns (data, sample index or None). data is the sample's exported dict,
    or the live analysis of the reader's text (same keys); stops the page
    with a note when the text cannot be read."""
    text, choice = choose_plain_text(page, samples, block_size, default_own)
    return (samples[choice], choice) if choice is not None else (computed("analysis", text), None)


def choose_plain_text(page: str, samples: list, block_size: int, default_own: str):
    """The same choice, returning (the text, sample index or None) for a
    page that computes its own numbers from it."""
    options = [f"Sample {i + 1}: {code(p['text'][:28].strip() + '…')}" for i, p in enumerate(samples)]
    options.append("Your own text")
    choice = st.radio(
        "Text", range(len(options)), format_func=lambda i: options[i], horizontal=True, key=f"{page}_prompt"
    )
    if choice < len(samples):
        return samples[choice]["text"], choice
    _, vocab, _ = model()
    text = text_box(
        "own text", f"Your text (up to {block_size} characters are used)", default_own, key=f"{page}_own", height=90
    )
    unknown = vocab.unknown(text)
    if unknown:
        st.info("The kid has never seen " + codes(unknown) + ". Remove these characters to run it.")
        st.stop()
    if not text:
        st.info("Type at least one character.")
        st.stop()
    if len(text) > block_size:
        st.info(
            f"Your text has {len(text)} characters; the kid reads at most {block_size}, "
            f"so only the last {block_size} are used."
        )
    return text, None
