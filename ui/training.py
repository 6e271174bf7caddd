"""The training tool: the sidebar form with its Train button, and the shared job.

The job manager is one object per server process (st.cache_resource), so
every visitor sees the same running job and a second start is refused.
"""

import streamlit as st

from tinyllm.errors import TinyLLMError
from tinyllm.jobs import PRESETS, QUICK_TAKES, TrainingJobs
from tinyllm.model import GPTConfig
from tinyllm.runs import new_run_name
from tinyllm.settings import form_fields
from tinyllm.train import TrainConfig
from ui.text import escaped

# The settings the form offers, described on their dataclass fields (tinyllm/settings.py).
FORM_FIELDS = form_fields(GPTConfig, TrainConfig)


@st.cache_resource
def jobs() -> TrainingJobs:
    return TrainingJobs()


def form_caps() -> dict:
    """The form offers no more than this server trains (its limits, tinyllm/jobs.py)."""
    limits = jobs().limits
    return {"steps": limits.max_steps, "block_size": limits.max_context}


def apply_preset():
    caps = form_caps()
    for name, value in PRESETS[st.session_state["train_preset"]].items():
        st.session_state[f"train_{name}"] = min(value, caps.get(name, value))


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
        # Outside the form: choosing a file shows the uploader at once.
        corpus = st.radio("Corpus", ["tinyshakespeare", "my own text file"], key="train_corpus")
        # A form: editing a setting does not rerun the page behind it; Train sends them all.
        with st.form("train_form", border=False, enter_to_submit=False):
            settings = {}
            caps = form_caps()
            for setting_field in FORM_FIELDS:
                low, high, step = setting_field.metadata["form"]
                high = max(low, min(high, caps.get(setting_field.name, high)))
                settings[setting_field.name] = st.number_input(
                    setting_field.metadata["label"],
                    low,
                    high,
                    step=step,
                    key=f"train_{setting_field.name}",
                    help=setting_field.metadata["help"],
                    format="%.4f" if setting_field.name == "lr" else None,
                )
            upload = None
            if corpus == "my own text file":
                upload = st.file_uploader("A UTF-8 .txt file", type=["txt"], key="train_upload")
            name = st.text_input("Run name", key="train_name", help="Letters, digits, - and _.")
            if st.form_submit_button("Train", type="primary", key="train_start", icon=":material/play_arrow:"):
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
        st.error(escaped(e))
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
