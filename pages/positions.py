"""Chapter 4: how the kid knows where each character stands."""

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from tinyllm.explain import describe_distances, repeating_dimensions, similarity_by_distance, smoothness
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
peaks = describe_distances(by_distance)["peaks"] if T > 1 else []
line = (
    alt.Chart(pd.DataFrame({"distance": range(T), "similarity": by_distance}))
    .mark_line(point=True)
    .encode(
        x=alt.X("distance:Q", title="distance between two positions", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("similarity:Q", title="mean cosine similarity"),
        tooltip=[alt.Tooltip("distance:O"), alt.Tooltip("similarity:Q", format=".3f")],
    )
)
if peaks:  # the rises the sentence above names, marked where they are
    marks = pd.DataFrame({"distance": peaks, "similarity": [by_distance[d] for d in peaks]})
    marks["label"] = [f"peak at {d}" for d in peaks]
    rules = alt.Chart(marks).mark_rule(color="#d1495b", strokeDash=[4, 3]).encode(x="distance:Q")
    names = (
        alt.Chart(marks)
        .mark_text(color="#d1495b", dy=-12, fontWeight="bold")
        .encode(x="distance:Q", y="similarity:Q", text="label:N")
    )
    line = alt.layer(line, rules, names)
draw(line.properties(height=220), width="stretch")

st.subheader("The vectors themselves")
smooth = smoothness(pos["matrix"])
order = sorted(range(C), key=lambda d: -smooth[d])  # the smoothest dimensions first
dims = st.slider("Dimensions shown", 8, C, min(C, 64), step=8, key="positions_dims") if C > 8 else C
shown = order[:dims]
df = matrix_frame([[row[d] for d in shown] for row in pos["matrix"]], "position", "rank", "value")
df["dimension"] = np.array(shown)[df["rank"].to_numpy()]
draw(
    alt.Chart(df)
    .mark_rect()
    .encode(
        x=alt.X("rank:O", axis=alt.Axis(labels=False, ticks=False, title="dimension, the smoothest on the left")),
        y=alt.Y("position:O", title="position", axis=alt.Axis(labelOverlap="parity")),
        color=alt.Color("value:Q", scale=alt.Scale(scheme="redblue", domainMid=0, reverse=True)),
        tooltip=[alt.Tooltip("position:O"), alt.Tooltip("dimension:O"), alt.Tooltip("value:Q", format=".3f")],
    )
    .properties(height=480),
    width="stretch",
)
steady = sum(smooth[d] >= 0.5 for d in range(C))
sorting = (
    f"Each row is one position's vector; each column one of its {C} dimensions, sorted by how smoothly it "
    "changes from one position to the next (the correlation of its value at each position with the next "
    "one's). "
)
if steady == 0:
    seen = (
        f"None of the {C} changes smoothly (a correlation of 0.5 or more): in every column the colour "
        "changes from row to row."
    )
else:
    seen = (
        f"{steady} of the {C} {'changes' if steady == 1 else 'change'} smoothly (a correlation of 0.5 or more): "
        f"down the {'leftmost column' if steady == 1 else 'left columns'}, neighbouring rows have alike "
        "colours, in bands"
        + ("; down the right ones, the colour changes from row to row" if steady < C else "")
        + ". The smooth ones say roughly *where*."
    )
st.caption(sorting + seen + " Hover a cell for its dimension's number.")
if peaks:
    period = peaks[0]
    best = repeating_dimensions(pos["matrix"], period)
    waves = pd.DataFrame(
        [
            {"position": i, "value": pos["matrix"][i][f["dimension"]], "dimension": f"dimension {f['dimension']}"}
            for f in best
            for i in range(T)
        ]
    )
    st.markdown(
        f"**The repeat at distance {period}, seen in the vectors.** The dimensions that most clearly repeat "
        f"every {period} positions: "
        + "; ".join(
            f"dimension {f['dimension']} is alike {period} positions on (correlation {f['at_period']:.2f}) "
            f"and unlike {f['lowest_at']} on ({f['lowest']:.2f})"
            for f in best
        )
        + f". The grey lines are {period} positions apart."
    )
    grid = pd.DataFrame({"position": list(range(0, T, period))})
    draw(
        alt.layer(
            alt.Chart(grid).mark_rule(color="#bbbbbb").encode(x="position:Q"),
            alt.Chart(waves)
            .mark_line(point=True)
            .encode(
                x=alt.X("position:Q", title="position"),
                y=alt.Y("value:Q", title="value"),
                color=alt.Color("dimension:N", legend=alt.Legend(orient="top", title=None)),
                tooltip=[alt.Tooltip("dimension:N"), alt.Tooltip("position:Q"), alt.Tooltip("value:Q", format=".3f")],
            ),
        ).properties(height=240),
        width="stretch",
    )
