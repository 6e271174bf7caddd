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
APP_PAGES = APP_DIR / "app_pages"


def page_names() -> list:
    """Every page of the app by its file name (meet, vocab, ...): what the
    tests and benchmarks visit, so a new page is never left out."""
    return sorted(path.stem for path in APP_PAGES.glob("*.py"))
