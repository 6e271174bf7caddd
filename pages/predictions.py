"""Chapter 7: what the kid expects next, and how the guess forms layer by layer."""

import pandas as pd
import streamlit as st

from tinyllm.explain import count, glyph, surprise_colour
from ui import in_frame
from ui.charts import candidates_bar
from ui.live import choose_text
from ui.loaders import chapter, model
from ui.text import code, coloured_text
from ui.widgets import draw, index_slider

in_frame()  # drawn inside the frame, or not at all

pred = chapter("predictions")
card = chapter("model_card")
T = card["config"]["block_size"]
_, vocab, _ = model()

st.title("Predictions")
st.markdown(
    """
After the last layer, the kid turns the vector at each position into one score per character (the
**logits**), and softmax turns scores into probabilities: its guess for the *next* character. Below,
each character of a real passage is coloured by how **surprised** the kid was to see it, given the
text before it: white means it saw it coming, red means it did not. Surprise is $-\\ln p$: the loss.
"""
)

data, _ = choose_text(
    "predictions", pred["prompts"], T, "First Citizen:\nBefore we proceed any further, hear me speak.", address=True
)
text = data["text"]

# the character at position i+1 is what position i predicted
shown = list(text[1:]) + ([vocab.chars[data["targets"][-1]]] if data["targets"][-1] is not None else [])
colours = [surprise_colour(loss) for loss in data["losses"][: len(shown)]]
titles = [
    f"p = {p:.3f}, surprise {loss:.2f}"
    for p, loss in zip(data["target_probs"][: len(shown)], data["losses"][: len(shown)])
]
position = index_slider(
    "Position", len(text), "predictions_pos", default=20, address="pos", help="Which position's guess to explain."
)
st.markdown(f"{code(text[0])} (the first character, nobody predicted it) then:")
coloured_text(shown, colours, titles, selected=position)
known = [loss for loss in data["losses"] if loss is not None]
if known:
    st.caption(
        f"Mean surprise over these {count(len(known), 'character')}: {sum(known) / len(known):.3f}. "
        "Hover a character for its probability."
    )
else:
    st.caption("One character, and what comes after it is unknown: there is no surprise to measure yet.")

left, right = st.columns(2)
with left:
    # every character visible (␣ for a space): a context of spaces is no blank
    context = "".join(glyph(ch) for ch in text[max(0, position - 30) : position + 1])
    st.markdown(f"**After** {code(('…' if position > 30 else '') + context)} **the kid expects:**")
    cands = [(glyph(vocab.chars[i]), p) for i, p in data["top"][position]]
    draw(candidates_bar(cands), width="stretch")
    target = data["targets"][position]
    if target is not None:
        st.markdown(
            f"What really came next: {code(vocab.chars[target])}, which the kid gave "
            f"p = {data['target_probs'][position]:.3f} (surprise {data['losses'][position]:.2f})."
        )
with right:
    st.markdown("**The logit lens: the same guess read after each layer**")
    st.markdown(
        "Apply the final LayerNorm and output layer to the residual stream *after layer n* "
        "(its own state, normalised as the last layer's would be)."
        + (
            " Early layers often only know the character statistics; the later ones use the context."
            if len(data["lens"]) > 1
            else " This kid has one layer, so the lens has one row."
        )
    )
    rows = []
    for layer, tops in enumerate(data["lens"]):
        rows.append(
            {
                "after layer": layer,
                **{f"#{k + 1}": f"{glyph(vocab.chars[i])}  {p:.2f}" for k, (i, p) in enumerate(tops[position])},
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption("The last row is the kid's real prediction, the bars under *the kid expects*.")
    # the same run, text and position (written even at this page's default,
    # which is not the whole kid's): the link lands on this very guess
    st.page_link(
        "pages/whole_kid.py",
        label="Which parts pushed this guess",
        icon=":material/account_tree:",
        query_params={**st.query_params.to_dict(), "pos": str(position)},
    )
