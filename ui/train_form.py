"""The training tool: the sidebar form with its Train button, the shared job,
and what the app tells a visitor about a run (in words, never a command).

The job manager is one object per server process (tinyllm.jobs.shared_jobs,
not a Streamlit cache, which any client can clear), and whether a run trains
is read from its folder's lock: every visitor sees the same running job and a
second start is refused.
"""

import re
import secrets
from pathlib import Path

import streamlit as st

from tinyllm.compare import number, settings_of
from tinyllm.data import DOWNLOAD_FAILED, TINYSHAKESPEARE_MD5, DownloadError, load_corpus
from tinyllm.errors import TinyLLMError
from tinyllm.export import read_chapter
from tinyllm.jobs import PRESETS, QUICK_TAKES, TrainingJobs, shared_jobs
from tinyllm.model import GPTConfig
from tinyllm.runfolder import RUN_NAME, RunFolder, new_run_name, reserved_names, runs_dir
from tinyllm.settings import form_fields
from tinyllm.train import TrainConfig
from ui.text import escaped

# The settings the form offers, with their labels and ranges (tinyllm/settings.py).
FORM_FIELDS = form_fields(GPTConfig, TrainConfig)
CORPORA = ["tinyshakespeare", "my own text file"]
NO_DOWNLOAD = (
    "tinyshakespeare could not be downloaded on this server right now. "
    "Upload a text file of your own (any UTF-8 .txt) to train on it instead."
)


def jobs() -> TrainingJobs:
    return shared_jobs()


def form_caps() -> dict:
    """The form offers no more than this server trains (its limits, tinyllm/jobs.py)."""
    limits = jobs().limits
    return {"steps": limits.max_steps, "block_size": limits.max_context}


def form_range(setting_field) -> tuple:
    """(low, high) the form accepts for a setting: its own range within this server's limits."""
    low, high, _ = setting_field.form
    return low, max(low, min(high, form_caps().get(setting_field.name, high)))


def apply_preset():
    st.session_state.pop("train_prefilled", None)  # the form no longer holds a run's settings
    caps = form_caps()
    for name, value in PRESETS[st.session_state["train_preset"]].items():
        st.session_state[f"train_{name}"] = min(value, caps.get(name, value))


# --- the sidebar ------------------------------------------------------------


def sidebar_form(run_name: str | None = None, run_dir: Path | None = None):
    """The 'Train a new kid' form. Lives in the frame, so it keeps its values on every page.
    run_name, run_dir: the run the sidebar shows, whose settings the form can take (a sibling of it)."""
    job = jobs()
    if "train_preset" not in st.session_state:
        st.session_state["train_preset"] = "quick"
        apply_preset()
        st.session_state["train_name"] = new_run_name()
    if st.session_state.pop("train_close_sidebar", False):
        close_sidebar_on_a_phone()
    with st.sidebar.expander("Train a new kid", icon=":material/model_training:", expanded=job.running()):
        if job.running():
            sidebar_progress()
            return
        if run_dir is not None:
            st.button(
                "Train a sibling of this run",
                key="train_sibling",
                icon=":material/content_copy:",
                on_click=prefill,
                args=(run_name, run_dir),
                help="The form takes this run's settings: change one thing, train, then compare the two.",
            )
        for note in st.session_state.get("train_prefilled", []):
            st.caption(note)
        st.radio(
            "Preset",
            list(PRESETS),
            key="train_preset",
            on_change=apply_preset,
            horizontal=True,
            help=f"quick: {QUICK_TAKES} on a small server. The kid's recipe: what trained the kid.",
        )
        if st.session_state.pop("train_offer_upload", False):  # tinyshakespeare could not be had
            st.session_state["train_corpus"] = CORPORA[1]
        # Outside the form: choosing a file shows the uploader at once.
        corpus = st.radio("Corpus", CORPORA, key="train_corpus")
        if st.session_state.get("train_no_download") and corpus == CORPORA[1]:
            st.warning(NO_DOWNLOAD, icon=":material/cloud_off:")
        # A form: editing a setting does not rerun the page behind it; Train sends them all.
        with st.form("train_form", border=False, enter_to_submit=False):
            settings = {}
            for setting_field in FORM_FIELDS:
                # no bounds in the browser: a value out of range would only turn the field red
                # and make Train do nothing; start() says what is wrong instead
                settings[setting_field.name] = st.number_input(
                    setting_field.label,
                    step=setting_field.form[2],
                    key=f"train_{setting_field.name}",
                    help=setting_field.help + " ({:g} to {:g})".format(*form_range(setting_field)),
                    format="%.4f" if setting_field.name == "lr" else None,
                )
            upload = None
            if corpus == CORPORA[1]:
                upload = st.file_uploader("A UTF-8 .txt file", type=["txt"], key="train_upload")
            name = st.text_input("Run name", key="train_name", help="Letters, digits, - and _.")
            if st.form_submit_button("Train", type="primary", key="train_start", icon=":material/play_arrow:"):
                problem = start(name, settings, upload, corpus)
                if problem == NO_DOWNLOAD and corpus == CORPORA[0]:
                    st.session_state["train_no_download"] = st.session_state["train_offer_upload"] = True
                    st.rerun()
                if problem:
                    st.error(problem)


