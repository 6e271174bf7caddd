"""What a reader waits for in a real browser: Debian's Chromium, driven by
Playwright, against a real server showing the committed kid.

For each control it times the moment of the key press or click to the
moment the app has finished running (the script, or only the fragment
that holds the control) and the page has painted.

    python -m bench.browser_speed [--run artifacts/kid] [--repeats 5] [--only training]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from tinyllm.export import read_chapter

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def start_server(run: Path, port: int, wrap=(), env=None):
    """The app's server showing `run`; wrap: a command to start it under
    (taskset), env: variables to add."""
    env = dict(os.environ, PEEK_KID_DIR=str(run.resolve()), **(env or {}))
    proc = subprocess.Popen(
        [
            *wrap,
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "streamlit_app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",  # as deployed: editing the code while it runs changes nothing
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not start")


# Added to every page before it loads: counts the messages that come from the
# server, and notes when the last one came, so that a watcher can tell that a
# rerun has come back.
COUNT_MESSAGES = """(() => {
  window.peekMessages = 0;
  window.peekLastMessage = 0;
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", () => {
        window.peekMessages += 1;
        window.peekLastMessage = performance.now();
      });
    }
  };
})()"""

# Installed before an action: a promise that settles, with the milliseconds
# since it was installed, once the app has run (its script state went to
# "running") and is idle again, two frames later (painted). Waiting for the
# state to change, not merely for "idle", matters: a slider sends its new
# value after a short pause, and until then the app still looks idle.
WATCH_RERUN = """() => {
  // looked up at each change, in case the app's element is replaced
  const scriptState = () => document.querySelector("[data-testid='stApp']")?.getAttribute("data-test-script-state");
  const start = performance.now();
  const messagesBefore = window.peekMessages;
  window.peekRerun = new Promise((resolve) => {
    let ran = false;
    let painted = start;
    const finish = (at) => {
      observer.disconnect();
      clearInterval(answeredQuietly);
      clearTimeout(giveUp);
      resolve(at - start);
    };
    const afterPaint = (then) => requestAnimationFrame(() => requestAnimationFrame(() => then(performance.now())));
    const seen = (changes) => {
      const state = scriptState();
      // A quick rerun can go to "running" and back before the observer is
      // called: the state it would read is already "notRunning", so it reads
      // each change's old value too.
      const wasRunning = changes.some(
        (change) => change.attributeName === "data-test-script-state" && change.oldValue === "running",
      );
      if (state === "running" || wasRunning) ran = true;
      if (state !== "notRunning") return;
      if (ran) {
        observer.disconnect();
        afterPaint(finish);
      } else {
        afterPaint((at) => { painted = at; });
      }
    };
    // A rerun whose messages all came while the browser was busy is drawn in
    // one go: the state never shows "running" (and a rerun that draws the
    // same page changes nothing at all). Such a rerun ends with the last
    // message or page change, once the page has been still for a second.
    const answeredQuietly = setInterval(() => {
      const last = Math.max(painted, window.peekLastMessage);
      const answered = window.peekMessages > messagesBefore;
      if (!ran && answered && scriptState() === "notRunning" && performance.now() - last > 1000) finish(last);
    }, 100);
    const observer = new MutationObserver(seen);
    observer.observe(document.body, {
      attributes: true, attributeOldValue: true, childList: true, characterData: true, subtree: true,
    });
    const giveUp = setTimeout(() => {
      observer.disconnect();
      clearInterval(answeredQuietly);
      resolve(null);
    }, 60000);
  });
}"""


def timed(page, act) -> float:
    """Milliseconds from `act()` until the app has rerun and painted, on a
    page opened by launch() (whose message counter the watcher reads)."""
    page.evaluate(WATCH_RERUN)
    act()
    took = page.evaluate("window.peekRerun")
    if took is None:
        state = page.get_attribute("[data-testid='stApp']", "data-test-script-state")
        raise RuntimeError(f"the app did not rerun within 60 s (its script state now: {state})")
    return took


def launch(playwright, height=2600):
    """Chromium, headless, with one page of the given height open."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_page(viewport={"width": 1400, "height": height})
    page.add_init_script(COUNT_MESSAGES)
    page.set_default_timeout(120_000)
    return browser, page


