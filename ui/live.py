"""The choice of a text to look at: a sample passage, or the reader's own."""

import streamlit as st

from tinyllm.explain import TEXT_BOX_LIMITS
from ui.loaders import computed, model
from ui.text import code, codes, text_box
from ui.widgets import address_index, address_news, moved_by_reader, write_address


def choose_text(page: str, samples: list, block_size: int, default_own: str, address: bool = False):
    """A choice between the exported sample passages and the reader's own text.

    Returns (data, sample index or None). data is the sample's exported dict,
    or the live analysis of the reader's text (same keys); stops the page
    with a note when the text cannot be read."""
    text, choice = choose_plain_text(page, samples, block_size, default_own, address)
    return (samples[choice], choice) if choice is not None else (computed("analysis", text), None)


def choose_plain_text(page: str, samples: list, block_size: int, default_own: str, address: bool = False):
    """The same choice, returning (the text, sample index or None) for a
    page that computes its own numbers from it.

    address=True: the choice is also kept in the page's address, as
    ?sample=2 (numbered as on screen) or ?text=... (the reader's own), so
    that a link to the page lands on the same text."""
    key, own_key = f"{page}_prompt", f"{page}_own"
    if address:
        from_address(key, own_key, samples)
    options = [f"Sample {i + 1}: {code(p['text'][:28].strip() + '…')}" for i, p in enumerate(samples)]
    options.append("Your own text")
    choice = st.radio(
        "Text",
        range(len(options)),
        format_func=lambda i: options[i],
        horizontal=True,
        key=key,
        on_change=moved_by_reader(key) if address else None,
    )
    if address:
        write_address(key, "sample", str(choice + 1) if choice < len(samples) else None, "1")
    if choice < len(samples):
        if address:
            write_address(own_key, "text", None)
        return samples[choice]["text"], choice
    _, vocab, _ = model()
    # a text set from the address is the box's value: no default beside it (Streamlit warns of two)
    from_link = st.session_state.pop(f"{own_key}.set", False)
    text = text_box(
        "own text",
        f"Your text (up to {block_size} characters are used)",
        "" if from_link else default_own,
        key=own_key,
        height=90,
        on_change=moved_by_reader(own_key) if address else None,
    )
    if address:
        write_address(own_key, "text", text)
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


def from_address(key: str, own_key: str, samples: list):
    """Set the text choice from the address when it brings news: ?text= (the
    reader's own text) before ?sample= (none: the first sample). A bad value
    falls back to the first sample, or the nearest, and says why."""
    news, sample = address_news(key, "sample")
    text = st.query_params.get("text")
    if not news and text == st.session_state.get(f"{own_key}.address"):
        return
    st.session_state[key] = 0
    if text is not None:
        _, vocab, _ = model()
        limit = TEXT_BOX_LIMITS["own text"]
        unknown = vocab.unknown(text)
        if not text:
            st.info("The address holds an empty text: the first sample is shown.", icon=":material/link_off:")
        elif unknown:
            shown = codes(unknown[:10]) + (" and more" if len(unknown) > 10 else "")
            st.info(
                f"The text in the address holds characters this kid has never seen ({shown}): "
                "the first sample is shown.",
                icon=":material/link_off:",
            )
        else:
            if len(text) > limit:
                st.info(
                    f"The text in the address has {len(text):,} characters; the box takes at most {limit:,}, "
                    f"so the last {limit:,} are kept.",
                    icon=":material/link_off:",
                )
                text = text[-limit:]
            st.session_state[key] = len(samples)  # "Your own text"
            st.session_state[own_key] = text
            st.session_state[f"{own_key}.set"] = True
    elif sample is not None:
        choice, problem = address_index(sample, len(samples), "sample", 0, first=1)
        st.session_state[key] = choice
        if problem:
            st.info(problem, icon=":material/link_off:")
