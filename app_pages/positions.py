"""Chapter 4: how the kid knows where each character stands."""

import altair as alt
import streamlit as st

from ui.charts import matrix_frame, similarity_heatmap
from ui.data import chapter

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
st.altair_chart(similarity_heatmap(pos["similarity"], [str(i) for i in range(T)], "position", "position",
                                   height=520), width="stretch")
st.markdown(
    """
**Reading it:** each cell compares two positions' vectors. The bright band along the diagonal says
that *nearby positions have similar vectors*, and similarity fades with distance. The kid discovered
on its own that order is smooth: position 20 is like 19 and 21, less like 5. Early positions often
stand apart: at the start of its window the kid has little context, so they behave differently.
"""
)

st.subheader("The vectors themselves")
dims = st.slider("Dimensions shown", 8, C, min(C, 64), step=8, key="positions_dims")
df = matrix_frame([row[:dims] for row in pos["matrix"]], "position", "dimension", "value")
st.altair_chart(
    alt.Chart(df).mark_rect().encode(
        x=alt.X("dimension:O", axis=alt.Axis(labels=dims <= 64, title="dimension")),
        y=alt.Y("position:O", title="position"),
        color=alt.Color("value:Q", scale=alt.Scale(scheme="redblue", domainMid=0, reverse=True)),
        tooltip=["position", "dimension", alt.Tooltip("value:Q", format=".3f")],
    ).properties(height=480),
    width="stretch",
)
st.caption("Each row is one position's vector. Stripes that change smoothly down a column are "
           "dimensions the kid uses to encode *where*.")