@st.fragment(run_every=1.0)
def sidebar_progress():
    """The running job's progress, followed every second; when it ends, the
    whole page runs again, so the form comes back in place of Stop."""
    job = jobs()
    if not job.running():
        st.rerun(scope="app")
    progress = job.status().get("progress")
    if progress and progress.get("status") == "running":
        st.progress(
            min(1.0, progress["step"] / max(1, progress["steps"])),
            text=f"'{job.name}': step {progress['step']:,} of {progress['steps']:,}",
        )
    else:
        st.caption(f"'{job.name}' is starting...")
    st.page_link("pages/train_live.py", label="Watch it learn", icon=":material/monitoring:")
    if st.button("Stop", key="train_stop_sidebar", icon=":material/stop:"):
        job.stop()
        st.toast("Stopping: the run saves a checkpoint you can resume.")


def close_sidebar_on_a_phone():
    """On a narrow screen the open sidebar covers the page: close it, as a tap beside it would."""
    st.html(
        """<script>
        if (window.innerWidth < 768) {
          const button = document.querySelector('[data-testid="stSidebarCollapseButton"] button')
            || document.querySelector('[data-testid="stSidebar"] [data-testid="stBaseButton-headerNoPadding"]');
          if (button) button.click();
        }
        </script>""",
        unsafe_allow_javascript=True,
    )


def prefill(run_name: str, run_dir: Path):
    """'Train a sibling of this run': the form takes the run's settings (its
    model card is untrusted: only numbers are taken, within the form's range)."""
    try:
        card = read_chapter(run_dir, "model_card")
    except TinyLLMError:
        st.session_state["train_prefilled"] = ["This run's settings cannot be read."]
        return
    settings, notes = settings_of(card), []
    for setting_field in FORM_FIELDS:
        value = number(settings.get(setting_field.name))
        if value is None:
            continue
        low, high = form_range(setting_field)
        kept = type(setting_field.default)(min(max(value, low), high))
        if kept != value:
            notes.append(
                f"{setting_field.label}: {kept:g}, the nearest this form takes ({low:g} to {high:g}) to {value:g}"
            )
        st.session_state[f"train_{setting_field.name}"] = kept
    name, md5 = settings["corpus"]
    st.session_state["train_corpus"] = CORPORA[0] if md5 == TINYSHAKESPEARE_MD5 else CORPORA[1]
    st.session_state["train_name"] = new_run_name()
    said = f"The form holds the settings of '{escaped(run_name)}'"
    if md5 != TINYSHAKESPEARE_MD5:
        said += f" (it read {escaped(str(name))}: choose that text again)"
    notes.insert(0, said + ". Change one, train, then compare the two runs in *Compare*.")
    st.session_state["train_prefilled"] = notes


# --- starting a run -----------------------------------------------------------


def settings_problem(settings: dict) -> str | None:
    """The first setting outside the form's range, in the form's words."""
    for setting_field in FORM_FIELDS:
        low, high = form_range(setting_field)
        value = settings.get(setting_field.name)
        if value is None or not low <= value <= high:
            shown = "nothing" if value is None else f"{value:g}"
            return f"{setting_field.label} must be from {low:g} to {high:g} (it is {shown})."
    return None


def tinyshakespeare_problem() -> str | None:
    """None when tinyshakespeare is here (or could be downloaded now); else what to do instead."""
    try:
        with st.spinner("Fetching tinyshakespeare (1 MB, once)..."):
            load_corpus()
    except DownloadError:
        return NO_DOWNLOAD
    except TinyLLMError as e:  # a deployer's TINYLLM_DATA that cannot be read
        return f"The server's copy of the text cannot be read ({visitor_words(str(e))}). Upload a text file."
    return None


def start(name, settings, upload, corpus, head_code=None) -> str | None:
    """Start a run for this visitor and show it training; or what is wrong, in words."""
    if corpus == CORPORA[1] and upload is None:
        return "Choose a text file first."
    from ui.loaders import kid_dir  # (ui.loaders imports this module)

    if name in reserved_names(kid_dir()):
        return f"'{name}' is the name of a run that comes with the app: choose another name."
    problem = settings_problem(settings) if head_code is None else None
    if problem is None and upload is None:
        problem = tinyshakespeare_problem()
    if problem:
        return problem
    try:
        if upload is not None:
            jobs().start(name, settings, upload.getvalue(), upload.name, head_code=head_code, owner=visitor())
        else:
            jobs().start(name, settings, head_code=head_code, owner=visitor())
    except TinyLLMError as e:
        return visitor_words(str(e))
    watch(name)


