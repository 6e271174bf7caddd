"""Chapter 2: the characters the kid knows, and how text becomes numbers."""

import altair as alt
import pandas as pd
import streamlit as st

from tinyllm.explain import glyph
from ui import in_frame
from ui.charts import FIT_WIDTH
from ui.loaders import chapter, model
from ui.text import code, codes, shown, text_box
from ui.widgets import draw

in_frame()  # drawn inside the frame, or not at all

vocab_doc = chapter("vocab")
chars = vocab_doc["chars"]

st.title("Vocabulary")
st.markdown(
    f"""
A model does arithmetic, so text must become numbers first. The kid's way is the simplest there is:
list every distinct character in the corpus, sort them, and number them from 0. That list is its
**vocabulary**: {len(chars)} characters. Each character's number is its **id**. Whatever the kid
reads is a list of ids; whatever it writes is ids turned back into characters.
"""
)

df = pd.DataFrame(chars)
df["shown"] = [glyph(c["char"]) for c in chars]
df["name"] = [shown(c["name"]) for c in chars]  # an invisible character by its code point
left, right = st.columns([3, 2])
with left:
    st.subheader("How often each character appears")
    sort = st.radio("Order", ["by id", "by count"], horizontal=True, key="vocab_sort")
    order = "-x" if sort == "by count" else alt.EncodingSortField("id")
    # one row per character, so that every character keeps its label at any width
    draw(
        alt.Chart(df)
        .mark_bar()
        .encode(
            y=alt.Y("shown:N", sort=order, title=None, axis=alt.Axis(labelOverlap=False, labelFontSize=12)),
            x=alt.X("count:Q", title="count in the corpus (square-root scale)", scale=alt.Scale(type="sqrt")),
            tooltip=[alt.Tooltip("id:O"), alt.Tooltip("name:N"), alt.Tooltip("count:Q", format=",")],
        )
        .properties(height=15 * len(df), autosize=FIT_WIDTH),
        width="stretch",
    )
    most, least = df.loc[df["count"].idxmax()], df.loc[df["count"].idxmin()]
    st.caption(
        "Counts on a square-root scale, so rare characters still show: the most frequent, "
        f"{code(most['char'])}, appears {most['count']:,} times; the rarest, {code(least['char'])}, "
        f"{least['count']:,}. Hover a bar for its count."
    )
with right:
    st.subheader("The whole table")
    st.dataframe(
        df[["id", "shown", "name", "count"]],
        hide_index=True,
        height=360,
        width="stretch",
        column_config={
            "shown": st.column_config.TextColumn("character", help="as the charts show it: ↵ newline, ␣ space"),
            "count": st.column_config.NumberColumn("count", format="localized"),
        },
    )

st.subheader("Try it: encode and decode")
_, vocab, _ = model()
text = text_box("encode", "Type any text", "To be, or not to be?", key="vocab_text", single_line=True)
unknown = vocab.unknown(text)
known = "".join(ch for ch in text if ch not in unknown)
if unknown:
    st.warning(
        "The kid has never seen "
        + codes(unknown)
        + ": these characters have no id, so it cannot read them. They are left out below."
    )
ids = vocab.encode(known)
st.markdown("**Encoded** (what the kid reads):")
st.code(str(ids), language=None, wrap_lines=True)
st.markdown("**Decoded** back (ids to characters):")
st.code(vocab.decode(ids), language=None, wrap_lines=True)
if ids:
    pairs = pd.DataFrame({"character": [glyph(c) for c in known], "id": ids})
    st.dataframe(pairs, hide_index=True, height=min(36 * len(pairs) + 40, 320), width="content")
