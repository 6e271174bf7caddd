"""A rehearsal of Streamlit Community Cloud: the real server on one CPU core
(taskset), every page in Chromium, the attention slider, the training
scrubber, the playground, and a quick training run with the playground used
while it trains. It samples the resident memory (RSS) of the server and of
everything it started (a training run is a child process: on Cloud it counts
against the same container) and prints the peaks against Cloud's smallest
tier, 690 MB, with the timings.

    python -m bench.cloud_rehearsal [--cores 0] [--steps 4000]

--cores takes taskset's list ("0": one core, as Cloud gives; "all": no pinning).
"""

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.browser_speed import IDLE, launch, slider_moves, start_server, timed
from ui import page_names

ROOT = Path(__file__).resolve().parent.parent
CLOUD_MB = 690  # the smallest memory Community Cloud gives an app


def memory_mb(pid: int, field: str) -> float:
    """Rss: the process's resident pages; Pss: the same, with each page shared
    by several processes (torch's libraries) split between them, so that a
    sum over processes counts it once, as the container's memory does."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return children + [grandchild for child in children for grandchild in descendants(child)]


class MemoryWatch(threading.Thread):
    """Samples, every 0.2 s, the server's RSS, and the server's and its
    children's RSS and PSS summed."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.running = pid, True
        self.peaks = dict(server=0.0, total_rss=0.0, total_pss=0.0)

    def run(self):
        while self.running:
            processes = [self.pid, *descendants(self.pid)]
            now = dict(
                server=memory_mb(self.pid, "Rss"),
                total_rss=sum(memory_mb(p, "Rss") for p in processes),
                total_pss=sum(memory_mb(p, "Pss") for p in processes),
            )
            self.peaks = {k: max(v, now[k]) for k, v in self.peaks.items()}
            time.sleep(0.2)


def median_ms(times) -> str:
    return f"median {statistics.median(times):>6.0f} ms   max {max(times):>6.0f} ms"


def write_500(page) -> float:
    """Milliseconds for the playground to write 500 characters (Write to painted)."""
    t0 = time.perf_counter()
    page.get_by_role("button", name="Write").click()
    page.wait_for_timeout(30)
    page.wait_for_selector(IDLE)
    return (time.perf_counter() - t0) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", default="0", help="taskset's CPU list for the server, or 'all'")
    parser.add_argument("--steps", type=int, default=4000, help="steps of the quick run trained from the sidebar")
    parser.add_argument("--port", type=int, default=8641)
    args = parser.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="rehearsal-runs-"))
    wrap = [] if args.cores == "all" else ["taskset", "-c", args.cores]
    env = {"PEEK_RUNS_DIR": str(runs)}
    if "TINYLLM_DATA" not in os.environ:
        env["TINYLLM_DATA"] = str(ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt")
    t0 = time.perf_counter()
    server = start_server(ROOT / "artifacts" / "kid", args.port, wrap=wrap, env=env)
    print(f"server on cores {args.cores}: up in {time.perf_counter() - t0:.1f} s")
    watch = MemoryWatch(server.pid)
    watch.start()
    base = f"http://127.0.0.1:{args.port}"
    try:
        with sync_playwright() as p:
            browser, page = launch(p, height=2200)

            first, again = {}, {}
            for visit in (first, again):  # the first visit fills the caches
                for name in page_names():
                    t0 = time.perf_counter()
                    page.goto(f"{base}/{'' if name == 'meet' else name}")
                    page.wait_for_timeout(30)
                    page.wait_for_selector(IDLE)
                    visit[name] = (time.perf_counter() - t0) * 1000
            for name in page_names():
                print(f"page {name:<22}first {first[name]:>6.0f} ms   again {again[name]:>6.0f} ms")
            # a page switch as a reader makes it: a click in the sidebar, same session
            switches = []
            for name in page_names()[::-1] + page_names():
                link = page.locator(f"[data-testid='stSidebarNav'] a[href$='/{'' if name == 'meet' else name}']")
                switches.append(timed(page, link.first.click))
            print(f"{'page switch (sidebar click)':<27}{median_ms(switches)}")

            print(f"{'attention slider':<27}{median_ms(slider_moves(page, f'{base}/attention', 'Query position'))}")
            print(f"{'training scrubber':<27}{median_ms(slider_moves(page, f'{base}/training', 'Training step'))}")

            page.goto(f"{base}/playground")
            page.wait_for_selector(IDLE)
            idle = [write_500(page) for _ in range(3)]
            print(f"{'playground, 500 chars':<27}{median_ms(idle)}")

            sidebar = page.locator("[data-testid='stSidebar']")
            sidebar.locator("[data-testid='stExpander'] summary").first.click()
            page.wait_for_selector(IDLE)
            sidebar.get_by_role("spinbutton", name="Steps").fill(str(args.steps))
            t_train = time.perf_counter()
            sidebar.get_by_role("button", name="Train").click()
            # the address as the browser has it: Playwright's own record of it sometimes
            # misses the app's switch to another page
            page.wait_for_function("location.pathname.endsWith('/train_live')")
            page.wait_for_timeout(8000)  # the run has started its steps
            page.goto(f"{base}/playground")
            page.wait_for_selector(IDLE)
            busy = [write_500(page) for _ in range(3)]
            print(
                f"{'playground while training':<27}{median_ms(busy)}"
                f"   ({statistics.median(idle) / statistics.median(busy):.0%} of idle speed)"
            )
            page.goto(f"{base}/train_live")
            page.get_by_text("Done:").wait_for(timeout=1_800_000)
            print(f"quick run ({args.steps:,} steps, then export): {time.perf_counter() - t_train:.0f} s")
            browser.close()
    finally:
        watch.running = False
        server.terminate()
        server.wait(timeout=30)
    peaks = watch.peaks
    print(
        f"peak memory: server RSS {peaks['server']:.0f} MB; server + training: "
        f"RSS {peaks['total_rss']:.0f} MB, PSS {peaks['total_pss']:.0f} MB (shared pages once)"
    )
    for what, mb in (("the server", peaks["server"]), ("server + training (PSS)", peaks["total_pss"])):
        print(f"{what}: {'within' if mb < CLOUD_MB else 'OVER'} Cloud's smallest tier ({CLOUD_MB} MB)")


if __name__ == "__main__":
    main()
