"""peek: the frame of the app. Page config, the sidebar every page shares,
and the navigation over the chapters in pages/. Run with:

    streamlit run streamlit_app.py
"""

import streamlit as st
import torch

from tinyllm.runfolder import list_runs
from ui import frame_runs_the_page
from ui.loaders import kid_dir, sibling_differences
from ui.text import escaped
from ui.train_form import kept_note, sidebar_form, visitor
from ui.widgets import MOVED

# Every computation a page asks for is small (one text through the kid, one
# character written); one thread does it about twice as fast as two that
# wait for each other, and leaves the other cores to a training run
# (tinyllm/jobs.py gives that half the cores): bench/playground_under_load.py.
torch.set_num_threads(1)

st.set_page_config(page_title="peek: inside a tiny GPT", page_icon=":material/visibility:", layout="wide")

CHAPTERS = [
    st.Page("pages/meet.py", title="1. Meet the kid", icon=":material/waving_hand:", default=True),
    st.Page("pages/vocab.py", title="2. Vocabulary", icon=":material/abc:"),
    st.Page("pages/embeddings.py", title="3. Embeddings", icon=":material/scatter_plot:"),
    st.Page("pages/positions.py", title="4. Positions", icon=":material/format_list_numbered:"),
    st.Page("pages/attention.py", title="5. Attention", icon=":material/visibility:"),
    st.Page("pages/whole_kid.py", title="6. The whole kid", icon=":material/account_tree:"),
    st.Page("pages/predictions.py", title="7. Predictions", icon=":material/psychology:"),
    st.Page("pages/training.py", title="8. Training", icon=":material/show_chart:"),
    st.Page("pages/behind.py", title="9. Behind the scenes", icon=":material/build:"),
]
TOOLS = [
    st.Page("pages/write_head.py", title="Write attention yourself", icon=":material/code:"),
    st.Page("pages/train_live.py", title="Train your own kid", icon=":material/model_training:"),
    st.Page("pages/playground.py", title="Playground", icon=":material/edit_note:"),
    st.Page("pages/compare.py", title="Compare two runs", icon=":material/compare_arrows:"),
]

# Register the pages first, so that links in the shared sidebar can point at them.
navigation = st.navigation({"The tour": CHAPTERS, "Tools": TOOLS})

# --- the sidebar every page shares: which run the chapters show -------------


def run_label(name: str) -> str:
    """A run in the selector, marked when there is nothing inside it to show yet."""
    info = by_name[name]
    if info.exported or info.checkpoint or info.problem:
        return name
    return f"{name} (training now)" if info.state == "running" else f"{name} (failed: nothing to show)"


visitor()  # this browser's secret, which makes the runs it starts its own
with st.sidebar:
    runs = list_runs(kid_dir())
    by_name = {run.name: run for run in runs}
    # the choice survives a reload in the address (?run=...)
    if "run" not in st.session_state and st.query_params.get("run") in by_name:
        st.session_state["run"] = st.query_params["run"]
    if st.session_state.get("run") not in by_name:
        st.session_state["run"] = "kid"
    st.selectbox(
        "Run to look inside",
        list(by_name),
        key="run",
        format_func=run_label,
        help="The committed kid, its siblings (each differs from it in one setting), or a run you trained "
        "(it appears here once exported).",
    )
    if st.session_state["run"] == "kid":
        st.query_params.pop("run", None)
    else:
        st.query_params["run"] = st.session_state["run"]
    run = by_name[st.session_state["run"]]
    if run.kind == "sibling" and run.exported:
        st.caption(f"The kid's sibling: {escaped(sibling_differences(run.name))}.")
    if run.exported:
        st.caption(f"{run.params:,} parameters · {run.steps:,} steps · validation loss {run.val_loss:.3f}")
        kept = kept_note(run.best_step, run.steps)
        if kept:
            st.caption(kept[0].upper() + kept[1:] + ".")
    elif run.problem:
        st.caption(f"This run cannot be shown: {escaped(run.problem)}.")
    elif run.state == "running":
        st.caption("Training now: its chapters appear when it is done.")
    elif not run.checkpoint:
        st.caption(
            "This run ended before its first checkpoint: there is nothing inside it to show. "
            "*Train your own kid* says what happened."
        )
    elif run.state in ("stopped", "failed"):
        st.caption(
            "It stopped before it was finished: resume it in *Train your own kid*, or open a "
            "chapter to write its pages from what it has."
        )
    else:
        st.caption("Its chapters are not written yet: open a chapter to write them.")
    sidebar_form(run.name, run.path if run.exported else None)

frame_runs_the_page()  # the pages draw only when the frame runs them (ui.in_frame)
navigation.run()
st.session_state.pop(MOVED, None)  # a widget's move is news for one run only (ui.widgets.moved_by_reader)

# --- every chapter ends with the way on: the previous and the next chapter ---
here = next((i for i, page in enumerate(CHAPTERS) if page.url_path == navigation.url_path), None)
if here is not None:
    st.divider()
    back, forward = st.columns(2)
    if here > 0:
        back.page_link(CHAPTERS[here - 1], label=f"Back: {CHAPTERS[here - 1].title}", icon=":material/arrow_back:")
    if here < len(CHAPTERS) - 1:
        forward.page_link(
            CHAPTERS[here + 1], label=f"Next: {CHAPTERS[here + 1].title}", icon=":material/arrow_forward:"
        )
