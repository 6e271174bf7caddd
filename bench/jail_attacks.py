"""Attacks on the visitors' code jail: what each one gets, and the memory it holds.

    PEEK_VISITOR_CODE=on python -m bench.jail_attacks [--checkpoint artifacts/kid/model.pt]

Each attack is a line planted at the top of the solved Head's forward and
checked through check_in_sandbox, as the app does. Printed per attack: what
the code printed (got / refused), the check's wall time, and the peak
resident memory of every process below this one (sampled every 50 ms from
outside, so it counts processes that escape the check's own bookkeeping),
then any process left behind after the check.
"""

import argparse
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from head_solutions import SOLUTION  # noqa: E402

from tinyllm.sandbox import check_in_sandbox, process_tree  # noqa: E402


def planted(code: str) -> str:
    first = "        k = self.key(x)  # (B, T, hs)\n"
    once = "if not globals().get('_done'):\n    globals()['_done'] = True\n" + "".join(
        f"    {line}\n" for line in code.splitlines()
    )
    return SOLUTION.replace(first, "".join(f"        {line}\n" for line in once.splitlines()) + first)


def attempt(name: str, body: str) -> str:
    return (
        f"try:\n    {body}\n    print('{name}: got', repr(_)[:60])\n"
        f"except BaseException as e:\n    print('{name}: refused', type(e).__name__)"
    )


def rss_mb(pids) -> float:
    total = 0
    for p in pids:
        try:
            line = next(x for x in Path(f"/proc/{p}/status").read_text().splitlines() if x.startswith("VmRSS:"))
            total += int(line.split()[1])
        except (OSError, StopIteration):
            pass
    return total / 1024


def survivors() -> list:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "peek-survivor":
                found.append(int(pid))
        except OSError:
            pass
    return found


ATTACKS = {
    "read secrets.toml": attempt("read", f"_ = open({str(ROOT / '.streamlit' / 'secrets.toml')!r}).read()"),
    "read the project": attempt("read", f"_ = open({str(ROOT / 'pyproject.toml')!r}).read()"),
    "server's environ": attempt("environ", "_ = open('/proc/{server}/environ').read()"),
    "parent's environ": attempt("environ", "import os; _ = open(f'/proc/{os.getppid()}/environ').read()"),
    "write pages/": attempt("write", f"_ = open({str(ROOT / 'pages' / 'jail_probe.py')!r}, 'w').write('x')"),
    "network 127.0.0.1": attempt("connect", "import socket; _ = socket.create_connection(('127.0.0.1', {port}), 2)"),
    "setsid+double fork x10": (
        "import os, time\nfor i in range(10):\n    try:\n        if os.fork() == 0:\n            os.setsid()\n"
        "            if os.fork() == 0:\n                open('/proc/self/comm', 'w').write('peek-survivor')\n"
        "                time.sleep(30)\n            os._exit(0)\n        print('fork: got')\n"
        "    except OSError:\n        print('fork: refused')"
    ),
    "4 children x 0.8 GB": (
        "import os, time, torch\nfor i in range(4):\n    try:\n        if os.fork() == 0:\n"
        "            open('/proc/self/comm', 'w').write('peek-survivor')\n"
        "            a = torch.ones(800 * 2**20, dtype=torch.uint8); time.sleep(4); os._exit(0)\n"
        "        print('child: got')\n    except OSError:\n        print('child: refused')\ntime.sleep(4)"
    ),
    "SIGSTOP the parent": attempt("stop", "import os, signal; _ = os.getppid(); os.kill(_, signal.SIGSTOP)"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "artifacts" / "kid" / "model.pt"))
    parser.add_argument("--only", help="run only the attacks whose name contains this")
    args = parser.parse_args()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    check_in_sandbox(SOLUTION, args.checkpoint)  # warm (the old helper imports torch once)
    for name, code in ATTACKS.items():
        if args.only and args.only not in name:
            continue
        code = code.replace("{server}", str(os.getpid())).replace("{port}", str(listener.getsockname()[1]))
        peak, done = [0.0], threading.Event()

        def sample(peak=peak, done=done):
            while not done.is_set():
                peak[0] = max(peak[0], rss_mb(process_tree(os.getpid())[1:]) + rss_mb(survivors()))
                time.sleep(0.05)

        watcher = threading.Thread(target=sample)
        watcher.start()
        started = time.perf_counter()
        report = check_in_sandbox(planted(code), args.checkpoint)
        wall = time.perf_counter() - started
        left = survivors()
        done.set()
        watcher.join()
        after = time.perf_counter()
        follow = check_in_sandbox(SOLUTION, args.checkpoint)["ok"]  # does the next visitor's check work?
        follow_s = time.perf_counter() - after
        printed = sorted(set(report.get("printed", "").split("\n")) - {""})
        print(
            f"{name:24} {'; '.join(printed)[:90]:90} check {wall:5.1f} s, peak {peak[0]:6.0f} MB, "
            f"left behind {len(left)}, next check {'ok' if follow else 'FAILED'} in {follow_s:.1f} s"
        )
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # it ended on its own meanwhile
                pass
    (ROOT / "pages" / "jail_probe.py").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
