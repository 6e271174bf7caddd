"""Chapter 6: the whole kid. One character's trip through every stage, with
its real numbers, and why the kid predicted what it did."""

from collections import Counter

import streamlit as st

from tinyllm.explain import count, glyph
from tinyllm.flow import describe_stage, logit_attribution, stage_code, stages
from ui import in_frame
from ui.charts import candidates_bar
from ui.flow_charts import context_html, forward_diagram, pushes_chart, top_bars, vector_strip
from ui.knockout_panel import knockout_panel
from ui.live import choose_plain_text
from ui.loaders import chapter, computed, model
from ui.text import code
from ui.widgets import draw, index_slider

in_frame()  # drawn inside the frame, or not at all

card = chapter("model_card")
samples = chapter("predictions")["prompts"]
neurons = chapter("flow")  # the neurons' validation contexts
cfg = card["config"]
C, T, L, H = cfg["n_embd"], cfg["block_size"], cfg["n_layer"], cfg["n_head"]
kid, vocab, _ = model()
STAGES = stages(L)

st.title("The whole kid")
st.markdown(
    f"""
The chapters so far took the kid apart. Here it works as one: a text goes in, and at every position
a vector of **{C} numbers**, the *residual stream*, is passed up through {count(L, "block")}. Each block
**adds** to it twice: once what attention gathered from earlier positions, once what its
feed-forward layer computed in place. At the top, the stream becomes one score per character.
Pick a stage in the diagram's slider to see the real vector there, and what that stage changed.
"""
)

text, choice = choose_plain_text("whole", samples, T, "ROMEO:\nBut soft, what light")
# the character after the passage, where it is known
next_char = vocab.chars[samples[choice]["targets"][-1]] if choice is not None else None
flow = computed("flow", text)
text = flow["text"]


@st.fragment
def trip():
    """Everything that follows one position: a fragment, so that moving the
    position does not rerun the page; the stage and the neurons are
    fragments inside it, so that each redraws alone."""
    pos = index_slider("Position", len(text), "whole_pos", default=12, help="Which character's vector to follow.")
    before = code(text[max(0, pos - 12) : pos])
    where = f"after {before}" if pos else "the first character: it can look at nothing else"
    st.markdown(f"Following position **{pos}**, the character {code(text[pos])} ({where}).")
    stage_view(pos)
    neuron_view(pos)
    knockout_panel(text, pos, cfg)
    show_attribution(pos)


@st.fragment
def stage_view(pos):
    label = st.select_slider(
        "Stage",
        [s["label"] for s in STAGES],
        value=STAGES[2]["label"],
        key="whole_stage",
        help="Step through the forward pass, bottom to top.",
    )
    stage = next(s for s in STAGES if s["label"] == label)
    picture, numbers = st.columns([2, 3])
    with picture:
        st.image(forward_diagram(cfg, stage), width="stretch")  # an SVG
    with numbers:
        view = describe_stage(flow, stage, pos)
        show_stage(stage, view, pos)
        source, line = stage_code(stage["key"])
        marked = source.splitlines()
        marked[line] += "  # ◀ this stage"
        st.markdown("**The code that ran** (`tinyllm/model.py`)")
        st.code("\n".join(marked), language="python", wrap_lines=True)


def show_stage(stage, view, pos):
    kind = stage["kind"]
    if stage["key"] == "logits":
        logits = flow["logits"][pos]
        st.markdown(
            f"**{stage['label']}**: the stream, normalised, becomes {logits.size} scores (logits), one per "
            "character of the vocabulary. The highest ten:"
        )
        draw(top_bars(logits, [glyph(c) for c in vocab.chars], "logit", top=10), width="stretch")
        return
    if stage["key"] == "probs":
        probs = flow["probs"][pos]
        top = probs.argsort()[::-1][:8]
        st.markdown(
            f"**{stage['label']}**: softmax turns the logits into probabilities that sum to 1. The likeliest eight:"
        )
        draw(candidates_bar([(glyph(vocab.chars[i]), float(probs[i])) for i in top]), width="stretch")
        return
    st.markdown(f"**{stage['label']}**: {view['vector'].size} numbers, length (norm) {view['norm']:.2f}")
    draw(vector_strip(view["vector"]), width="stretch")
    if kind == "norm":
        st.markdown(
            f"LayerNorm took a vector with mean {view['mean_before']:+.3f} and spread "
            f"{view['spread_before']:.3f} to mean {view['mean_after']:+.3f} and spread "
            f"{view['spread_after']:.3f} (then scaled each dimension by its learned gain)."
        )
    elif kind == "add":
        what = "Attention" if stage["key"] == "attn" else "The feed-forward layer"
        st.markdown(
            f"{what} **adds** this vector (length {view['norm']:.2f}) to the residual stream, whose "
            f"length was {view['stream_before']:.2f}: {view['share']:.0%} of the stream's size. "
            f"After the addition the stream's length is {view['stream_after']:.2f}."
        )
    elif kind == "heads":
        hs = C // H
        st.markdown(
            f"The {H} heads' outputs side by side, {hs} numbers each: dimensions 0–{hs - 1} are head 0, "
            f"and so on. The projection mixes them back into {C} numbers."
        )
    elif kind == "neurons":
        st.markdown(f"{view['fired']} of the {view['of']} neurons fired here (ReLU > 0); the others are 0.")
    elif kind == "embed":
        st.markdown(f"The character's vector plus position {pos}'s vector: where the stream starts.")


