"""Tool: let the kid write, and see what it weighed at every character."""

import math
import time

import streamlit as st

from tinyllm.explain import glyph, surprise_colour
from tinyllm.sample import SampleSettings, generate
from ui import in_frame
from ui.charts import believed_and_drawn
from ui.loaders import current_run, model
from ui.text import code, codes, coloured_text, shown, text_box
from ui.widgets import draw

in_frame()  # drawn inside the frame, or not at all

kid, vocab, ckpt = model()

st.title("Playground")
st.markdown(
    """
The kid writes one character at a time: it computes a probability for every character, **draws**
one at random according to those probabilities, appends it, and repeats. The knobs change only the
drawing, never the kid.
"""
)

prompt = text_box(
    "prompt",
    "Prompt",
    "ROMEO:\n",
    key="playground_prompt",
    height=80,
    help="Where the kid starts. Empty: it starts from a newline.",
)
c1, c2, c3 = st.columns(3)
length = c1.slider("Length", 10, 2000, 500, step=10, key="playground_length", help="How many characters to write.")
temperature = c2.slider(
    "Temperature",
    0.1,
    2.0,
    1.0,
    step=0.05,
    key="playground_temperature",
    help="Divides the scores before softmax. Below 1: safer and more repetitive; above 1: bolder, more misspelt.",
)
seed = c3.number_input(
    "Seed", 0, 2**31 - 1, 0, key="playground_seed", help="The same seed and settings write the same text."
)
c4, c5 = st.columns(2)
top_k = c4.slider(
    "Top-k (0 = off)", 0, len(vocab), 0, key="playground_top_k", help="Draw only among the k likeliest characters."
)
top_p = c5.slider(
    "Top-p (1 = off)",
    0.05,
    1.0,
    1.0,
    step=0.05,
    key="playground_top_p",
    help="Draw only among the fewest characters whose probabilities add up to p.",
)

unknown = vocab.unknown(prompt)
if unknown:
    st.warning("The kid has never seen " + codes(unknown) + ": these characters are left out of the prompt.")
    prompt = "".join(c for c in prompt if c not in unknown)

settings = SampleSettings(
    length=length, temperature=temperature, top_k=top_k or None, top_p=None if top_p >= 1.0 else top_p, seed=int(seed)
)

if st.button("Write", type="primary", icon=":material/edit:", key="playground_write"):
    placeholder = st.empty()
    written, text = [], ""
    started = time.perf_counter()
    for n, c in enumerate(generate(kid, vocab, prompt, settings, n_top=8), start=1):
        written.append(dict(char=c.char, prob=c.prob, top=c.top, drawn=c.drawn))
        text += c.char
        if n % 25 == 0:
            placeholder.code(shown(prompt + text, lines=True), language=None)
    seconds = time.perf_counter() - started
    placeholder.empty()
    st.session_state["playground_result"] = dict(
        run=str(current_run()), prompt=prompt, settings=settings, written=written, seconds=seconds
    )

result = st.session_state.get("playground_result")
if result and result["run"] != str(current_run()):
    result = None  # another run wrote it
if result and (result["settings"], result["prompt"]) != (settings, prompt):
    st.info(
        "The prompt or the knobs changed since the last text was written. Press **Write** to see what the "
        "kid writes with them.",
        icon=":material/edit:",
    )
elif result:
    written = result["written"]
    st.caption(
        f"{len(written)} characters in {result['seconds']:.2f} s "
        f"({len(written) / max(result['seconds'], 1e-9):,.0f} characters/s). "
        "Each is coloured by the probability the kid gave it: white = it was sure, red = a long shot. "
        "Hover for the number."
    )
    pick = st.slider("Look at character", 0, len(written) - 1, 0, key="playground_pick") if len(written) > 1 else 0
    if result["prompt"]:
        st.markdown(f"{code(result['prompt'])} then:")
    else:
        start = "a newline" if "\n" in vocab.stoi else "the first character of its vocabulary"
        st.markdown(f"The prompt was empty, so it started from {start}, then:")
    coloured_text(
        [w["char"] for w in written],
        [surprise_colour(-math.log(max(w["prob"], 1e-9))) for w in written],
        [f"p = {w['prob']:.3f}" for w in written],
        selected=pick,
    )
    chosen = written[pick]
    chars = [glyph(c) for c, _ in chosen["top"]]
    believed = [p for _, p in chosen["top"]]
    st.markdown(
        f"At character {pick}, the kid wrote {code(chosen['char'])}: it believed p = {chosen['prob']:.3f}. "
        f"Its {len(chars)} likeliest candidates, as it believed them and as the character was drawn "
        f"(temperature {settings.temperature:g}"
        + (f", top-k {settings.top_k}" if settings.top_k else "")
        + (f", top-p {settings.top_p:g}" if settings.top_p else "")
        + "):"
    )
    draw(believed_and_drawn(chars, believed, chosen["drawn"]), width="stretch")
    rest_believed, rest_drawn = 1 - sum(believed), 1 - sum(chosen["drawn"])
    st.caption(
        f"All other characters together: {rest_believed:.1%} as believed, {rest_drawn:.1%} as drawn. "
        "Move the temperature and write again: below 1 the likeliest take more, above 1 the long shots do."
    )
