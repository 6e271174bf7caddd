"""Several visitors at once while a run trains: the server's peak memory,
the errors they met and how long their page switches took.

One visitor starts a quick training run from the sidebar; then N visitors,
each its own Chromium page in its own thread, click through every page of
the sidebar for a while. A page that shows an exception, or a switch that
does not finish, is an error.

    python -m bench.visitors_load [--visitors 5 10] [--seconds 60]
"""

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.browser_speed import IDLE, launch, start_server, timed
from bench.cloud_rehearsal import MemoryWatch
from ui import page_names

ROOT = Path(__file__).resolve().parent.parent


def visitor(base: str, seconds: float, times: list, errors: list):
    with sync_playwright() as p:
        browser, page = launch(p, height=1600)
        page.set_default_timeout(60_000)
        try:
            page.goto(base)
            page.wait_for_selector(IDLE)
        except Exception as e:  # the first page never came
            errors.append(f"first page: {type(e).__name__}")
            browser.close()
            return
        names, end, i = page_names(), time.time() + seconds, 0
        while time.time() < end:
            name = names[i % len(names)]
            i += 1
            link = page.locator(f"[data-testid='stSidebarNav'] a[href$='/{'' if name == 'meet' else name}']")
            try:
                times.append(timed(page, link.first.click))
                if page.locator("[data-testid='stException']").count():
                    errors.append(f"{name}: an exception on the page")
            except Exception as e:  # a switch that never finished
                errors.append(f"{name}: {type(e).__name__}")
        browser.close()


def start_training(base: str, steps: int):
    with sync_playwright() as p:
        browser, page = launch(p, height=2200)
        page.goto(base)
        page.wait_for_selector(IDLE)
        sidebar = page.locator("[data-testid='stSidebar']")
        sidebar.locator("[data-testid='stExpander'] summary").first.click()
        page.wait_for_selector(IDLE)
        sidebar.get_by_role("spinbutton", name="Steps").fill(str(steps))
        sidebar.get_by_role("button", name="Train").click()
        # the address as the browser has it: Playwright's own record of it sometimes
        # misses the app's switch to another page
        page.wait_for_function("location.pathname.endsWith('/train_live')")
        browser.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--seconds", type=float, default=60, help="how long each crowd browses")
    parser.add_argument(
        "--steps", type=int, default=20000, help="the training run's steps (it must outlast the crowds)"
    )
    parser.add_argument("--port", type=int, default=8651)
    args = parser.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="load-runs-"))
    server = start_server(
        ROOT / "artifacts" / "kid", args.port, env={"PEEK_RUNS_DIR": str(runs), "PEEK_MAX_STEPS": str(args.steps)}
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        start_training(base, args.steps)
        for n in args.visitors:
            watch = MemoryWatch(server.pid)
            watch.start()
            times, errors = [], []
            crowd = [threading.Thread(target=visitor, args=(base, args.seconds, times, errors)) for _ in range(n)]
            for thread in crowd:
                thread.start()
            for thread in crowd:
                thread.join()
            watch.running = False
            times.sort()
            times = times or [float("nan")]
            p50, p95 = statistics.median(times), times[int(0.95 * (len(times) - 1))]
            print(
                f"{n:>2} visitors, {args.seconds:.0f} s, a run training: {len(times)} page switches, "
                f"{len(errors)} errors; switch p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {times[-1]:.0f} ms; "
                f"peak RSS server {watch.peaks['server']:.0f} MB, with training (PSS) {watch.peaks['total_pss']:.0f} MB"
            )
            for error in errors[:5]:
                print("   ", error)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
