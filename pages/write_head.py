"""Tool: write attention yourself. The Head exercise, checked against the kid's own."""

import streamlit as st

from tinyllm.errors import TinyLLMError
from tinyllm.exercise import DEFAULT_PATH, TEMPLATE
from tinyllm.runfolder import RunFolder
from tinyllm.sandbox import check_in_sandbox
from ui import in_frame
from ui.head_report import code_policy, draw_report
from ui.loaders import chapter, current_run
from ui.train_form import train_with_head

in_frame()  # drawn inside the frame, or not at all

HINTS = [
    "**Step 1.** k, q and v are three linear maps of the same x: `k = self.key(x)`, `q = self.query(x)`, "
    "`v = self.value(x)`. Each is (B, T, head_size).",
    "**Step 2.** Every query meets every key: `q @ k.transpose(-2, -1)` is (B, T, T), row i for the query at "
    "position i. Divide by `math.sqrt(k.shape[-1])`, or the scores grow with head_size and softmax gets too sure.",
    "**Step 3.** Hide the future: `scores.masked_fill(self.tril[:T, :T] == 0, float('-inf'))`. Not 0: "
    "exp(0) = 1 would still give the future weight; exp(-inf) = 0.",
    "**Step 4.** `F.softmax(masked, dim=-1)`: along the last dimension, the keys, so each row (one query's "
    "weights) sums to 1.",
    "**Step 5.** The output is the weighted sum of the values: `weights @ v`, (B, T, T) @ (B, T, hs) = (B, T, hs).",
]

card = chapter("model_card")
cfg = card["config"]
checkpoint = RunFolder(current_run()).model
allowed, reason = code_policy()

st.title("Write attention yourself")
st.markdown(
    f"""
Everything in the kid is given except one piece, the idea itself: **attention**. Here you write it.
Below is the kid's `Head` with its constructor filled in and `forward` left to you. **Check** loads the
kid's real weights into your Head, runs it and the kid's on the same validation text, and compares
them step by step: q, k and v, the scores, the mask, the softmax, the weighted sum; then again on a
shorter text. Then it puts your Head into all {cfg["n_layer"] * cfg["n_head"]} of the kid's heads and
compares the loss. The first step that differs is named, with the numbers.
"""
)


def hints():
    shown = st.session_state.get("head_hints", 0)
    for hint in HINTS[:shown]:
        st.markdown(hint)
    if shown < len(HINTS) and st.button(f"Show a hint ({shown + 1} of {len(HINTS)})", key="head_hint"):
        st.session_state["head_hints"] = shown + 1
        st.rerun()


if not allowed:
    st.info(
        f"{reason} You can still do the exercise on your own machine: download the template below, fill in "
        "`forward`, and check it against the kid with peek's command line (its two commands are in "
        "*Behind the scenes*, under *Do it yourself*).",
        icon=":material/lock:",
    )
    st.page_link("pages/behind.py", label="Do it yourself: the commands", icon=":material/build:")
    st.download_button("Download the template", TEMPLATE, file_name=DEFAULT_PATH, icon=":material/download:")
    st.code(TEMPLATE, language="python", line_numbers=True, wrap_lines=True)
    hints()
    st.stop()

st.caption(reason)
c1, c2 = st.columns(2)
layer = c1.selectbox(
    "The kid's layer",
    range(cfg["n_layer"]),
    key="head_layer",
    help="Whose weights your Head gets: any head of the kid computes attention the same way.",
)
head = c2.selectbox("Head", range(cfg["n_head"]), key="head_head")


def start_again():
    st.session_state["head_code"] = TEMPLATE
    st.session_state.pop("head_report", None)


# The editor is a text area in a monospace font, with long lines scrolling rather than wrapping.
st.html("""<style>.st-key-head_code textarea { font-family: "Source Code Pro", monospace; font-size: 13px;
  line-height: 1.45; white-space: pre; overflow-wrap: normal; overflow-x: auto; tab-size: 4; }</style>""")
editor, results = st.columns([3, 2])
with editor:
    code = st.text_area(
        "Your Head (Python)",
        TEMPLATE,
        height=760,
        key="head_code",
        help="Indent with spaces: Tab moves to the next field.",
    )
    b1, b2, b3 = st.columns(3)
    check = b1.button("Check", type="primary", icon=":material/fact_check:", key="head_check")
    b2.button("Start again", on_click=start_again, key="head_reset", icon=":material/restart_alt:")
    b3.download_button("Download", code, file_name=DEFAULT_PATH, key="head_download", icon=":material/download:")

asked = dict(code=code, layer=layer, head=head, run=str(checkpoint))
with results:
    if check:
        with st.spinner("Checking your Head in a separate process..."):
            try:
                report = check_in_sandbox(code, checkpoint, layer, head)
            except TinyLLMError as e:
                st.error(str(e))
                st.stop()
        st.session_state["head_report"] = dict(asked=asked, report=report)
    last = st.session_state.get("head_report")
    if last and last["asked"] == asked:
        draw_report(last["report"])
    elif last:
        st.info("You changed the code (or the head) since the last check: press **Check** again.")
    else:
        st.info("Fill in the five steps of `forward`, then press **Check**.", icon=":material/edit:")
    passed = bool(last and last["asked"] == asked and last["report"]["ok"])
    if passed:
        train_with_head(code)
    st.markdown("**Stuck?** Hints open one at a time.")
    hints()
