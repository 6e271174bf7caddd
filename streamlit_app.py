"""peek: the frame of the app. Page config, the sidebar every page shares,
and the navigation over the chapters in pages/. Run with:

    streamlit run streamlit_app.py
"""

import streamlit as st

from tinyllm.runs import list_runs
from ui.training import sidebar_form

st.set_page_config(page_title="peek: inside a tiny GPT", page_icon=":material/visibility:",
                   layout="wide")

CHAPTERS = [
    st.Page("pages/meet.py", title="1. Meet the kid", icon=":material/waving_hand:", default=True),
    st.Page("pages/vocab.py", title="2. Vocabulary", icon=":material/abc:"),
    st.Page("pages/embeddings.py", title="3. Embeddings", icon=":material/scatter_plot:"),
    st.Page("pages/positions.py", title="4. Positions", icon=":material/format_list_numbered:"),
    st.Page("pages/attention.py", title="5. Attention", icon=":material/visibility:"),
    st.Page("pages/predictions.py", title="6. Predictions", icon=":material/psychology:"),
    st.Page("pages/training.py", title="7. Training", icon=":material/show_chart:"),
    st.Page("pages/behind.py", title="8. Behind the scenes", icon=":material/build:"),
]
TOOLS = [
    st.Page("pages/train_live.py", title="Train your own kid", icon=":material/model_training:"),
    st.Page("pages/playground.py", title="Playground", icon=":material/edit_note:"),
]

# --- the sidebar every page shares: which run the chapters show -------------
with st.sidebar:
    runs = list_runs()
    names = [run.name for run in runs]
    if st.session_state.get("run") not in names:
        st.session_state["run"] = "kid"
    st.selectbox("Run to look inside", names, key="run",
                 help="The committed kid, or a run you trained (it appears here once exported).")
    run = runs[names.index(st.session_state["run"])]
    if run.exported:
        st.caption(f"{run.params:,} parameters · {run.steps:,} steps · validation loss {run.val_loss:.3f}")
    else:
        st.caption("Not exported yet: its chapters will explain how to export it.")
    sidebar_form()

st.navigation({"The tour": CHAPTERS, "Tools": TOOLS}).run()
