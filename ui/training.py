"""The training tool: the sidebar form with its Train button, and the shared job.

The job manager is one object per server process (st.cache_resource), so
every visitor sees the same running job and a second start is refused.
"""

import streamlit as st

from tinyllm.errors import TinyLLMError
from tinyllm.jobs import PRESETS, QUICK_TAKES, TrainingJobs
from tinyllm.runs import new_run_name

FIELDS = {  # name: (label, one-line explanation, min, max, step)
    "steps": ("Steps", "How many times the kid sees a batch and adjusts its weights.", 50, 20000, 50),
    "batch_size": ("Batch size", "Snippets of text per step: more is smoother, slower.", 1, 128, 1),
    "block_size": ("Context (block size)", "How many characters the kid can read at once.", 8, 256, 8),
    "n_embd": ("Width (n_embd)", "Numbers per vector inside the model (divisible by heads).", 16, 256, 16),
    "n_head": ("Heads per layer", "Attention heads; each looks for its own pattern.", 1, 8, 1),
    "n_layer": ("Layers", "Transformer blocks stacked on top of each other.", 1, 8, 1),
    "dropout": ("Dropout", "Fraction of activations zeroed while training, against memorising.", 0.0, 0.5, 0.05),
    "lr": ("Learning rate", "Size of each adjustment. Too high diverges, too low crawls.", 1e-4, 1e-2, 1e-4),
    "seed": ("Seed", "The same seed repeats the same run.", 0, 2**31 - 1, 1),
}


@st.cache_resource
def jobs() -> TrainingJobs:
    return TrainingJobs()


def apply_preset():
    for name, value in PRESETS[st.session_state["train_preset"]].items():
        st.session_state[f"train_{name}"] = value


def sidebar_form():
    """The 'Train a new kid' form. Lives in the frame, so it keeps its values on every page."""
    job = jobs()
    if "train_preset" not in st.session_state:
        st.session_state["train_preset"] = "quick"
        apply_preset()
        st.session_state["train_name"] = new_run_name()
    with st.sidebar.expander("Train a new kid", icon=":material/model_training:", expanded=job.running()):
        if job.running():
            progress = job.status().get("progress")
            if progress:  # as of this page's last run; the training page follows it live
                st.progress(
                    progress["step"] / progress["steps"],
                    text=f"'{job.name}': step {progress['step']:,} of {progress['steps']:,}",
                )
            else:
                st.caption(f"'{job.name}' is starting...")
            st.page_link("app_pages/train_live.py", label="Watch it learn", icon=":material/monitoring:")
            if st.button("Stop", key="train_stop_sidebar", icon=":material/stop:"):
                job.stop()
                st.toast("Stopping: the run saves a checkpoint you can resume.")
            return
        st.radio(
            "Preset",
            list(PRESETS),
            key="train_preset",
            on_change=apply_preset,
            horizontal=True,
            help=f"quick: {QUICK_TAKES} on a small server. The kid's recipe: what trained the kid.",
        )
        settings = {}
        for name, (label, help_text, low, high, step) in FIELDS.items():
            settings[name] = st.number_input(
                label,
                low,
                high,
                step=step,
                key=f"train_{name}",
                help=help_text,
                format="%.4f" if name == "lr" else None,
            )
        corpus = st.radio("Corpus", ["tinyshakespeare", "my own text file"], key="train_corpus")
        upload = None
        if corpus == "my own text file":
            upload = st.file_uploader("A UTF-8 .txt file", type=["txt"], key="train_upload")
        name = st.text_input("Run name", key="train_name", help="Letters, digits, - and _.")
        if st.button("Train", type="primary", key="train_start", icon=":material/play_arrow:"):
            start(name, settings, upload, corpus)


def start(name, settings, upload, corpus):
    if corpus == "my own text file" and upload is None:
        st.error("Choose a text file first.")
        return
    try:
        if upload is not None:
            jobs().start(name, settings, upload.getvalue(), upload.name)
        else:
            jobs().start(name, settings)
    except TinyLLMError as e:
        st.error(str(e))
        return
    watch(name)


def watch(name: str):
    """After this visitor started run `name`: remember it as theirs (they may
    delete it) and show it training."""
    st.session_state.setdefault("my_runs", set()).add(name)
    st.session_state["train_watching"] = name
    st.switch_page("app_pages/train_live.py")


def my_runs() -> set:
    """The runs this visitor started in this browser session."""
    return st.session_state.get("my_runs", set())
