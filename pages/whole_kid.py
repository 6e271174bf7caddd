"""Chapter 6: the whole kid. One character's trip through every stage, with
its real numbers: at each stage what was there before, what the stage
changed and what came out, on one colour scale; and why the kid predicted
what it did rather than what came next."""

import html
from collections import Counter

import numpy as np
import streamlit as st

from tinyllm.explain import count, glyph
from tinyllm.flow import (
    LOOKS,
    colour_limit,
    contrast,
    contrast_pair,
    describe_stage,
    head_looks,
    neuron_votes,
    stage_code,
    stages,
    stream_overview,
    strongest_neurons,
)
from ui import in_frame
from ui.charts import candidates_bar
from ui.flow_charts import (
    char_label,
    context_html,
    contrast_chart,
    forward_diagram,
    stream_overview_chart,
    stream_strips,
    top_bars,
    votes_chart,
)
from ui.knockout_panel import knockout_panel
from ui.live import choose_plain_text
from ui.loaders import chapter, computed, model
from ui.text import code, codes
from ui.widgets import draw, index_slider

in_frame()  # drawn inside the frame, or not at all

card = chapter("model_card")
samples = chapter("predictions")["prompts"]
neurons = chapter("flow")  # the neurons' validation contexts
cfg = card["config"]
C, T, L, H = cfg["n_embd"], cfg["block_size"], cfg["n_layer"], cfg["n_head"]
kid, vocab, _ = model()
STAGES = stages(L)
LABELS = [s["label"] for s in STAGES]
VOTES = 5  # characters shown that a neuron pushes up, and down

st.title("The whole kid")
st.markdown(
    f"""
The chapters so far took the kid apart. Here it works as one: a text goes in, and at every position
a vector of **{C} numbers**, the *residual stream*, is passed up through {count(L, "block")}. Each block
**adds** to it twice: once what attention gathered from earlier positions, once what its
feed-forward layer computed in place. At the top, the stream becomes one score per character.
Pick a stage (click its row in the overview, or use the slider) to see the stream there: what it was
before, what the stage changed, and what came out.
"""
)

text, choice = choose_plain_text("whole", samples, T, "ROMEO:\nBut soft, what light", address=True)
# the character after the passage, where it is known
next_char = vocab.chars[samples[choice]["targets"][-1]] if choice is not None else None
flow = computed("flow", text)
text = flow["text"]


@st.fragment
def trip():
    """Everything that follows one position: a fragment, so that moving the
    position does not rerun the page; the stage and the neurons are
    fragments inside it, so that each redraws alone."""
    pos = index_slider(
        "Position", len(text), "whole_pos", default=12, address="pos", help="Which character's vector to follow."
    )
    before = code(text[max(0, pos - 12) : pos])
    where = f"after {before}" if pos else "the first character: it can look at nothing else"
    st.markdown(f"Following position **{pos}**, the character {code(text[pos])} ({where}).")
    stage_view(pos)
    neuron_view(pos)
    knockout_panel(text, pos, cfg)
    show_contrast(pos)


def picked():
    """A click on the overview's row of a stage selects that stage."""
    chosen = st.session_state["whole_overview"].selection.get("pick") or []
    label = chosen[0].get("stage") if chosen and isinstance(chosen[0], dict) else None
    if label in LABELS:
        st.session_state["whole_stage"] = label