def train_with_head(code: str):
    """The Write-attention page's offer: a quick kid whose every head runs the
    visitor's Head, on tinyshakespeare or a text of their own."""
    quick = PRESETS["quick"]
    st.markdown(
        f"**Train a kid with your Head.** Every head of a new kid will run your `forward`: the "
        f"quick preset ({quick['steps']:,} steps, {quick['n_layer']} layers of {quick['n_head']} heads)."
    )
    corpus = st.radio("Corpus", CORPORA, key="head_corpus", horizontal=True)
    upload = st.file_uploader("A UTF-8 .txt file", type=["txt"], key="head_upload") if corpus == CORPORA[1] else None
    running = jobs().running()
    if st.button(
        "Train a quick kid with your Head", icon=":material/model_training:", key="head_train", disabled=running
    ):
        problem = start(new_run_name(), quick, upload, corpus, head_code=code)
        if problem:
            st.error(problem)
    if running:
        st.caption("The server is training another run: one at a time.")


def watch(name: str):
    """After this visitor started run `name`: remember it as theirs (they may
    delete it) and show it training."""
    st.session_state.setdefault("my_runs", set()).add(name)
    st.session_state["train_watching"] = name
    st.session_state["train_close_sidebar"] = True
    st.switch_page("pages/train_live.py")


# --- whose runs: a secret kept in a cookie of the visitor's browser ---------

COOKIE = "peek_visitor"
SECRET = re.compile(r"[A-Za-z0-9_-]{22,64}")


def visitor() -> str:
    """This browser's secret: from its cookie (so that it survives a reload),
    else a new one, which the browser is asked to keep (for 30 days)."""
    if "visitor" not in st.session_state:
        kept = st.context.cookies.get(COOKIE)  # (not a string in a test's AppTest)
        st.session_state["visitor"] = (
            kept if isinstance(kept, str) and SECRET.fullmatch(kept) else secrets.token_urlsafe(24)
        )
    secret = st.session_state["visitor"]
    if st.context.cookies.get(COOKIE) != secret and not st.session_state.get("visitor_cookie_set"):
        st.session_state["visitor_cookie_set"] = True
        st.html(
            f"<script>document.cookie = '{COOKIE}={secret}; path=/; max-age=2592000; SameSite=Strict';</script>",
            unsafe_allow_javascript=True,
        )
    return secret


def my_runs() -> set:
    """The runs this visitor started: in this session, or in this browser before (the owner file)."""
    mine = set(st.session_state.get("my_runs", set()))
    if runs_dir().is_dir():
        secret = visitor()
        mine |= {p.name for p in runs_dir().iterdir() if RUN_NAME.fullmatch(p.name) and RunFolder(p).owned_by(secret)}
    return mine


# --- a run, in a visitor's words ----------------------------------------------

# A sentence written for someone at a terminal: a command, a flag or an environment variable.
TERMINAL_ADVICE = re.compile(r"python -m|(?:^|\s)--[a-z]|\b[A-Z]+_[A-Z_]+=")
# A path on the server (after a space, a quote or a bracket, or at the start): shown by its last part only.
SERVER_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[/\\][^\s'\"()]+")


def visitor_words(message: str) -> str:
    """A message of the package or the training process, for the person in the
    browser: no server path, and a failed download said as what it means."""
    message = message.strip().removeprefix("error: ")
    if message.startswith(DOWNLOAD_FAILED):
        return "tinyshakespeare could not be downloaded on this server"
    # the package's advice for a terminal ("Create it with: python -m tinyllm ...") is left out
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", message) if not TERMINAL_ADVICE.search(s)]
    # shown as text: a message may quote an uploaded file's name or a corpus's characters
    return escaped(SERVER_PATH.sub(lambda m: Path(m.group()).name, " ".join(sentences)).rstrip("."))


def failure_reason(run_dir: Path) -> str:
    """Why a run failed: the last line its training process wrote, in a visitor's words."""
    try:
        with open(RunFolder(run_dir).output, "rb") as out:
            out.seek(0, 2)
            out.seek(max(0, out.tell() - 2000))
            lines = out.read().decode("utf-8", errors="replace").strip().splitlines()
    except OSError:
        lines = []
    return visitor_words(lines[-1]) if lines else "it did not say why"


def kept_note(best_step: int | None, steps: int | None) -> str:
    """'kept step 200 of 4,000: ...' when the kept checkpoint is not the last step; else ''."""
    if best_step is None or steps is None or best_step >= steps:
        return ""
    note = f"kept step {best_step:,} of {steps:,}: the validation loss rose after that"
    # early in the run, the rise is the kid memorising its training text, not noise
    if best_step <= 0.75 * steps:
        note += ": it was memorising (more text or more dropout helps)"
    return note
