"""Chapter 3: each character is a vector; similar characters get similar vectors."""

import streamlit as st

from tinyllm.explain import char_kind, glyph
from ui import in_frame
from ui.charts import embedding_scatter, similarity_heatmap
from ui.loaders import chapter
from ui.text import code
from ui.widgets import draw

in_frame()  # drawn inside the frame, or not at all

emb = chapter("embeddings")
chars = [c["char"] for c in chapter("vocab")["chars"]]
n_embd = len(emb["matrix"][0])
example = "e" if "e" in chars else chars[-1]

st.title("Embeddings")
st.markdown(
    f"""
An id is just a name: {code(example)} being {chars.index(example)} says nothing about {code(example)}.
So the kid's first layer looks up each id
in a table, the **token embedding**, and gets a vector of {n_embd} numbers. These vectors start out
random; training moves them until characters that behave alike (they appear in similar places, they
predict similar next characters) get vectors that point in similar directions.

{n_embd} dimensions cannot be drawn, so the map below shows the two directions along which the
vectors differ most (a **PCA** projection; it keeps
{sum(emb["pca"]["explained"]):.0%} of the spread). Look for vowels, capitals and punctuation
forming their own neighbourhoods.
"""
)
kinds = [char_kind(c) for c in chars]
ex = emb["pca"]["explained"]
draw(
    embedding_scatter(
        emb["pca"]["coords"], chars, kinds, x_title=f"PC 1 ({ex[0]:.0%} of the spread)", y_title=f"PC 2 ({ex[1]:.0%})"
    ),
    width="stretch",
)

st.subheader("Nearest neighbours")
st.markdown(
    "**Cosine similarity** compares directions: 1 means the same direction, 0 unrelated, "
    "-1 opposite. These are measured in all dimensions, not on the flat map."
)
options = list(range(len(chars)))
default = chars.index("a") if "a" in chars else 0
chosen = st.selectbox(
    "Character", options, index=default, format_func=lambda i: f"{glyph(chars[i])}  (id {i})", key="embeddings_char"
)
cols = st.columns(len(emb["neighbours"][chosen]))
for col, (j, sim) in zip(cols, emb["neighbours"][chosen]):
    col.metric(f"id {j} · cosine {sim:.2f}", glyph(chars[j]))  # a similarity, not a change: no delta arrow

st.subheader("Every pair at once")
labels = [glyph(c) for c in chars]
if emb["similarity"] is None:  # not exported for a large vocabulary (tinyllm/export.py)
    st.info(
        f"This run knows {len(chars):,} characters: its similarity matrix would have {len(chars) ** 2:,} cells, "
        "too many to read, so it is not drawn. The nearest neighbours above are measured all the same.",
        icon=":material/grid_off:",
    )
else:
    first_letter = next((i for i, c in enumerate(chars) if c.isalpha()), len(chars))
    before_letters = " ".join(code(c) for c in chars[:first_letter])
    st.markdown(
        "The full similarity matrix: row and column are characters in id order, which is their order in "
        "Unicode"
        + (f" (here {before_letters} before the first letter)" if 0 < first_letter < len(chars) else "")
        + ". Blocks of red show families."
    )
    heatmap = similarity_heatmap(emb["similarity"], labels, "character", "character", height=620)
    draw(heatmap, width="stretch")