@st.fragment
def neuron_view(pos):
    st.subheader("The feed-forward neurons")
    block = 0
    if L > 1:
        block = st.radio(
            "Block", range(L), index=0, horizontal=True, key="whole_block", format_func=lambda b: f"block {b}"
        )
    hidden = flow["blocks"][block]["hidden"][pos]
    fired = int((hidden > 0).sum())
    st.markdown(f"At position {pos}, **{fired} of {hidden.size}** neurons of block {block} fired. The strongest:")
    left, right = st.columns([2, 3])
    with left:
        draw(top_bars(hidden, [f"#{n}" for n in range(hidden.size)], "activation after ReLU"), width="stretch")
    with right:
        if not neurons["neurons"]:
            st.info(
                "This run's export has no validation contexts for its neurons (its validation text was "
                "too short, or it was trained before they were collected)."
            )
            return
        strongest = [int(n) for n in hidden.argsort()[::-1][:12]]
        n = st.selectbox(
            "Neuron", strongest, key=f"whole_neuron_{block}", format_func=lambda n: f"#{n} (here {hidden[n]:.2f})"
        )
        contexts = neurons["neurons"][block][n]
        slice_text = neurons["slice"]
        st.markdown(
            f"Where neuron #{n} of block {block} fires most in the first {len(slice_text):,} characters "
            "of the validation text (the marked character; grey: what the kid had read before it):"
        )
        st.html(
            "<div style='font-family:monospace;font-size:1rem;line-height:1.9'>"
            + "<br>".join(
                f"{context_html(slice_text, o, neurons['window'])} &nbsp;<small>{a:.2f}</small>" for o, a in contexts
            )
            + "</div>"
        )
        firing = Counter(slice_text[o] for o, _ in contexts)
        char, count = firing.most_common(1)[0]
        if count > 1:
            st.caption(f"In {count} of these {len(contexts)} contexts it fires on {code(char)}.")
        else:
            st.caption(f"Its {len(contexts)} strongest contexts fire on {len(firing)} different characters.")


def show_attribution(pos):
    st.subheader("Why this prediction")
    predicted = int(flow["logits"][pos].argmax())
    known = text[pos + 1] if pos + 1 < len(text) else next_char
    targets = [predicted] + ([vocab.stoi[known]] if known is not None and vocab.stoi[known] != predicted else [])
    st.markdown(
        "The final logit of a character is a sum: every part that was added to the residual stream pushes it "
        "up or down. Holding the final LayerNorm's spread at its value for this position (the standard "
        "linearisation), each part's push is exact, and the pushes add up to the logit."
    )
    columns = st.columns(len(targets))
    for column, char_id in zip(columns, targets):
        why = logit_attribution(kid, flow, pos, char_id)
        role = "the kid's top guess" if char_id == predicted else "what really came next"
        with column:
            st.markdown(f"**{code(why['char'])}**, {role}: logit {why['logit']:.3f}")
            draw(pushes_chart(why["pushes"]), width="stretch")
            st.caption(
                f"The pushes sum to {why['total'] - why['constant']:.3f}; with the bias terms "
                f"(W·β + b = {why['constant']:.3f}) that is {why['total']:.3f}, and the kid's logit is "
                f"{why['logit']:.3f}."
            )
    st.page_link("pages/predictions.py", label="Layer by layer: the logit lens", icon=":material/arrow_forward:")


trip()