def slider_moves(page, url, slider_name, key="ArrowLeft", repeats=5) -> list:
    """Open url, then time `repeats` presses of key on the named slider."""
    page.goto(url)
    page.wait_for_selector(IDLE)
    slider = page.get_by_role("slider", name=slider_name)
    times = []
    for _ in range(repeats):
        slider.focus()
        times.append(timed(page, lambda: page.keyboard.press(key)))
    return times


PASSAGE = ".st-key-training_passage span"  # the Training chapter's coloured passage, one span per character


def training_scrubber(page, url, width, stops) -> list:
    """Open the Training chapter `width` pixels wide at its last step and time
    a move to each of the `stops` earlier snapshots, one stop at a time, down
    to the first; each move must recolour the passage."""
    page.set_viewport_size({"width": width, "height": page.viewport_size["height"]})
    page.goto(url)
    page.wait_for_selector(IDLE)
    page.wait_for_selector(PASSAGE)
    slider = page.get_by_role("slider", name="Training step")

    def colours():
        return page.eval_on_selector_all(PASSAGE, "spans => spans.map((s) => s.style.background).join()")

    times, before = [], colours()
    for _ in range(stops):
        slider.focus()
        times.append(timed(page, lambda: page.keyboard.press("ArrowLeft")))
        after = colours()
        if after == before:
            raise RuntimeError("a move of the scrubber left the passage's colours as they were")
        before = after
    page.set_viewport_size({"width": 1400, "height": page.viewport_size["height"]})
    return times


def report(name, times):
    print(f"{name:<40}median {statistics.median(times):>5.0f} ms   max {max(times):>5.0f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / "artifacts" / "kid"), help="run folder to show")
    parser.add_argument("--repeats", type=int, default=5, help="timed moves per control")
    parser.add_argument("--port", type=int, default=8631)
    parser.add_argument("--only", choices=["training"], help="time only this chapter's controls")
    args = parser.parse_args()
    stops = len(read_chapter(args.run, "evolution")["snapshots"]) - 1  # moves from the last snapshot to the first
    server = start_server(Path(args.run), args.port)
    base = f"http://127.0.0.1:{args.port}"
    try:
        with sync_playwright() as p:
            browser, page = launch(p)
            print(f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            if args.only == "training":
                for width in (1400, 390):
                    times = training_scrubber(page, f"{base}/training", width, stops)
                    report(f"training: every stop, {width} px", times)
                browser.close()
                return

            page.goto(f"{base}/whole_kid")
            page.wait_for_selector(IDLE)
            page.goto(f"{base}/whole_kid")  # the second visit: caches warm
            t0 = time.perf_counter()
            page.wait_for_selector(IDLE)
            page.wait_for_selector("[data-testid='stVegaLiteChart']")
            print(f"{'whole kid: open (warm)':<40}{(time.perf_counter() - t0) * 1000:>12.0f} ms")
            stage = page.get_by_role("slider", name="Stage")
            position = page.get_by_role("slider", name="Position")
            for name, slider in (("whole kid: next stage", stage), ("whole kid: next position", position)):
                times = []
                for _ in range(args.repeats):
                    slider.focus()
                    times.append(timed(page, lambda: page.keyboard.press("ArrowRight")))
                report(name, times)
            # a click on a stage's row in the overview chart above the diagram
            overview = page.locator(".st-key-whole_overview [data-testid='stVegaLiteChart']").bounding_box()
            times = []
            for i in range(args.repeats):
                y = overview["y"] + overview["height"] * (0.2 + 0.6 * i / max(1, args.repeats - 1))
                times.append(timed(page, lambda y=y: page.mouse.click(overview["x"] + overview["width"] * 0.6, y)))
            report("whole kid: click a stage (overview)", times)
            times = []
            for _ in range(args.repeats):
                # the next neuron of the list, picked with the keyboard: a click
                # on an option of the opening list sometimes missed it
                page.locator("[class*='st-key-whole_neuron_']").get_by_role("combobox").click()
                page.keyboard.press("ArrowDown")
                times.append(timed(page, lambda: page.keyboard.press("Enter")))
            report("whole kid: another neuron", times)

            report(
                "attention: query slider",
                slider_moves(page, f"{base}/attention", "Query position", repeats=args.repeats),
            )
            report(
                "training: step scrubber",
                slider_moves(page, f"{base}/training", "Training step", repeats=args.repeats),
            )
            report("training: every stop, 390 px", training_scrubber(page, f"{base}/training", 390, stops))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
