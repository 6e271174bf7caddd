"""Chapter 8: how the kid learned, and what it looked like along the way."""

import altair as alt
import pandas as pd
import streamlit as st

from tinyllm.explain import char_kind, count, glyph, surprise_colour
from tinyllm.export import export_run
from tinyllm.habits import habit_sentence
from tinyllm.learning import BELOW, CLASS_RULES, PASSAGE_CHARS, class_counts_sentence, learning_story
from tinyllm.runfolder import RunFolder
from ui import in_frame
from ui.charts import (
    FIT_WIDTH,
    attention_picture,
    class_losses,
    embedding_scatter,
    loss_curves,
    metric_line,
    snapshot_timeline,
    step_ticks,
)
from ui.loaders import chapter, current_run
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
if not snaps:
    st.info(
        "**This run kept no snapshots** of the kid during training, so there is no step to go back to: "
        "only the curves above, and what it wrote below, tell how it learned.",
        icon=":material/info:",
    )
    st.stop()  # the rest of the chapter scrubs through snapshots


def learning_doc():
    """learning.json, or None after saying on the page why this run has none."""
    run_dir = current_run()
    if RunFolder(run_dir).chapter("learning").is_file():
        return chapter("learning")
    if len(chapter("flow")["slice"]) < 2:  # the validation text: too short to measure surprise on
        st.info(
            "This run's validation text is too short to hold a passage, so its surprise at each character "
            "is not shown here.",
            icon=":material/info:",
        )
        return None
    if not RunFolder(run_dir).snapshot_files():  # what the measuring reads
        st.info(
            "This run's pages were written before peek measured its surprise at a passage at every snapshot, "
            "and its snapshots were not kept with it, so it cannot be measured here.",
            icon=":material/info:",
        )
        return None
    st.info(
        "This run's pages were written before peek measured its surprise at a passage at every snapshot.",
        icon=":material/info:",
    )
    if st.button("Measure it now", icon=":material/refresh:", key="training_export_learning"):
        with st.spinner("Reading the passage with every snapshot..."):
            export_run(run_dir, ["learning"])
        st.rerun()
    return None


learned = learning_doc()
what = "the samples, the map of character embeddings (aligned to the final one so the axes do not flip), one "
what += "attention head" + (" and the kid's surprise at every character of a passage are" if learned else " are")
st.markdown(
    f"Saved snapshots let you scrub through training. Pick a step: {what} all computed from the checkpoint "
    "saved at that step. Under the slider, a dot for each snapshot, under its stop, and the validation loss "
    f"between them (grey). The stops are evenly spaced, the steps are not: "
    f"{sum(1 for s in steps if s <= steps[-1] * 0.05)} of the {len(steps)} snapshots lie in the first 5% of "
    "training, where the kid changes fastest."
)
kinds = [char_kind(c) for c in chars]
# one frame for every step's embedding map, so that the points move and the axes stay
all_coords = [c for s in snaps for c in s["embedding_pca"]]
pad = 0.05
xs, ys = [c[0] for c in all_coords], [c[1] for c in all_coords]
domain = ([min(xs) - pad, max(xs) + pad], [min(ys) - pad, max(ys) + pad])


def surprise_at(step: int):
    """The passage coloured by the kid's loss at each character at this step,
    and every class's mean loss over training with this step marked."""
    at = learned["steps"].index(step)
    passage, losses = learned["passage"], learned["losses"][at]
    names = [c["name"] for c in learned["classes"]]
    which = "the first" if len(passage) == PASSAGE_CHARS else "all"  # a shorter passage is the whole split
    st.markdown(
        f"**What surprises it** at this step: {which} {count(len(passage), 'character')} of the validation "
        f"split, each read with the {count(learned['block_size'], 'character')} before it (fewer at the start) "
        f"and coloured by its loss, −ln p of the character that really came: white where the kid expected it, "
        f"deep red at a loss of 6 or more (a uniform guess loses {training['uniform_loss']:.2f}). Mean loss over "
        f"the passage at step {step:,}: **{learned['means'][at]:.2f}**. Hover a character for its loss."
    )
    titles = ["the first character: nothing before it to predict it from"] + [
        f"{glyph(ch)}: loss {loss:.2f}" + ("" if c is None else f", {names[c]}")
        for ch, loss, c in zip(passage[1:], losses, learned["class_of"])
    ]
    with st.container(height=480, key="training_passage"):
        coloured_text(list(passage), ["transparent"] + [surprise_colour(loss) for loss in losses], titles)
    st.markdown("**Its surprise by kind of character**, at every snapshot (red line: this step):")
    draw(class_losses(learned, step, BELOW), width="stretch")
    st.markdown(f"**What it learned first and last.** {learning_story(learned)}")
    st.caption(f"{class_counts_sentence(learned)} {CLASS_RULES}")


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
    st.markdown("**What it writes** at this step:")
    code_block(snap["sample"])
    if learned and step in learned["steps"]:
        surprise_at(step)

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


watch_it_learn()

st.subheader("Every head's pattern, over training")
st.markdown(
    "How much of each head's attention its main habit explains, at every snapshot: one chart per layer, "
    "one colour per head (hover a point for the habit's name)."
)
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
                    axis=alt.Axis(values=step_ticks(steps[-1]), format=",d"),
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
