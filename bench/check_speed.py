"""How long checking a learner's Head takes: the comparison itself, and in the sandbox.

    python -m bench.check_speed [--checkpoint artifacts/kid/model.pt] [--repeats 5]

The comparison (headcheck.check_head, in this process) is what the checker
costs; the sandbox adds a fresh Python that imports PyTorch, once per check.
Both are timed with the exercise solved and with one mistake in it.
"""

import argparse
import statistics
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "artifacts" / "kid" / "model.pt"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for name, code in [("solved", SOLUTION), ("no mask", with_mistake("no_mask"))]:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "my_head.py"
            path.write_text(code)
            in_process = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                check_head(load_head_class(path), args.checkpoint)
                in_process.append(time.perf_counter() - t0)
        sandboxed = [check_in_sandbox(code, args.checkpoint)["wall_s"] for _ in range(args.repeats)]
        print(
            f"{name:<8} comparison {statistics.median(in_process):.3f} s median; "
            f"in the sandbox {statistics.median(sandboxed):.2f} s median (max {max(sandboxed):.2f})"
        )


if __name__ == "__main__":
    main()
