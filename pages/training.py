"""Chapter 8: how the kid learned, and what it looked like along the way."""

import altair as alt
import pandas as pd
import streamlit as st

from tinyllm.explain import char_kind, count, surprise_colour
from tinyllm.habits import habit_sentence
from ui import in_frame
from ui.charts import FIT_WIDTH, attention_picture, embedding_scatter, loss_curves, metric_line, snapshot_timeline
from ui.loaders import chapter
from ui.text import code_block, coloured_text
from ui.widgets import draw, index_slider

in_frame()  # drawn inside the frame, or not at all

training = chapter("training")
evo = chapter("evolution")
card = chapter("model_card")
chars = [c["char"] for c in chapter("vocab")["chars"]]
rows = training["rows"]

st.title("Training")
st.markdown(
    f"""
The kid started as random numbers and guessed uniformly: loss {training["uniform_loss"]:.2f}. Each
**training step** shows it {count(card["train_settings"]["batch_size"], "random snippet")} of
{count(card["config"]["block_size"], "character")}, measures its surprise at every next character, and nudges
all {card["total_params"]:,} parameters a little in the direction that would have made it less
surprised (gradient descent, with the AdamW optimizer).

Two curves: **train** is the loss on text it trains on, **validation** on the last 10% of the corpus
it never sees. When train keeps falling but validation stops, the kid is memorising instead of
learning: *overfitting*. The checkpoint it keeps is the one with the lowest validation loss
(green line, step {training["best_step"]:,}).
"""
)
draw(loss_curves(rows, training["uniform_loss"], training["best_step"]), width="stretch")
c1, c2 = st.columns(2)
draw(metric_line(rows, "lr", "learning rate"), c1, width="stretch")
c1.caption("Warm-up, then cosine decay: big steps early, careful ones at the end.")
draw(metric_line([r for r in rows if r["tokens_per_s"]], "tokens_per_s", "chars/s"), c2, width="stretch")
c2.caption("Training speed between evaluations.")

st.subheader("Watch it learn")
snaps = evo["snapshots"]
steps = [s["step"] for s in snaps]
st.markdown(
    "Saved snapshots let you scrub through training. Pick a step: the samples, the map of "
    "character embeddings (aligned to the final one so the axes do not flip), one attention "
    "head and the predictions are all computed from the checkpoint saved at that step. "
    "Under the slider, a dot for each snapshot, under its stop, and the validation loss between them (grey). "
    f"The stops are evenly spaced, the steps are not: {sum(1 for s in steps if s <= steps[-1] * 0.05)} of the "
    f"{len(steps)} snapshots lie in the first 5% of training, where the kid changes fastest."
)
kinds = [char_kind(c) for c in chars]
# one frame for every step's embedding map, so that the points move and the axes stay
all_coords = [c for s in snaps for c in s["embedding_pca"]]
pad = 0.05
xs, ys = [c[0] for c in all_coords], [c[1] for c in all_coords]
domain = ([min(xs) - pad, max(xs) + pad], [min(ys) - pad, max(ys) + pad])


# A fragment: moving the step (or the head) reruns this part only, not the
# whole chapter with its charts above and below.
@st.fragment
def watch_it_learn():
    step = st.select_slider(
        "Training step", steps, value=steps[-1], key="training_step", format_func=lambda s: f"{s:,}"
    )
    snap = snaps[steps.index(step)]
    draw(snapshot_timeline(rows, steps, step), width="stretch")
    settings = card["train_settings"]
    measured_on = (
        f"measured during training on the same {settings['eval_batches']} batches of {settings['batch_size']} "
        f"snippets every time"
    )
    exact = card.get("exact_val_loss")
    if step == training["best_step"] and exact is not None:
        st.markdown(
            f"**Step {step:,}**: validation loss {snap['val_loss']:.3f}, {measured_on}. Over the whole "
            f"validation split this checkpoint's loss is {exact:.3f}: the number in the sidebar and chapter 1."
        )
    else:
        st.markdown(f"**Step {step:,}**: validation loss {snap['val_loss']:.3f}, {measured_on}.")
    code_block(snap["sample"])

    left, right = st.columns(2)
    with left:
        st.markdown("**Character embeddings**")
        draw(embedding_scatter(snap["embedding_pca"], chars, kinds, height=420, domain=domain), width="stretch")
    with right:
        cfg = card["config"]
        a, b = st.columns(2)
        layer = index_slider("Layer", cfg["n_layer"], "training_layer", where=a)
        head = index_slider("Head", cfg["n_head"], "training_head", where=b)
        label = snap["labels"][layer][head]
        st.markdown(f"**Attention of layer {layer}, head {head}** at this step: {habit_sentence(label)}.")
        draw(attention_picture(snap["attention"][layer][head], list(evo["prompt"]), height=380), width="stretch")

    st.markdown("**Predictions on the first sample passage at this step**, coloured by surprise:")
    text = evo["prompt"]
    shown = list(text[1:]) + [chars[evo["targets"][-1]]]
    coloured_text(shown, [surprise_colour(x) for x in snap["losses"]], [f"p = {p:.3f}" for p in snap["target_probs"]])


watch_it_learn()

st.subheader("Every head's pattern, over training")
st.markdown(
    "How much of each head's attention its main habit explains, at every snapshot: one chart per layer, "
    "one colour per head (hover a point for the habit's name)."
)
# labels where heads specialise too: 0, 10, 30, 100, 300, 1,000, ... up to the last step
step_ticks = [0] + [v for e in range(1, 8) for v in (10**e, 3 * 10**e) if v <= steps[-1]]
per_row = 2  # two layers side by side on a wide screen; one under the other on a phone
for first in range(0, len(snaps[0]["labels"]), per_row):
    for where, li in zip(st.columns(per_row), range(first, min(first + per_row, len(snaps[0]["labels"])))):
        label_rows = [
            {"step": s["step"], "head": f"head {hi}", "pattern": lab["label"], "score": lab["score"]}
            for s in snaps
            for hi, lab in enumerate(s["labels"][li])
        ]
        draw(
            alt.Chart(pd.DataFrame(label_rows), title=f"Layer {li}")
            .mark_line(point=True)
            .encode(
                x=alt.X(
                    "step:Q",
                    scale=alt.Scale(type="symlog", nice=False),
                    axis=alt.Axis(values=step_ticks, format=",d"),
                    title="training step (log-like scale)",
                ),
                y=alt.Y("score:Q", title="share its main habit explains", scale=alt.Scale(domain=[0, 1])),
                # every head in the legend, in rows of 4 that fit a phone (at most 8 heads: 8 colours)
                color=alt.Color("head:N", legend=alt.Legend(orient="bottom", columns=4, symbolLimit=0, title=None)),
                tooltip=[
                    alt.Tooltip("step:Q", format=","),
                    alt.Tooltip("head:N"),
                    alt.Tooltip("pattern:N"),
                    alt.Tooltip("score:Q", format=".2f"),
                ],
            )
            .properties(height=220, autosize=FIT_WIDTH),  # the legend below, not inside the height
            where=where,
            width="stretch",
        )

st.subheader("What it wrote at every evaluation")


@st.fragment
def what_it_wrote():
    samples = {sample["step"]: sample["text"] for sample in training["samples"]}
    if samples:
        written_at = st.select_slider(
            "Step", list(samples), value=list(samples)[-1], key="training_sample_step", format_func=lambda s: f"{s:,}"
        )
        code_block(samples[written_at])


what_it_wrote()
