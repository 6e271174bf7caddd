"""A real browser (Debian's Chromium, driven by Playwright) clicks through the app.

Skipped when Chromium or Playwright is missing, except in CI, where
PEEK_REQUIRE_BROWSER=1 makes that a failure. Screenshots of every page go to
tests/screenshots/ (git-ignored) for a person to look at.
"""

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from helpers import make_text
from PIL import Image

from ui import APP_PAGES, page_names

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "tests" / "screenshots"
PAGES = {name: "" if name == "meet" else name for name in page_names()}  # meet is the default page

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover
    sync_playwright = None

missing = sync_playwright is None or not Path(CHROMIUM).exists()
if missing and os.environ.get("PEEK_REQUIRE_BROWSER"):
    raise RuntimeError("PEEK_REQUIRE_BROWSER is set but Chromium or Playwright is missing")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,  # a server, a browser, seconds per page
    pytest.mark.skipif(missing, reason="needs Debian's chromium and the playwright package"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run streamlit_app.py` on a free port, with these variables set."""

    def __init__(self, tmp: Path, unset=(), wait=True, **env):
        self.log_path = tmp / "streamlit.log"
        self.log = open(self.log_path, "w")
        port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "streamlit_app.py",
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            env={k: v for k, v in dict(os.environ, **env).items() if k not in unset or k in env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{port}"
        if wait:
            self.ready()

    def ready(self):
        """Wait until it answers (started with wait=False, several start side by side)."""
        deadline = time.time() + 120
        while True:  # the health check is not a page: no script runs for it
            try:
                if urllib.request.urlopen(f"{self.base}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            assert time.time() < deadline and self.proc.poll() is None, "streamlit did not start"
            time.sleep(0.3)

    def stop(self) -> str:
        """Stop it; its log, which must hold no traceback and no warning."""
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()
        server_log = self.log_path.read_text()
        assert "Traceback" not in server_log, server_log
        assert "Warning" not in server_log and "WARNING" not in server_log, server_log
        return server_log


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """The runs folder of the server the tests share (PEEK_RUNS_DIR)."""
    return tmp_path_factory.mktemp("browser_runs")


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory, tiny_text, runs_root):
    tmp = tmp_path_factory.mktemp("browser")
    corpus = tmp / "rhymes.txt"
    corpus.write_text(tiny_text)
    running = Server(
        tmp,
        PEEK_KID_DIR=str(tiny_run),
        PEEK_RUNS_DIR=str(runs_root),
        TINYLLM_DATA=str(corpus),
        PEEK_VISITOR_CODE="on",  # the Head exercise runs code (in the jail) only when set so
    )
    yield running.base
    running.stop()


@pytest.fixture(scope="module")
def offline_runs(tmp_path_factory):
    return tmp_path_factory.mktemp("offline_runs")


@pytest.fixture(scope="module")
def offline_server(tiny_run, tmp_path_factory, offline_runs):
    """A server with no copy of tinyshakespeare whose download fails at once:
    no TINYLLM_DATA, an empty cache, and a proxy on a closed local port (the
    download never reaches the network)."""
    tmp = tmp_path_factory.mktemp("offline")
    closed = f"http://127.0.0.1:{free_port()}"
    proxies = [k for k in os.environ if k.lower().endswith("_proxy")]
    running = Server(
        tmp,
        unset=["TINYLLM_DATA", *proxies],
        PEEK_KID_DIR=str(tiny_run),
        PEEK_RUNS_DIR=str(offline_runs),
        TINYLLM_CACHE=str(tmp / "cache"),
        https_proxy=closed,
        HTTPS_PROXY=closed,
        no_proxy="",
    )
    yield running.base
    running.stop()


def launch(p):
    return p.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )


@contextmanager
def browser_page(width=1400, height=2200):
    """A fresh Chromium with one tab of this size, closed afterwards."""
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            browser.close()


@pytest.fixture(scope="module")
def page(server):
    with browser_page() as page:
        yield page


def settle(page):
    """Wait until the app finished running its script."""
    page.wait_for_timeout(300)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=60_000)
    page.wait_for_timeout(300)


def no_exception(page):
    assert page.locator("[data-testid='stException']").count() == 0, page.content()[:2000]


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_opens(server, page, name):
    page.goto(f"{server}/{PAGES[name]}")
    settle(page)
    # pages without a chart (Compare draws its charts once there are two runs: tests/test_browser_compare.py)
    if name not in ("train_live", "playground", "behind", "write_head", "compare"):
        page.wait_for_selector("[data-testid='stVegaLiteChart']")
    no_exception(page)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def test_attention_slider_and_heatmap_click(server, page):
    page.goto(f"{server}/attention")
    settle(page)
    table = page.locator("[data-testid='stDataFrame']").first
    slider = page.get_by_role("slider", name="Query position")
    before = slider.input_value()
    slider.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    settle(page)
    assert slider.input_value() != before
    no_exception(page)
    # click a cell in the big heatmap: the query slider follows to that row
    moved = slider.input_value()

    def click_row(fraction, across=0.1):
        chart = page.locator("[data-testid='stVegaLiteChart']").nth(1)
        chart.scroll_into_view_if_needed()
        box = chart.locator("canvas, svg").first.bounding_box()
        page.mouse.click(box["x"] + box["width"] * across, box["y"] + box["height"] * fraction)
        settle(page)
        return slider.input_value()

    first = click_row(0.3)
    assert first != moved
    assert click_row(0.7) != first
    assert click_row(0.3) == first  # the same cell again counts again
    slider.focus()
    page.keyboard.press("ArrowLeft")
    settle(page)
    assert click_row(0.3) == first  # and after a slider move too
    assert click_row(0.7) != first
    assert click_row(0.3, across=0.85) == first  # a grey cell (the future) of that row too
    no_exception(page)
    assert table.is_visible()
    page.screenshot(path=SHOTS / "attention_clicked.png", full_page=True)


def test_training_heatmap_draws_its_picture(server, page):
    """The scrubber's heatmap is one picture under the axes and the legend:
    the picture itself must be on screen, not only its frame."""
    page.goto(f"{server}/training")
    settle(page)
    heading = page.get_by_text("Attention of layer")
    chart = heading.locator("xpath=following::*[@data-testid='stVegaLiteChart'][1]")
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    pixels = np.asarray(Image.open(io.BytesIO(chart.screenshot())).convert("RGB"), dtype=int)
    cells = pixels[:, : pixels.shape[1] * 3 // 4]  # left of the colour legend
    blue = cells[..., 2] - cells[..., 0] > 25  # even the lightest weight's blue; not the grey, the page or the text
    assert blue.mean() > 0.05, f"only {blue.mean():.1%} of the heatmap is blue"


def test_write_a_head_with_a_mistake_then_fix_it(server, page):
    from head_solutions import SOLUTION, with_mistake

    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 2600})
        page.goto(f"{server}/write_head")
        settle(page)
        editor = page.locator(".st-key-head_code textarea")
        editor.fill(with_mistake("zero_mask"))
        page.get_by_role("button", name="Check").click()
        expect(page.get_by_text("filled with 0 instead of -inf").first).to_be_visible(timeout=60_000)
        no_exception(page)
        page.screenshot(path=SHOTS / f"write_head_mistake_{width}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        editor.fill(SOLUTION)
        page.get_by_role("button", name="Check").click()
        expect(page.get_by_text("You wrote attention")).to_be_visible(timeout=60_000)
        no_exception(page)
        page.screenshot(path=SHOTS / f"write_head_passed_{width}.png", full_page=True)
    page.set_viewport_size({"width": 1400, "height": 2200})


def test_whole_kid_stage_and_neuron(server, page):
    for width, height in ((1400, 2600), (390, 5200)):  # tall enough for the whole page
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{server}/whole_kid")
        settle(page)
        stage = page.get_by_role("slider", name="Stage")
        before = stage.get_attribute("aria-valuetext")
        stage.focus()
        for _ in range(4):  # from the embedding, four stages up: block 0's LayerNorm 2
            page.keyboard.press("ArrowRight")
        settle(page)
        assert stage.get_attribute("aria-valuetext") != before
        expect(page.get_by_text("LayerNorm read the stream").first).to_be_visible()
        contexts = page.locator("[data-testid='stHtml']").first.inner_text()
        page.locator(".st-key-whole_neuron_0").get_by_role("combobox").click()
        page.get_by_role("option").nth(2).click()
        settle(page)
        assert page.locator("[data-testid='stHtml']").first.inner_text() != contexts
        no_exception(page)
        page.screenshot(path=SHOTS / f"whole_kid_{width}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.set_viewport_size({"width": 1400, "height": 2200})


def test_train_stop_resume_and_play(server, page):
    page.goto(f"{server}/train_live")
    settle(page)
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.locator("[data-testid='stExpander'] summary").first.click()
    # a small model, long enough to be stopped while it trains, short enough that the resumed
    # run soon finishes (the quick preset's takes minutes)
    for label, value in [("Steps", "2000"), ("Context (block size)", "16"), ("Width (n_embd)", "32")]:
        field = sidebar.get_by_role("spinbutton", name=label)
        field.fill(value)
        field.press("Enter")
    for label, value in [("Layers", "1"), ("Batch size", "8")]:
        field = sidebar.get_by_role("spinbutton", name=label)
        field.fill(value)
        field.press("Enter")
    settle(page)
    sidebar.get_by_role("button", name="Train", exact=True).click()
    # the address as the browser has it: Playwright's own record of it sometimes
    # misses the app's switch to another page
    page.wait_for_function("location.pathname.endsWith('/train_live')")
    progress = page.locator("[data-testid='stProgress']").first
    expect(progress).to_be_visible()
    bar = page.locator("[data-testid='stMain'] [data-testid='stProgress']").first
    # the subprocess needs a few seconds to start; then the bar must keep moving
    expect(bar).not_to_contain_text("step 0 of", timeout=60_000)
    first = bar.inner_text()
    page.wait_for_timeout(3000)
    assert bar.inner_text() != first, "the progress bar did not move"
    page.screenshot(path=SHOTS / "train_running.png", full_page=True)
    page.get_by_role("button", name="Stop").first.click()
    expect(page.get_by_text("It can be resumed below")).to_be_visible(timeout=60_000)
    no_exception(page)
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_text("Done:")).to_be_visible(timeout=240_000)
    settle(page)
    no_exception(page)
    page.screenshot(path=SHOTS / "train_done.png", full_page=True)
    # the finished run is in the sidebar's selector
    sidebar.locator("[data-testid='stSelectbox']").first.click()
    expect(page.get_by_role("option").filter(has_text="run-")).to_have_count(1)
    page.keyboard.press("Escape")

    page.goto(f"{server}/playground")
    settle(page)
    page.get_by_role("button", name="Write").click()
    settle(page)
    expect(page.get_by_text("characters/s")).to_be_visible()
    no_exception(page)
    page.screenshot(path=SHOTS / "playground_written.png", full_page=True)


class FirstVisits:
    """Each page's own address as the very first request of a fresh server of
    its own. A server's start and first script run (Python importing torch)
    take a core for seconds: a few servers start, and their pages are asked
    for, side by side, so that every core works."""

    SIDE_BY_SIDE = 4

    def __init__(self, browser, tmp: Path, kid: Path):
        self.browser, self.tmp, self.kid = browser, tmp, kid
        self.waiting = list(page_names())
        self.open = {}  # name: (its server, the tab that asked for its page)

    def visit(self, name):
        """The tab that asked a fresh server for this page (and that server)."""
        if name not in self.open:
            batch = [name] + [other for other in self.waiting if other != name][: self.SIDE_BY_SIDE - 1]
            servers = {}
            for other in batch:
                self.waiting.remove(other)
                folder = self.tmp / other
                folder.mkdir()
                servers[other] = Server(
                    folder, wait=False, PEEK_KID_DIR=str(self.kid), PEEK_RUNS_DIR=str(folder / "runs")
                )
            for other, server in servers.items():
                server.ready()
                tab = self.browser.new_page(viewport={"width": 1400, "height": 1200})
                tab.set_default_timeout(120_000)
                tab.goto(f"{server.base}/{other}")  # its first request: nothing has run st.navigation there
                self.open[other] = (server, tab)
        return self.open.pop(name)

    def close(self):
        for server, tab in self.open.values():
            tab.close()
            server.proc.kill()


@pytest.fixture(scope="module")
def first_visits(page, tiny_run, tmp_path_factory):
    visits = FirstVisits(page.context.browser, tmp_path_factory.mktemp("first_visits"), tiny_run)
    yield visits
    visits.close()


@pytest.mark.parametrize("name", page_names())
def test_no_page_opens_without_the_frame(name, first_visits):
    """A page file's own address, as the very first request a fresh server
    gets (before any visitor's script has run st.navigation, Streamlit serves
    a file of a pages/ folder on its own): what is drawn is drawn inside the
    frame, with its page config, its shared sidebar and a run chosen, at the
    address asked for (a page run without the frame runs it: ui.in_frame).
    (The browser is the module's: Playwright allows one per process.)"""
    assert (APP_PAGES / f"{name}.py").is_file()
    server, fresh = first_visits.visit(name)
    try:
        sidebar = fresh.locator("[data-testid='stSidebar']")
        # the frame's own sidebar, once it has run (a first visitor waits for Python to import torch)
        expect(sidebar.get_by_text("Run to look inside")).to_be_visible(timeout=120_000)
        expect(sidebar.get_by_role("combobox", name="Run to look inside")).to_have_value("kid")  # a run chosen
        expect(sidebar.locator("[data-testid='stSidebarNav']")).to_be_visible()  # st.navigation's list
        expect(fresh).to_have_title("peek: inside a tiny GPT")  # the frame's page config
        settle(fresh)
        assert fresh.evaluate("location.pathname") == f"/{PAGES[name]}"  # the page asked for, in the frame
        no_exception(fresh)
    finally:
        fresh.close()
        server.stop()


# --- what the person in the browser is told -------------------------------

# Words for someone at a terminal, never for the person in the browser.
TERMINAL_WORDS = ("python -m", "--data", "TINYLLM_DATA", "--out", "/tmp/", str(ROOT))


def assert_for_visitor(page):
    text = page.locator("[data-testid='stApp']").inner_text()
    for words in TERMINAL_WORDS:
        assert words not in text, f"{words!r} shown to a visitor:\n{text[:3000]}"


def open_sidebar(page):
    """At phone width the sidebar starts closed: open it."""
    if page.locator("[data-testid='stSidebar'][data-collapsed='false']").count() == 0:
        page.locator("[data-testid='stExpandSidebarButton']").click()
        page.wait_for_timeout(500)
    return page.locator("[data-testid='stSidebar']")


def open_training_form(page):
    sidebar = open_sidebar(page)
    summary = sidebar.locator("[data-testid='stExpander'] summary").first
    if sidebar.get_by_role("button", name="Train", exact=True).count() == 0:
        summary.click()
    return sidebar


def choose_run(page, name):
    open_sidebar(page).locator("[data-testid='stSelectbox']").first.click()
    page.get_by_role("option").filter(has_text=name).first.click()
    settle(page)


def fake_run(runs, name, progress, output):
    """A run folder as a run that never reached a checkpoint leaves it."""
    (runs / name).mkdir()
    (runs / name / "progress.json").write_text(json.dumps(progress))
    (runs / name / "train.out").write_text(output)


@pytest.mark.slow
def test_offline_training_and_unfinished_runs_speak_to_the_visitor(offline_server, offline_runs, page, tmp_path):
    """Item 1: no download, no command line: the form offers the upload; a
    failed or training run's chapters say so in words, never with a path."""
    page.set_viewport_size({"width": 1400, "height": 1600})
    page.goto(f"{offline_server}/train_live")
    settle(page)
    sidebar = open_training_form(page)
    sidebar.get_by_role("button", name="Train", exact=True).click()
    expect(sidebar.get_by_text("could not be downloaded")).to_be_visible(timeout=30_000)
    expect(sidebar.locator("[data-testid='stFileUploaderDropzone']")).to_be_visible()
    settle(page)
    no_exception(page)
    assert_for_visitor(page)
    page.screenshot(path=SHOTS / "offline_form_1400.png", full_page=True)
    # the upload it offers trains
    poem = tmp_path / "poem.txt"
    poem.write_text(make_text(60))
    sidebar.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(poem)
    steps = sidebar.get_by_role("spinbutton", name="Steps")
    steps.fill("50")
    sidebar.get_by_role("textbox", name="Run name").fill("offline-upload")
    sidebar.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function("location.pathname.endsWith('/train_live')")
    expect(page.get_by_text("Done:")).to_be_visible(timeout=240_000)

    fake_run(
        offline_runs,
        "broken",
        dict(status="failed", step=0, steps=4000),
        f"error: Could not download tinyshakespeare (refused). Pass --data PATH or set TINYLLM_DATA=PATH. "
        f"Or put the file at {offline_runs}/.cache/tinyshakespeare.txt yourself.\n",
    )
    fake_run(offline_runs, "busy", dict(status="running", step=10, steps=4000, pid=1), "")
    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 1600})
        page.goto(f"{offline_server}/attention")
        settle(page)
        choose_run(page, "broken")
        expect(page.get_by_text("failed").first).to_be_visible()
        no_exception(page)
        assert_for_visitor(page)
        page.screenshot(path=SHOTS / f"failed_run_chapter_{width}.png", full_page=True)
    page.goto(f"{offline_server}/playground")
    settle(page)
    assert_for_visitor(page)
    page.set_viewport_size({"width": 1400, "height": 1600})
    choose_run(page, "busy")
    expect(page.get_by_text("still training").first).to_be_visible()
    assert_for_visitor(page)
    page.set_viewport_size({"width": 1400, "height": 2200})


OWL = """The Owl and the Pussy-cat went to sea
In a beautiful pea-green boat,
They took some honey, and plenty of money,
Wrapped up in a five-pound note.
The Owl looked up to the stars above,
And sang to a small guitar,
O lovely Pussy! O Pussy my love,
What a beautiful Pussy you are,
You are, you are!
What a beautiful Pussy you are!
Pussy said to the Owl, You elegant fowl!
How charmingly sweet you sing!
O let us be married! too long we have tarried:
But what shall we do for a ring?
They sailed away, for a year and a day,
To the land where the Bong-Tree grows
And there in a wood a Piggy-wig stood
With a ring at the end of his nose.
"""


@pytest.fixture(scope="module")
def memorised_run(runs_root):
    """A run that learned a short poem by heart: its validation loss was
    lowest early, so the checkpoint it keeps is not its last step."""
    from helpers import tiny_configs

    from tinyllm.data import corpus_from_bytes
    from tinyllm.export import export_run
    from tinyllm.train import train

    run_dir = runs_root / "poem"
    poem = corpus_from_bytes(OWL.encode(), "owl.txt")
    summary = train(*tiny_configs(steps=120, eval_interval=10), poem, run_dir)
    export_run(run_dir)
    assert summary["best_step"] < summary["step"], summary  # the test needs a run that memorised
    return run_dir, summary


@pytest.mark.slow
def test_a_kept_checkpoint_before_the_last_step_is_said_everywhere(server, page, memorised_run):
    """Item 2: the sidebar and Meet the kid say which step was kept, and why."""
    _, summary = memorised_run
    kept = f"kept step {summary['best_step']:,} of {summary['step']:,}"
    page.goto(f"{server}/")
    settle(page)
    choose_run(page, "poem")
    expect(page.locator("[data-testid='stSidebar']").get_by_text(kept)).to_be_visible()
    expect(page.locator("[data-testid='stMain']").get_by_text(kept).first).to_be_visible()
    no_exception(page)
    page.screenshot(path=SHOTS / "meet_memorised.png", full_page=True)


@pytest.mark.slow
def test_the_sidebar_on_a_phone_while_training(server, runs_root, page):
    """Item 3: a wrong field is named beside Train; after Train the sidebar
    closes on a phone; its progress moves; after Stop it stops offering Stop."""
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(f"{server}/train_live")
    settle(page)
    sidebar = open_training_form(page)
    layers = sidebar.get_by_role("spinbutton", name="Layers")
    layers.fill("99")
    layers.press("Tab")
    sidebar.get_by_role("button", name="Train", exact=True).click()
    settle(page)
    expect(sidebar.locator("[data-testid='stAlert']").filter(has_text="Layers")).to_be_visible(timeout=10_000)
    page.screenshot(path=SHOTS / "form_invalid_390.png", full_page=True)
    layers.fill("2")
    layers.press("Tab")
    sidebar.get_by_role("spinbutton", name="Steps").fill("3000")
    sidebar.get_by_role("textbox", name="Run name").fill("phone")
    sidebar.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function("location.pathname.endsWith('/train_live')")
    settle(page)
    expect(page.locator("[data-testid='stSidebar'][data-collapsed='true']")).to_have_count(1, timeout=10_000)
    bar = page.locator("[data-testid='stMain'] [data-testid='stProgress']").first
    expect(bar).not_to_contain_text("step 0 of", timeout=60_000)
    page.screenshot(path=SHOTS / "train_live_390.png", full_page=True)
    sidebar = open_sidebar(page)
    line = sidebar.locator("[data-testid='stProgress']").first
    expect(line).to_contain_text("step")
    first = line.inner_text()
    page.wait_for_timeout(3000)
    assert line.inner_text() != first, "the sidebar's progress did not move"
    sidebar.get_by_role("button", name="Stop").click()
    expect(sidebar.get_by_role("button", name="Stop")).to_have_count(0, timeout=60_000)
    expect(page.get_by_text("It can be resumed below")).to_be_visible(timeout=60_000)
    no_exception(page)
    shutil.rmtree(runs_root / "phone")  # not offered for resuming to the tests after this one
    page.set_viewport_size({"width": 1400, "height": 2200})


@pytest.mark.slow
def test_a_visitor_keeps_their_runs_and_choice_after_a_reload(server, page, memorised_run):
    """Item 4: F5 keeps the run chosen in the sidebar and the visitor's own
    runs (they can still delete them); a deleted run leaves no ghost."""
    page.set_viewport_size({"width": 1400, "height": 1600})
    page.goto(f"{server}/train_live")
    settle(page)
    sidebar = open_training_form(page)
    sidebar.get_by_role("spinbutton", name="Steps").fill("3000")
    sidebar.get_by_role("textbox", name="Run name").fill("mine")
    sidebar.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_function("location.pathname.endsWith('/train_live')")
    stop = page.locator("[data-testid='stMain']").get_by_role("button", name="Stop")
    stop.click()
    expect(page.get_by_text("It can be resumed below")).to_be_visible(timeout=120_000)
    choose_run(page, "poem")
    page.reload()
    settle(page)
    expect(page.get_by_role("combobox", name="Run to look inside")).to_have_value("poem")
    main = page.locator("[data-testid='stMain']")
    expect(main.get_by_role("button", name="Delete")).to_be_visible()
    main.get_by_role("button", name="Delete").click()
    settle(page)
    expect(main.get_by_text("Run 'mine'")).to_have_count(0)
    expect(main.locator(".st-key-train_live_delete_name").filter(has_text="mine")).to_have_count(0)
    no_exception(page)
    page.set_viewport_size({"width": 1400, "height": 2200})
