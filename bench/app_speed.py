"""Server-side render time of every page, an attention slider move, and memory.

Uses Streamlit's AppTest (the real scripts, in this process) against a run
folder (the committed kid by default). Each page is rendered once to warm
the caches, then timed over several renders.

    python -m bench.app_speed [--run artifacts/kid] [--repeats 5]
"""

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / "artifacts" / "kid"), help="run folder to show")
    parser.add_argument("--repeats", type=int, default=5, help="timed renders per page")
    args = parser.parse_args()
    os.environ["PEEK_KID_DIR"] = str(Path(args.run).resolve())
    from streamlit.testing.v1 import AppTest

    from ui import page_names

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.run()
    print(f"{'page':<14}{'median ms':>10}{'max ms':>9}")
    for page in page_names():
        at.switch_page(f"pages/{page}.py")
        at.run()  # warm the caches
        assert not at.exception, at.exception
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            at.run()
            times.append((time.perf_counter() - t0) * 1000)
        print(f"{page:<14}{statistics.median(times):>10.0f}{max(times):>9.0f}")

    at.switch_page("pages/attention.py").run()
    times = []
    for position in range(10, 10 + args.repeats * 2):
        t0 = time.perf_counter()
        at.slider(key="attention_query").set_value(position).run()
        times.append((time.perf_counter() - t0) * 1000)
    assert not at.exception
    print(f"attention query-slider move: median {statistics.median(times):.0f} ms, max {max(times):.0f} ms")
    at.switch_page("pages/whole_kid.py").run()
    stages = at.select_slider(key="whole_stage").options
    moves = [("stage", "whole_stage", "select_slider", stages[i % len(stages)]) for i in range(3, 3 + args.repeats)]
    moves += [("position", "whole_pos", "slider", p) for p in range(20, 20 + args.repeats)]
    redraws = []
    for what, key, kind, value in moves:
        t0 = time.perf_counter()
        getattr(at, kind)(key=key).set_value(value).run()
        redraws.append((what, (time.perf_counter() - t0) * 1000))
    assert not at.exception
    for what in ("stage", "position"):
        ms = [t for w, t in redraws if w == what]
        print(
            f"whole kid {what} change (whole script; in the browser only the fragment reruns): "
            f"median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process (torch, streamlit, the kid, every page): {rss:.0f} MB")


if __name__ == "__main__":
    main()
