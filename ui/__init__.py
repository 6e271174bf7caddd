"""Streamlit-side helpers: cached loaders, charts and shared widgets.

The pages draw with these; every number comes from tinyllm (the package
computes, never this folder).

One way to show a chart: ui/charts.py builds it (an Altair chart, or a
Picture when its description is built once and reused across reruns), and
ui.widgets.draw shows it, so that a rerun which changes only the numbers
redraws it in place. Modules here are named for what they show, never after
a module of the package (ui.loaders reads tinyllm's data; tinyllm.data makes it).
"""

from pathlib import Path

APP_DIR = Path(__file__).resolve().parent.parent  # the app's folder: the committed kid lies beside it
APP_PAGES = APP_DIR / "pages"


def page_names() -> list:
    """Every page of the app by its file name (meet, vocab, ...): what the
    tests and benchmarks visit, so a new page is never left out."""
    return sorted(path.stem for path in APP_PAGES.glob("*.py"))


# --- every page is drawn inside the frame, or not at all ---------------------
# Streamlit serves each file of a pages/ folder on its own address until some
# script calls st.navigation (on a fresh server, and in every AppTest run): the
# visitor to /vocab would get the bare page, without the page config, the
# shared sidebar or a chosen run. So the frame says that it runs the page, and
# a page that was not told so runs the frame in its place, which draws this
# very page inside itself (its st.navigation finds the address asked for).
FRAME = APP_DIR / "streamlit_app.py"
_RUN_BY_FRAME = "frame_runs_the_page"


def frame_runs_the_page() -> None:
    """The frame (streamlit_app.py) calls this just before navigation.run()."""
    import streamlit as st

    st.session_state[_RUN_BY_FRAME] = True


def in_frame() -> None:
    """The first line of every page: go on only inside the frame, in this very
    script run (the word is taken as it is read, so it never outlives its run);
    run on its own, the page runs the frame instead, and stops."""
    import runpy

    import streamlit as st

    if not st.session_state.pop(_RUN_BY_FRAME, False):
        runpy.run_path(str(FRAME), run_name="__main__")
        st.stop()