@st.fragment
def stage_view(pos):
    if st.session_state.get("whole_stage") not in LABELS:
        st.session_state["whole_stage"] = LABELS[0]  # the start: the embedding
    label = st.session_state["whole_stage"]
    st.markdown(
        f"**The stream at position {pos}, stage by stage**: its length (the line) after each stage, and "
        "the length of what each block's attention and feed-forward layer added (the bars). A LayerNorm or "
        "the heads only read the stream, so the line stays level there. Click a row to see that stage."
    )
    draw(
        stream_overview_chart(stream_overview(flow, pos), label),
        width="stretch",
        key="whole_overview",
        on_select=picked,
        selection_mode="pick",
    )
    label = st.select_slider("Stage", LABELS, key="whole_stage", help="Step through the forward pass, bottom to top.")
    stage = STAGES[LABELS.index(label)]
    picture, numbers = st.columns([2, 3])
    with picture:
        st.image(forward_diagram(cfg, stage), width="stretch")  # an SVG
    with numbers:
        show_stage(stage, describe_stage(flow, stage, pos), pos)
        source, line, path = stage_code(stage["key"])
        marked = source.splitlines()
        marked[line] += "  # ◀ this stage"
        st.markdown(f"**The code that ran** (`{path}`)")
        st.code("\n".join(marked), language="python", wrap_lines=True)
        if stage["key"] == "probs":
            st.caption(
                "The model's forward pass ends at the logits. The softmax is applied where they are used: "
                "here, when the kid writes (with the temperature, top-k and top-p of the Playground; "
                "this chapter's probabilities are the plain softmax, temperature 1), and in training "
                "inside `F.cross_entropy`, the loss."
            )


def length(value: float) -> str:
    """A vector's length: two decimals, or two significant digits when it is smaller than 0.1."""
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def signed(value: float) -> str:
    """+0.002, or +0.000 for a mean that is zero to three decimals (never -0.000)."""
    return f"{round(value, 3) + 0.0:+.3f}"


def strips_of(view, limit):
    draw(stream_strips([(s["name"], s["vector"]) for s in view["strips"]], limit), width="stretch")


def show_stage(stage, view, pos):
    kind, key = stage["kind"], stage["key"]
    st.markdown(f"**{stage['label']}**")
    if key == "logits":
        logits = flow["logits"][pos]
        st.markdown(
            f"The stream, through the final LayerNorm, becomes {logits.size} scores (logits), one per "
            f"character of the vocabulary, by one linear layer (lm_head). The highest {min(10, logits.size)}:"
        )
        draw(top_bars(logits, [char_label(c) for c in vocab.chars], "logit", top=10), width="stretch")
        return
    if key == "probs":
        probs = flow["probs"][pos]
        top = probs.argsort()[::-1][:8]
        st.markdown(f"Softmax turns the logits into probabilities that sum to 1. The likeliest {top.size}:")
        draw(candidates_bar([(char_label(vocab.chars[i]), float(probs[i])) for i in top]), width="stretch")
        return
    limit = colour_limit(flow, pos)
    strips_of(view, limit)
    s = view["strips"]
    if kind == "embed":
        st.markdown(
            f"The character {code(text[pos])}'s vector (length {length(s[0]['norm'])}) plus position {pos}'s "
            f"vector (length {length(s[1]['norm'])}): their sum, of length {length(s[2]['norm'])}, is where the "
            "stream starts. Every later stage adds to it."
        )
    elif kind == "norm":
        reader = {"ln1": "the heads read", "ln2": "the feed-forward layer reads", "ln_f": "lm_head reads"}[key]
        read, normal, out = s
        eps = flow["norms"]["ln_f" if stage["block"] is None else f"{stage['block']}.{key}"][2]
        st.markdown(
            f"LayerNorm read the stream, with mean {signed(read['mean'])} and spread {read['spread']:.3f}; "
            f"normalised it, to mean {signed(normal['mean'])} and spread {normal['spread']:.3f}; then "
            f"multiplied each dimension by its learned gain and added its learned bias: mean {signed(out['mean'])}, "
            f"spread {out['spread']:.3f}. That last vector is what {reader}; the stream itself goes on unchanged."
            + (
                f" (The normalised spread is not quite 1: LayerNorm adds a small ε = {eps:g} to the variance "
                "before it divides, which shows when the spread is this small.)"
                if abs(normal["spread"] - 1) >= 0.0005
                else ""
            )
        )
    elif kind == "add":
        what = "Attention" if key == "attn" else "The feed-forward layer"
        st.markdown(
            f"{what} **adds** a vector of length {length(view['added'])} to the residual stream, whose "
            f"length was {length(view['stream_before'])}: {view['share']:.0%} of the stream's size. "
            f"After the addition (the {'first' if key == 'attn' else 'second'} + of block {stage['block']} "
            f"in the diagram) the stream's length is {length(view['stream_after'])}."
        )
        if key == "ffwd":
            strongest_with_votes(stage["block"], pos)
    elif kind == "heads":
        hs = C // H
        st.markdown(
            f"The {H} heads' outputs side by side, {hs} numbers each: dimensions 0–{hs - 1} are head 0, and so on. "
            f"The projection mixes them back into {C} numbers."
            if H > 1
            else f"The one head's output, {hs} numbers. The projection mixes it into the stream's {C} numbers."
        )
        show_looks(stage["block"], pos)
    elif kind == "neurons":
        st.markdown(
            f"{view['fired']} of the {view['of']} neurons fired here (ReLU > 0); the others are 0. "
            f"(The strip is {view['of']} wide: the neurons, not the stream.)"
        )
        strongest_with_votes(stage["block"], pos)


