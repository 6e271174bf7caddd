"""Cached access to the selected run: its exported chapters and its model.

Caches are keyed on the file's path and modification time, so a new export
or checkpoint is picked up without restarting the app. Exported chapters go
through st.cache_resource, not st.cache_data: cache_data would unpickle a
fresh copy of a multi-megabyte dict on every rerun. The objects are shared
by every visitor, so pages must only read them, never change them.
"""

import os
from pathlib import Path

import streamlit as st

from tinyllm.checkpoint import load_model
from tinyllm.compare import differences_sentence
from tinyllm.errors import TinyLLMError
from tinyllm.export import analyze_text, export_run, read_chapter
from tinyllm.flow import full_flow
from tinyllm.runfolder import RunFolder, RunInfo, find_run, sibling_folders
from tinyllm.sample import SampleSettings, sample_text
from ui import APP_DIR
from ui.train_form import failure_reason, visitor_words


def mtime_ns(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


@st.cache_resource(max_entries=40, show_spinner=False)
def _chapter(run_dir: str, name: str, mtime: int) -> dict:
    return read_chapter(run_dir, name)


@st.cache_resource(max_entries=4, show_spinner="Loading the checkpoint...")  # the selected run, two compared
def _model(path: str, mtime: int):
    model, vocab, ckpt = load_model(path)
    model.requires_grad_(False)  # shared and read-only: nobody trains the cached copy
    return model, vocab, ckpt


def kid_dir() -> Path:
    """The kid the app shows first: $PEEK_KID_DIR, else artifacts/kid beside the app."""
    return Path(os.environ.get("PEEK_KID_DIR", APP_DIR / "artifacts" / "kid"))


def current_run() -> Path:
    """The run the reader picked in the sidebar (the kid by default): the
    kid, one of its siblings, or a run in runs_dir()."""
    return find_run(st.session_state.get("run", "kid"), kid_dir()) or kid_dir()


def committed(run_dir: Path) -> bool:
    """The kid or one of its siblings: runs shipped with the app, never written by it."""
    return run_dir in [kid_dir()] + [folder.path for folder in sibling_folders(kid_dir())]


def explain_and_stop(error: Exception):
    """A chapter cannot be read. Say why in a visitor's words (never a path or
    a command) and stop the page: a run still training, a run that ended
    before its first checkpoint, or one whose pages can be written right here."""
    run_dir = current_run()
    folder = RunFolder(run_dir)  # read here, once, not for every run in the sidebar's list
    progress = folder.read_object(folder.progress) or {}
    live_page = "pages/train_live.py"
    if run_dir == kid_dir():
        st.info(f"**This page has nothing to show**: the kid's pages cannot be read ({visitor_words(str(error))}).")
    elif committed(run_dir):  # a sibling is read-only like the kid: nothing is written into it
        st.info(
            f"**This page has nothing to show**: the pages of the kid's sibling '{run_dir.name}' cannot be read "
            f"({visitor_words(str(error))})."
        )
    elif progress.get("status") == "running":
        st.info(
            f"**'{run_dir.name}' is still training**: its chapters appear when it finishes.",
            icon=":material/hourglass_top:",
        )
        st.page_link(live_page, label="Watch it learn", icon=":material/monitoring:")
    elif not folder.model.is_file():
        step = progress.get("step")
        at = f" at step {step:,}" if isinstance(step, int) and not isinstance(step, bool) else ""
        st.warning(
            f"**'{run_dir.name}' failed{at}**, before its first checkpoint, because "
            f"{failure_reason(run_dir)}. There is nothing inside it to show: delete it in *Train your own kid*.",
            icon=":material/error:",
        )
        st.page_link(live_page, label="Train your own kid", icon=":material/model_training:")
    else:
        st.info(
            "**This run's pages cannot be read**: they are not written yet, were written by another version "
            f"of peek, or are damaged ({visitor_words(str(error))}).",
            icon=":material/info:",
        )
        if st.button("Write them now", icon=":material/refresh:", key="export_now"):
            with st.spinner("Reading the checkpoint and writing every chapter..."):
                try:
                    export_run(run_dir)
                except TinyLLMError as e:
                    st.error(f"Writing them failed: {visitor_words(str(e))}.")
                    st.stop()
            st.rerun()
    st.stop()


def chapter(name: str, run_dir: Path | None = None) -> dict:
    """An exported chapter of the selected run, or a friendly stop."""
    run_dir = run_dir or current_run()
    path = RunFolder(run_dir).chapter(name)
    try:
        return _chapter(str(run_dir), name, mtime_ns(path))
    except TinyLLMError as e:
        explain_and_stop(e)


# What a page may compute live from the selected run's model and a text (the
# reader's own text): the export's analysis of attention and predictions, and
# the whole kid's trace. Same function as the export and the tests use.
LIVE = {"analysis": analyze_text, "flow": full_flow}


@st.cache_data(max_entries=64, show_spinner="Running the kid on your text...")
def _computed(run_dir: str, mtime: int, what: str, text: str) -> dict:
    kid, vocab, _ = model(Path(run_dir))
    return LIVE[what](kid, vocab, text)


def computed(what: str, text: str) -> dict:
    """LIVE[what] of the selected run's model on `text`, once per run and text."""
    run_dir = current_run()
    return _computed(str(run_dir), mtime_ns(RunFolder(run_dir).model), what, text)


def model(run_dir: Path | None = None):
    """(model, vocab, checkpoint) of the selected run, loaded once and cached."""
    path = RunFolder(run_dir or current_run()).model
    try:
        return _model(str(path), mtime_ns(path))
    except TinyLLMError as e:
        explain_and_stop(e)


def sibling_differences(name: str) -> str:
    """How the sibling `name` differs from the kid ('1 block instead of 4'), from both model cards."""
    kid, siblings = kid_and_siblings()
    card = dict(siblings).get(name)
    if not kid or not card:
        return "how it differs from the kid cannot be read"
    return differences_sentence(kid, card)


# --- the Compare page: two runs at once, whatever each has ---------------------


@st.cache_resource(max_entries=8, show_spinner=False)
def _learning(run_dir: str, mtime: int) -> dict | None:
    # learning.json is read as plain JSON: compare.learning_rows checks its format
    return RunFolder.read_object(RunFolder(run_dir).chapter("learning"))


def compared_run(run: RunInfo) -> dict:
    """What the Compare page reads of a run: whatever it has, never a stop
    (a run that failed has only its log), and, when it has less than a
    finished run, why, in a visitor's words."""
    folder = RunFolder(run.path)
    side = dict(name=run.name, path=run.path, mtime=mtime_ns(folder.model), card=None, rows=[], samples=[])
    side.update(attention={}, knockout={}, learning=None, problem=None)

    def read(name: str) -> dict:
        try:
            return _chapter(str(run.path), name, mtime_ns(folder.chapter(name)))
        except TinyLLMError:
            return {}

    if run.exported:
        side["card"] = read("model_card") or None
        training = read("training")
        side["rows"], side["samples"] = training.get("rows", []), training.get("samples", [])
        side["attention"], side["knockout"] = read("attention"), read("knockout")
        side["learning"] = _learning(str(run.path), mtime_ns(folder.chapter("learning")))
        return side
    rows = [row for row in folder.read_log() if isinstance(row, dict)]
    side["rows"] = rows
    side["samples"] = [{"step": row.get("step"), "text": row.get("sample")} for row in rows]
    progress = folder.read_object(folder.progress) or {}
    step = progress.get("step")
    at = f" at step {step:,}" if isinstance(step, int) and not isinstance(step, bool) else ""
    logged = "only what it logged while training is compared" if rows else "it logged nothing to compare"
    if run.problem:
        side["problem"] = f"it cannot be shown: {run.problem}; {logged}."
    elif run.state == "running":
        side["problem"] = f"it is still training{at}: {logged}."
    elif not run.checkpoint:
        side["problem"] = f"it failed{at}, before its first checkpoint: {logged}."
    else:
        side["problem"] = f"its pages are not written yet (pick it in the sidebar and open a chapter): {logged}."
    return side


def compared_model(run_dir: Path):
    """(model, vocab) of a run the Compare page shows; None if it cannot be loaded."""
    path = RunFolder(run_dir).model
    try:
        kid, vocab, _ = _model(str(path), mtime_ns(path))
    except TinyLLMError:
        return None
    return kid, vocab


@st.cache_data(max_entries=32, show_spinner="Writing...")
def _written(model_path: str, mtime: int, prompt: str, settings: SampleSettings) -> str:
    kid, vocab, _ = _model(model_path, mtime)
    return sample_text(kid, vocab, prompt, settings)


def written(run_dir: Path, prompt: str, settings: SampleSettings) -> str:
    """What a run writes after `prompt` with these settings (the same seed, the same text: cached)."""
    path = RunFolder(run_dir).model
    return _written(str(path), mtime_ns(path), prompt, settings)


def kid_and_siblings() -> tuple:
    """(the kid's model card, [(sibling's name, its model card)]); a card that
    cannot be read is {} (the sentences made from it say less)."""

    def card(run_dir: Path) -> dict:
        try:
            return _chapter(str(run_dir), "model_card", mtime_ns(RunFolder(run_dir).chapter("model_card")))
        except TinyLLMError:
            return {}

    return card(kid_dir()), [(folder.name, card(folder.path)) for folder in sibling_folders(kid_dir())]
