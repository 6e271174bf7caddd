"""A real browser on the Compare page: the kid against its sibling, against a
run that failed, at a desktop's and a phone's width; and the sidebar's
'Train a sibling of this run'."""

import json
import shutil

import pytest
from helpers import tiny_configs
from test_browser import SHOTS, Server, assert_for_visitor, browser_page, no_exception, open_training_form, settle
from test_browser import pytestmark as browser_marks

from tinyllm.export import export_run
from tinyllm.train import train

pytestmark = browser_marks


@pytest.fixture(scope="module")
def family_server(tiny_run, tiny_corpus, tmp_path_factory):
    """The tiny run as the kid, a sibling with one block, and a visitor's run that failed."""
    root = tmp_path_factory.mktemp("family")
    shutil.copytree(tiny_run, root / "kid")
    sibling = root / "siblings" / "one-block"
    train(*tiny_configs(n_layer=1), tiny_corpus, sibling)
    export_run(sibling)
    runs = root / "runs"
    failed = runs / "failed"
    failed.mkdir(parents=True)
    rows = (tiny_run / "log.jsonl").read_text().splitlines()[:2]  # two evaluations, then it died
    (failed / "log.jsonl").write_text("\n".join(rows) + "\n")
    (failed / "progress.json").write_text(json.dumps({"status": "failed", "step": 50, "steps": 120}))
    (failed / "train.out").write_text("error: the machine ran out of memory\n")
    server = Server(root, PEEK_KID_DIR=str(root / "kid"), PEEK_RUNS_DIR=str(runs))
    yield server.base
    server.stop()


@pytest.mark.parametrize("width", [1400, 390])
def test_compare_the_kid_with_a_sibling_and_a_failed_run(family_server, width):
    with browser_page(width, 3000) as page:
        page.goto(f"{family_server}/compare")
        settle(page)
        no_exception(page)
        app = page.locator("[data-testid='stMain']")
        text = app.inner_text()
        assert page.url.endswith("/compare?a=kid&b=one-block")  # the kid against its sibling, kept in the address
        assert " is better: validation loss " in text or "as good as each other" in text
        assert "1 setting differ" in text
        page.wait_for_selector("[data-testid='stVegaLiteChart']")
        # nothing cut off: the page is no wider than the window
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=SHOTS / f"compare-sibling-{width}.png", full_page=True)
        # the failed run, by the address: it says what it can
        page.goto(f"{family_server}/compare?a=kid&b=failed")
        settle(page)
        no_exception(page)
        text = app.inner_text()
        assert "'failed': it failed at step 50, before its first checkpoint" in text
        assert "lacks a kept checkpoint's exact loss" in text
        assert_for_visitor(page)
        page.screenshot(path=SHOTS / f"compare-failed-{width}.png", full_page=True)


def test_train_a_sibling_of_this_run_in_the_sidebar(family_server):
    with browser_page(1400, 2200) as page:
        page.goto(f"{family_server}/?run=one-block")
        settle(page)
        sidebar = open_training_form(page)
        layers = sidebar.get_by_role("spinbutton", name="Layers", exact=True)
        layers.fill("3")  # something else first: the button must put the run's value back
        sidebar.get_by_role("button", name="Train a sibling of this run").click()
        settle(page)
        no_exception(page)
        assert sidebar.get_by_role("spinbutton", name="Layers", exact=True).input_value() == "1"
        assert "The form holds the settings of 'one-block'" in sidebar.inner_text()
