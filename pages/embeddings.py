"""Chapter 3: each character is a vector; similar characters get similar vectors."""

import streamlit as st

from tinyllm.explain import RARE, case_pairs, char_kind, count, glyph, too_rare
from ui import in_frame
from ui.charts import embedding_scatter, similarity_heatmap
from ui.loaders import chapter
from ui.text import code
from ui.widgets import draw

in_frame()  # drawn inside the frame, or not at all

emb = chapter("embeddings")
vocab_rows = chapter("vocab")["chars"]
chars = [c["char"] for c in vocab_rows]
seen = [c["count"] for c in vocab_rows]  # how often each character is in the corpus
n_embd = len(emb["matrix"][0])
example = "e" if "e" in chars else chars[-1]
FAMILIES = {"vowel": "vowels", "capital": "capitals", "punctuation": "punctuation"}

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
{sum(emb["pca"]["explained"]):.0%} of the spread).
"""
)
kinds = [char_kind(c) for c in chars]
# the kinds this run has at least two characters of: a neighbourhood takes two
families = [name for kind, name in FAMILIES.items() if kinds.count(kind) >= 2]
if families:
    listed = families[0] if len(families) == 1 else ", ".join(families[:-1]) + " and " + families[-1]
    st.markdown(f"Look for {listed} forming their own neighbourhoods.")
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


def times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n:,} times")


cols = st.columns(len(emb["neighbours"][chosen]))
for col, (j, sim) in zip(cols, emb["neighbours"][chosen]):
    # a similarity, not a change: no delta arrow
    col.metric(f"id {j} · cosine {sim:.2f}" + (" · rare" if too_rare(seen[j]) else ""), glyph(chars[j]))
rare = [j for j in [chosen] + [j for j, _ in emb["neighbours"][chosen]] if too_rare(seen[j])]
if rare:
    st.caption(
        "Too rare to mean anything: "
        + ", ".join(f"{code(chars[j])} is in the corpus only {times(seen[j])}" for j in rare)
        + f". Fewer than {RARE} examples are too few to place a character: where its vector points, and so "
        "who its neighbours are, says little about it."
    )

pattern = case_pairs(chars, emb["matrix"])
if pattern and pattern["strength"]:
    example = "a" if "a" in pattern["letters"] else pattern["letters"][0]
    pairs = count(pattern["pairs"], "lowercase letter")
    alike = (
        f"a letter and its capital have a mean cosine of {pattern['pair_mean']:.2f}, against "
        f"{pattern['all_mean']:.3f} for two different characters on average"
    )
    if pattern["strength"] == "strong":
        st.markdown(
            f"**The strongest pattern here: a letter and its capital.** Of the {pairs} whose capital the kid "
            f"knows, {pattern['nearest']} have it as their nearest neighbour; {alike}. Nobody told the kid that "
            f"{code(example)} and {code(example.upper())} are the same letter: it found out from how they are used."
        )
    else:
        st.markdown(
            f"**A letter and its capital are more alike than most pairs:** {alike}. But the capital is the "
            f"nearest neighbour of only {pattern['nearest']} of the {pairs} whose capital the kid knows."
        )

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
        + ". Blocks of red show families. Every character is labelled down the side; across the top, "
        "where the screen is too narrow for all of them, some are left out. Hover a cell "
        "to name its pair."
    )
    heatmap = similarity_heatmap(emb["similarity"], labels, "character", "character", height=620)
    draw(heatmap, width="stretch")
