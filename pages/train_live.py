"""Tool: train your own kid and watch it learn, live."""

import streamlit as st

from tinyllm.errors import TinyLLMError
from tinyllm.jobs import QUICK_TAKES, SETTING_PROBLEMS
from tinyllm.runfolder import resumable_runs, runs_dir
from ui import in_frame
from ui.charts import loss_curves
from ui.text import code_block
from ui.train_form import failure_reason, jobs, kept_note, my_runs, visitor_words
from ui.widgets import draw

in_frame()  # drawn inside the frame, or not at all

st.title("Train your own kid")
st.markdown(
    """
Set the knobs in the sidebar (**Train a new kid**) and press **Train**. The run happens on the
server in the background, through the same command you could type yourself (*Behind the scenes*
shows it), so you can switch pages, or close the tab and come back: it keeps going. Everyone visiting this app
sees the same run; there is one at a time. When it finishes it is exported and appears in the
**Run to look inside** selector, so every chapter can show *your* kid.
"""
)

job = jobs()
for name, pid in job.others().items():
    st.warning(
        f"Run '{name}' is still training in process {pid}, started before this server restarted. "
        "No other run can start until it ends.",
        icon=":material/sync:",
    )
    if st.button(f"Stop '{name}'", key=f"train_live_stop_orphan_{name}", icon=":material/stop:"):
        job.stop_orphan(name)
        st.toast("Asked it to stop cleanly: it saves a resumable checkpoint first.")
for problem in SETTING_PROBLEMS.values():  # this server's limits, as its deployer wrote them
    st.warning(f"A setting of this server was not understood: {problem}", icon=":material/settings:")


@st.fragment(run_every=1.0 if job.running() else None)
def live_view():
    status = job.status()
    if status["name"] is None or not status["run_dir"].is_dir():  # none yet, or deleted since
        st.info(
            "No run started since the server started. Use **Train a new kid** in the sidebar; "
            f"the *quick* preset takes {QUICK_TAKES} on a small server.",
            icon=":material/arrow_back:",
        )
        return
    progress = status.get("progress") or {}
    running = status["running"]
    st.subheader(f"Run '{status['name']}'" + (" is training" if running else ""))
    step, steps = progress.get("step", 0), progress.get("steps", 1)
    eta = progress.get("eta_s")
    eta_text = f", about {eta:.0f} s left" if running and eta is not None else ""
    st.progress(min(1.0, step / steps), text=f"step {step:,} of {steps:,}{eta_text}")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Step", f"{step:,}")
    c2.metric("Loss (last batch)", f"{progress['loss']:.3f}" if progress.get("loss") else "-")
    c3.metric("Characters / s", f"{progress.get('tokens_per_s', 0):,}")
    c4.metric("Elapsed", f"{progress.get('elapsed_s', 0):.0f} s")
    if running and st.button("Stop", icon=":material/stop:", key="train_live_stop"):
        job.stop()
        st.toast("Stopping cleanly: a resumable checkpoint is being saved.")

    rows = status["rows"]
    # the checkpoint it keeps: the evaluation with the lowest validation loss so far
    kept_step = next((row["step"] for row in reversed(rows) if row.get("best")), None)
    if len(rows) > 1:
        uniform = status.get("uniform_loss", rows[0]["val_loss"])
        draw(loss_curves(rows, uniform, kept_step, height=280), width="stretch")
        st.caption("Green line: the step it keeps, where its validation loss is lowest so far.")
    elif running:
        st.caption("The loss curves appear after the second evaluation.")
    if rows:
        st.markdown(f"**What it writes at step {rows[-1]['step']:,}:**")
        code_block(rows[-1]["sample"])
        if kept_step is not None and kept_step < rows[-1]["step"]:
            st.caption(
                f"The kid it keeps is step {kept_step:,}'s (its validation loss was lowest there): the "
                "chapters and the Playground show that one."
            )

    if running:
        st.session_state["train_live_was_running"] = True
        return
    if status.get("error"):
        st.error(f"The run failed at step {step:,} because {failure_reason(status['run_dir'])}.")
        if visitor_words(status["error"]).startswith("tinyshakespeare could not"):
            st.info("Train on a text of your own: in the sidebar, choose **my own text file** as the corpus.")
    elif progress.get("status") == "stopped":
        st.warning(f"Stopped at step {step:,}. It can be resumed below.")
    elif status.get("summary"):
        summary = status["summary"]
        kept = kept_note(summary.get("best_step"), summary["step"])
        st.success(
            f"Done: {summary['step']:,} steps in {summary['elapsed_s']:.0f} s"
            + (f"; {kept}" if kept else "")
            + f". Validation loss of the kid it kept: {summary['exact_val_loss']:.3f}. "
            "It is in the sidebar's run selector."
        )
    if st.session_state.pop("train_live_was_running", False):
        st.rerun(scope="app")  # the chapters and the run selector pick up the new run


live_view()

st.subheader("Resume a stopped run")
names = resumable_runs()
if not names:
    st.caption("No stopped runs.")
else:
    name = st.selectbox("Stopped run", names, key="train_live_resume_name")
    if st.button("Resume", icon=":material/play_arrow:", key="train_live_resume", disabled=job.running()):
        try:
            jobs().start(name, {}, resume=True)
            st.rerun()
        except TinyLLMError as e:
            st.error(str(e))

st.subheader("Your runs")
yours = sorted(name for name in my_runs() if (runs_dir() / name).is_dir())
if not yours:
    st.caption("Runs you start in this browser are listed here, and only you can delete them.")
else:
    name = st.selectbox("Run", yours, key="train_live_delete_name")
    training_it = job.training(name)  # asked of its folder's lock, whoever started it
    if st.button(
        "Delete",
        icon=":material/delete:",
        key="train_live_delete",
        disabled=training_it,
        help="Stop it first." if training_it else "Its folder and everything in it is removed.",
    ):
        try:
            job.delete(name)
        except TinyLLMError as e:
            st.error(str(e))
        else:
            st.session_state.get("my_runs", set()).discard(name)
            st.rerun(scope="app")  # the run selector forgets it
