"""How long checking a learner's Head takes: in the CLI, in the app, and the comparison itself.

    python -m bench.check_speed [--checkpoint artifacts/kid/model.pt] [--repeats 3]

- the comparison: headcheck.check_head in this process (reading the kid
  included), every step at both lengths and the whole kid's loss;
- the CLI: `python -m tinyllm check-head FILE`, a fresh Python that imports
  PyTorch and then checks, as a learner runs it;
- the app: sandbox.check_in_sandbox, a child forked from a warm helper that
  has PyTorch loaded already (the first check also waits for the helper).

Each is timed with the exercise solved, with one mistake in it, and with
the slowest correct Head of tests/learner_heads (a loop over positions).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the solved exercise and its planted mistakes

from head_solutions import SOLUTION, with_mistake  # noqa: E402

from tinyllm.exercise import load_head_class  # noqa: E402
from tinyllm.headcheck import check_head  # noqa: E402
from tinyllm.sandbox import check_in_sandbox  # noqa: E402

HEADS = {
    "solved": SOLUTION,
    "no mask": with_mistake("no_mask"),
    "a loop": (ROOT / "tests" / "learner_heads" / "loop_over_positions.py").read_text(),
}


def median(times) -> str:
    return f"{statistics.median(times):.2f} s (max {max(times):.2f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "artifacts" / "kid" / "model.pt"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    check_in_sandbox(SOLUTION, args.checkpoint)  # start the app's warm helper once, as a server does
    for name, code in HEADS.items():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "my_head.py"
            path.write_text(code)
            comparison, cpu, cli = [], [], []
            for _ in range(args.repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                check_head(load_head_class(path), args.checkpoint)
                comparison.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)  # all threads: what the check costs on a shared machine
                t0 = time.perf_counter()
                command = [sys.executable, "-m", "tinyllm", "check-head", str(path), "--checkpoint", args.checkpoint]
                done = subprocess.run([*command, "--json"], cwd=ROOT, capture_output=True, text=True)
                cli.append(time.perf_counter() - t0)
                json.loads(done.stdout)  # it did report
        app = [check_in_sandbox(code, args.checkpoint)["wall_s"] for _ in range(args.repeats)]
        print(
            f"{name:<8} comparison {median(comparison)}, CPU {statistics.median(cpu):.2f} s; "
            f"CLI {median(cli)}; app (sandbox) {median(app)}"
        )
    print(f"(load average while measured: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