def show_looks(block, pos):
    """Where each head of `block` looked from `pos`, drawn on the text, with its habit."""
    labels = chapter("attention")["labels"][block]
    st.markdown(
        f"**Where each head looked** from position {pos}: its largest attention weights (up to {LOOKS}), marked on the "
        f"text ({code(text[pos])} underlined is the position itself; weights under 0.005 left out). Each head's "
        "habit is measured on validation text (chapter Attention)."
    )
    rows = []
    for h, looked in enumerate(head_looks(flow, block, pos)):
        label = labels[h]
        habit = f"{html.escape(label['label'])} ({label['score']:.0%}{'' if label['clear'] else ', weak'})"
        rows.append(
            f"<div style='margin-bottom:0.5rem'><b>L{block}H{h}</b> "
            f"<span style='color:#555'>habit: {habit}</span><br>{looks_html(looked, pos)}</div>"
        )
    st.html("<div style='font-size:0.95rem'>" + "".join(rows) + "</div>")


def looks_html(looked, pos, before=16):
    """The text up to pos, the looked-at characters shaded by weight, then the weights in words."""
    looked = [(j, w) for j, w in looked if w >= 0.005]  # what would print as 0.00
    start = max(0, min([j - 2 for j, _ in looked] + [pos - before]))
    weight = dict(looked)
    cells = []
    for i in range(start, pos + 1):
        ch = html.escape(glyph(text[i]))
        style = ""
        if i in weight:
            ink = "white" if weight[i] > 0.4 else "#1d1d1f"
            style += f"background:rgba(31,78,121,{0.15 + 0.85 * weight[i]:.2f});color:{ink};"
        if i == pos:
            style += "text-decoration:underline;text-decoration-thickness:2px;"
        cells.append(f"<span style='{style}'>{ch}</span>")
    words = ", ".join(
        f"{html.escape(glyph(text[j]))} at {j} ({'itself' if j == pos else f'{pos - j} back'}) {w:.2f}"
        for j, w in looked
    )
    return (
        "<span style='font-family:monospace;font-size:1rem;overflow-wrap:anywhere'>"
        + ("…" if start > 0 else "")
        + "".join(cells)
        + f"</span><br><small>{words}</small>"
    )


