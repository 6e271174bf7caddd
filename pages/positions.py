"""Chapter 4: how the kid knows where each character stands."""

import altair as alt
import pandas as pd
import streamlit as st

from tinyllm.explain import describe_distances, similarity_by_distance
from ui import in_frame
from ui.charts import matrix_frame, similarity_heatmap
from ui.loaders import chapter
from ui.widgets import draw

in_frame()  # drawn inside the frame, or not at all

pos = chapter("positions")
T, C = len(pos["matrix"]), len(pos["matrix"][0])

st.title("Positions")
st.markdown(
    f"""
Attention (next chapter) compares characters with each other, but on its own it has no idea of order:
"dog bites man" and "man bites dog" would look the same. So the kid adds a second vector to each
character: a **position embedding**, one learned vector for each of the {T} places in its window.
The input of the first layer is *token embedding + position embedding*.

Nobody told the kid what positions mean. It learned these {T} vectors from data, like everything else.
"""
)

st.subheader("Position to position similarity")
draw(
    similarity_heatmap(pos["similarity"], [str(i) for i in range(T)], "position", "position", height=520),
    width="stretch",
)
by_distance = similarity_by_distance(pos["similarity"])
if T > 1:
    far = min(range(1, T), key=lambda d: by_distance[d])
    facts = describe_distances(by_distance)
    values = ", ".join(f"{v:.2f} at {d}" for d, v in enumerate(facts["near"], start=1))
    if T == 2:
        reading = "With two positions there is one distance, so nothing to compare it with."
    elif facts["neighbours_most_alike"] and facts["steady"]:
        reading = "Neighbours are the most alike, and likeness falls steadily with distance: order is smooth."
    elif facts["neighbours_most_alike"]:
        reading = "Neighbours are the most alike, but likeness does not fall steadily with distance."
    else:
        reading = "Neighbours are not the most alike pair: this run's positions are not ordered smoothly."
    if facts["peaks"]:
        peaks = ", ".join(str(d) for d in facts["peaks"][:6])
        distances = "distances" if len(facts["peaks"]) > 1 else "distance"
        reading += (
            f" Likeness rises again at {distances} {peaks}: lines parallel to the diagonal. Some "
            "dimensions repeat with a period, like the sines and cosines the original Transformer "
            "used by design."
        )
    st.markdown(
        f"**Reading it:** each cell compares two positions' vectors. The mean similarity of two positions "
        f"by their distance: {values}"
        + (f"; the least alike are {far} apart ({by_distance[far]:.2f})" if T > 2 else "")
        + f". {reading}"
    )
draw(
    alt.Chart(pd.DataFrame({"distance": range(T), "similarity": by_distance}))
    .mark_line(point=True)
    .encode(
        x=alt.X("distance:Q", title="distance between two positions"),
        y=alt.Y("similarity:Q", title="mean cosine similarity"),
        tooltip=[alt.Tooltip("distance:O"), alt.Tooltip("similarity:Q", format=".3f")],
    )
    .properties(height=220),
    width="stretch",
)

st.subheader("The vectors themselves")
dims = st.slider("Dimensions shown", 8, C, min(C, 64), step=8, key="positions_dims") if C > 8 else C
df = matrix_frame([row[:dims] for row in pos["matrix"]], "position", "dimension", "value")
draw(
    alt.Chart(df)
    .mark_rect()
    .encode(
        x=alt.X("dimension:O", axis=alt.Axis(labels=dims <= 64, title="dimension")),
        y=alt.Y("position:O", title="position"),
        color=alt.Color("value:Q", scale=alt.Scale(scheme="redblue", domainMid=0, reverse=True)),
        tooltip=[alt.Tooltip("position:O"), alt.Tooltip("dimension:O"), alt.Tooltip("value:Q", format=".3f")],
    )
    .properties(height=480),
    width="stretch",
)
st.caption(
    "Each row is one position's vector. Stripes that change smoothly down a column are "
    "dimensions the kid uses to encode *where*."
)