def vote_words(votes, top=VOTES) -> tuple:
    """The characters a neuron pushes up most, and down most (never the same one in both)."""
    top = min(top, len(votes) // 2)
    order = np.argsort(-votes, kind="stable")
    return [vocab.chars[i] for i in order[:top]], [vocab.chars[i] for i in order[::-1][:top]]


def strongest_with_votes(block, pos, top=5):
    """The neurons of `block` that fired most here, each with what it votes for."""
    strongest = strongest_neurons(flow, block, pos, top)
    if not strongest:
        st.markdown(f"No neuron of block {block} fired at position {pos}: this layer adds only its bias here.")
        return
    lines = []
    for n, activation in strongest:
        up, down = vote_words(neuron_votes(kid, block, n))
        lines.append(f"- **#{n}** ({activation:.2f}): pushes up {codes(up)}; down {codes(down)}")
    st.markdown(
        f"The {count(len(strongest), 'neuron')} of block {block} that fired most here, and what each votes for "
        "(read below, *The feed-forward neurons*):\n" + "\n".join(lines)
    )


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
        strongest = [int(n) for n in hidden.argsort()[::-1][:12]]
        n = st.selectbox(
            "Neuron", strongest, key=f"whole_neuron_{block}", format_func=lambda n: f"#{n} (here {hidden[n]:.2f})"
        )
        show_votes(block, n)
        show_contexts(block, n)


def show_votes(block, n):
    votes = neuron_votes(kid, block, n)
    up, down = vote_words(votes)
    st.markdown(
        f"**What neuron #{n} votes for.** When it fires, it adds its output direction (its column of the "
        f"feed-forward layer's second Linear, {C} numbers) to the stream, times its activation. Read through "
        "the final LayerNorm's gain and lm_head, that direction pushes up "
        f"{codes(up)} and pushes down {codes(down)} most."
    )
    draw(votes_chart(votes, vocab.chars, min(VOTES, len(votes) // 2)), width="stretch")
    st.caption(
        "Read that way it is linearised: the final LayerNorm also centres the stream and divides it by its "
        "spread, which depend on everything else in the stream, and layers above may read the direction too. "
        "So these are the neuron's direct votes per unit of activation, before that division."
    )


def show_contexts(block, n):
    if not neurons["neurons"]:
        st.info(
            "This run's export has no validation contexts for its neurons (its validation text was "
            "too short, or it was trained before they were collected)."
        )
        return
    contexts = neurons["neurons"][block][n]
    slice_text, window = neurons["slice"], neurons["window"]
    st.markdown(
        f"**Where neuron #{n} fires most** in the first {len(slice_text):,} characters "
        "of the validation text (the marked character; grey: what the kid had read before it):"
    )
    st.html(
        "<div style='font-family:monospace;font-size:1rem;line-height:1.9;overflow-wrap:anywhere'>"
        + "<br>".join(f"{context_html(slice_text, o, window)} &nbsp;<small>{a:.2f}</small>" for o, a in contexts)
        + "</div>"
    )
    firing = Counter(slice_text[o] for o, _ in contexts)
    char, times = firing.most_common(1)[0]
    if times > 1:
        words = f"In {times} of these {len(contexts)} contexts it fires on {code(char)}."
    else:
        words = f"Its {len(contexts)} strongest contexts fire on {len(firing)} different characters."
    starts = sum(o % window == 0 for o, _ in contexts)
    if starts:
        words += (
            f" {count(starts, 'context')} {'has' if starts == 1 else 'have'} no grey text: "
            f"{'it is' if starts == 1 else 'they are'} the first character of a window of {window}, "
            "where the kid had read nothing before (position 0 has no past)."
        )
    st.caption(words)


@st.fragment
def show_contrast(pos):
    st.subheader("Why this prediction")
    known = text[pos + 1] if pos + 1 < len(text) else next_char
    a, b, why = contrast_pair(flow, pos, vocab.stoi[known] if known is not None else None)
    if a == b:
        st.info("This vocabulary has one character: there is nothing to choose between.")
        return
    c = contrast(kid, flow, pos, a, b)
    ca, cb = code(glyph(vocab.chars[a])), code(glyph(vocab.chars[b]))
    pa, pb = c["probs"]
    if why == "next":
        intro = f"The kid's top guess after position {pos} is {ca} ({pa:.1%}); what came next is {cb} ({pb:.1%})."
    elif known is not None:
        intro = (
            f"The kid's top guess after position {pos}, {ca} ({pa:.1%}), is what came next; here it is "
            f"compared with the runner-up, {cb} ({pb:.1%})."
        )
    else:
        intro = (
            f"What comes after position {pos} is not known (the end of your text); the kid's top guess, "
            f"{ca} ({pa:.1%}), is compared with the runner-up, {cb} ({pb:.1%})."
        )
    st.markdown(
        intro + f" Why {ca} over {cb}? The final logit of a character is a sum: every part that was added to "
        f"the residual stream pushes logit({ca}) − logit({cb}) up (for {ca}) or down (for {cb})."
    )
    opened = st.toggle("Open each group into its parts (heads, bias, the two embeddings)", key="whole_parts")
    rows = (
        [(name, push) for g in c["groups"] for name, push in g["parts"]]
        if opened
        else [(g["group"], g["push"]) for g in c["groups"]]
    )
    limit = max(abs(p) for _, p in c["pushes"] + [(g["group"], g["push"]) for g in c["groups"]]) * 1.05 or 1.0
    chart, probs = st.columns([4, 1])
    with chart:
        draw(contrast_chart(rows, limit, glyph(vocab.chars[a]), glyph(vocab.chars[b])), width="stretch")
    with probs:
        st.metric(f"p({glyph(vocab.chars[a])})", f"{pa:.1%}")
        st.metric(f"p({glyph(vocab.chars[b])})", f"{pb:.1%}")
    st.caption(
        f"The pushes sum to {c['total'] - c['constant']:.3f}; with the bias terms "
        f"((W_a − W_b)·β + b_a − b_b = {c['constant']:.3f}) that is {c['total']:.3f}, and the kid's logit "
        f"difference is {c['difference']:.3f}."
    )
    st.markdown(
        f"""
**How this is counted.** The final LayerNorm divides the stream by its spread, which depends on every part at
once. Holding that spread at its value here ({c["spread"]:.3f}), the standard linearisation, each part's push is
exact and the pushes add up. Only **direct** effects are counted: what each part added, read straight through
the final LayerNorm and lm_head. A head whose output changes what a later layer does is credited only with
its own direct push; the change it caused shows up in that later layer's bar.
"""
    )
    token_words(c)
    st.page_link("pages/predictions.py", label="Layer by layer: the logit lens", icon=":material/arrow_forward:")


def token_words(c):
    """The token embedding's direct push, and the knock-out's evidence that the
    character matters all the same (it is read by the layers above)."""
    token = dict(c["pushes"])["token embedding"]
    share = abs(token) / max(sum(abs(p) for _, p in c["pushes"]), 1e-12)
    table = chapter("knockout")
    before, off = table["base_loss"], table["ffwd"][0]
    if before is None or off is None:  # a validation text too short to score
        measured = ""
    else:
        on = f"the loss on the first {table['slice_chars']:,} characters of validation text"
        if round(off, 3) == round(before, 3):
            measured = f"Switched off alone, it leaves {on} at {before:.3f} (the knock-out's table). "
        else:
            verb = "raises" if off > before else "lowers"
            measured = f"Switched off alone, it {verb} {on} from {before:.3f} to {off:.3f} (the knock-out's table). "
    size = "small" if share < 0.1 else "sizeable"
    still = "That does not mean the character does not matter. " if share < 0.1 else ""
    st.markdown(
        f"""
**The character itself.** The token embedding's own direct push is {token:+.3f}, {size}: {share:.1%} of all the
pushes' sizes. {still}Its vector also reaches the prediction through the layers that read it: block 0's
feed-forward layer reads this position's stream in place (the character's vector plus the position's, and what
block 0's attention added). {measured}Switch it off in the knock-out panel above to see what happens to the
guess here.
"""
    )


trip()
