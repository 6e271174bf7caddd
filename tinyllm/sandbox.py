"""Running a visitor's code: a separate process with limits, never the server.

The app's "Write attention yourself" page runs the code a visitor typed.
That is a security decision, made by one setting, PEEK_VISITOR_CODE:

  on    run visitors' code (the person deploying chose to)
  off   never run it: the page offers the template and the CLI commands
  auto  (the default) run it only for a visitor on the server's own machine:
        a browser connected over loopback, with no proxy in between. That is
        a learner's `streamlit run` on their laptop; a deployment's visitors
        come from elsewhere, or through a proxy that says so.

When it runs, it runs in a child process (forked from a helper that was
started with nothing of the server's environment): a throw-away working
directory, an empty environment (no secrets), at most `seconds` of time,
`memory_mb` of memory and `output_kb` of printing. An endless loop, a huge allocation
or an exit() in the code costs its author a clear message and nothing else.
This is not a jail: the child can read what the server's user can read,
which is why public deployments keep the setting off.
"""

import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tinyllm.errors import TinyLLMError
from tinyllm.exercise import CodeProblem, HeadCodeError, load_head_class

PACKAGE_PARENT = Path(__file__).resolve().parent.parent  # where the helper imports tinyllm from

SETTING = "PEEK_VISITOR_CODE"
CHOICES = ("auto", "on", "off")
HEAD_FILE = "my_head.py"
REPORT_FILE = "report.json"
OUTPUT_FILE = "output.txt"


@dataclass
class SandboxLimits:
    seconds: float = 20.0  # wall clock, the child's start (importing torch) included
    memory_mb: int = 1500  # address space: importing torch needs about 1 GB of it
    output_kb: int = 64  # what the child may print before it is stopped


def visitor_code_setting() -> str:
    value = os.environ.get(SETTING, "auto").strip().lower() or "auto"
    return value if value in CHOICES else "off"  # a setting we cannot read: the safe side


def visitor_code_allowed(setting: str, from_loopback: bool, via_proxy: bool) -> tuple:
    """(allowed, the reason in a visitor's words)."""
    if setting == "on":
        return True, f"This server runs visitors' code ({SETTING}=on), in a separate process with limits."
    if setting == "off":
        return False, f"This server does not run visitors' code ({SETTING}=off)."
    if from_loopback and not via_proxy:
        return True, ("You are on the server's own machine, so your code runs here, in a separate process with limits.")
    return False, (
        f"This is a shared deployment: it does not run visitors' code unless the person who deployed "
        f"it sets {SETTING}=on."
    )


# --------------------------------------------------------------------------
# The server's side: one warm helper, one fresh child per check
#
# Starting Python and importing PyTorch takes about two seconds; the check
# itself a tenth of that. So the server starts one helper process, once, with
# an empty environment and nothing of the server in it, which imports PyTorch
# and then waits. For each check it forks a child (a copy of itself, PyTorch
# already loaded), which takes on the limits and runs the visitor's code.


def limit_child(limits: SandboxLimits):
    """In a child, before any visitor's code: the kernel enforces these."""
    memory = limits.memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(limits.seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    # the report and the captured output are the only files it needs to write
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_kb * 1024 + 2**20,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Helper:
    """The warm helper process, shared by every visitor of a server; one
    check at a time (a check is a fraction of a second)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.proc = None

    def start(self):
        boot = (
            f"import sys; sys.path.insert(0, {str(PACKAGE_PARENT)!r}); "
            "from tinyllm.sandbox import helper_main; helper_main()"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", boot],
            cwd=tempfile.gettempdir(),
            env={},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )

    def ask(self, request: dict, timeout: float) -> dict | None:
        with self.lock:
            for _ in range(2):  # a helper that died since the last check is started again, once
                if self.proc is None or self.proc.poll() is not None:
                    self.start()
                try:
                    self.proc.stdin.write(json.dumps(request) + "\n")
                    self.proc.stdin.flush()
                except BrokenPipeError:
                    self.proc = None
                    continue
                answer = read_line(self.proc.stdout, timeout)
                if answer is not None:
                    return json.loads(answer)
                self.proc.kill()  # no answer in time: the helper itself is stuck
                self.proc.wait()
                self.proc = None
            return None


def read_line(stream, timeout: float) -> str | None:
    ready, _, _ = select.select([stream], [], [], timeout)
    line = stream.readline() if ready else ""
    return line or None


HELPER = Helper()


def check_in_sandbox(code: str, checkpoint, layer=0, head=0, limits: SandboxLimits | None = None) -> dict:
    """Check a visitor's Head (its source text) in a limited child process.
    Returns the checker's report (headcheck), with `printed` (what the code
    printed) and `wall_s` added."""
    limits = limits or SandboxLimits()
    started = time.perf_counter()
    request = dict(code=code, checkpoint=str(Path(checkpoint).resolve()), layer=layer, head=head, limits=asdict(limits))
    # the first check also waits for the helper to import PyTorch
    report = HELPER.ask(request, timeout=limits.seconds + 30)
    if report is None:
        from tinyllm.headcheck import problem_report

        report = problem_report(CodeProblem("exception", "The checker did not answer; please try again."))
        report["printed"] = ""
    report["wall_s"] = round(time.perf_counter() - started, 2)
    return report


def read_report(path: Path) -> dict | None:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) and "steps" in report else None


def ended_without_report(returncode, timed_out, limits, printed) -> dict:
    """What to tell the visitor when the child died before writing its report."""
    from tinyllm.headcheck import problem_report

    if timed_out or returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        message = (
            f"Your code was stopped after {limits.seconds:g} s. Does it loop for ever? "
            "(The check itself takes about two seconds.)"
        )
    elif returncode == -signal.SIGXFSZ:
        message = f"Your code printed more than {limits.output_kb} KB, so it was stopped."
    else:
        tail = printed.strip().splitlines()[-1:] or ["nothing"]
        message = (
            f"The check ended before it could report (exit code {returncode}; last output: {tail[0]}). "
            "Does your code call os._exit() or end the process?"
        )
    return problem_report(CodeProblem("exception", message))


# The quick preset needs about 2 CPU-minutes; its checkpoints count as output (the file-size limit).
TRAIN_LIMITS = SandboxLimits(seconds=900, memory_mb=4000, output_kb=64 * 1024)
PASSED_ON = ("TINYLLM_DATA", "TINYLLM_CACHE")  # where the corpus lies: paths, no secrets


def train_in_sandbox(limits: SandboxLimits = TRAIN_LIMITS) -> dict:
    """Popen arguments for a training process that runs a visitor's Head: the
    same limits as a check (CPU seconds stand in for wall time, since a run
    may wait for the processor), and an environment holding only where the
    corpus lies."""
    env = {k: os.environ[k] for k in PASSED_ON if k in os.environ}
    return dict(env=env, start_new_session=True, preexec_fn=lambda: limit_child(limits))


# --------------------------------------------------------------------------
# The helper's side


def helper_main():
    """The helper: import PyTorch and the checker once, then fork one limited
    child per request read from stdin, and answer each with one JSON line."""
    import torch  # noqa: F401  (loaded here once, so that every child has it)

    import tinyllm.headcheck  # noqa: F401

    for line in sys.stdin:
        request = json.loads(line)
        report = run_child(request, SandboxLimits(**request["limits"]))
        sys.stdout.write(json.dumps(report) + "\n")
        sys.stdout.flush()


def run_child(request: dict, limits: SandboxLimits) -> dict:
    with tempfile.TemporaryDirectory(prefix="peek-head-") as tmp:
        workdir = Path(tmp)
        (workdir / HEAD_FILE).write_text(request["code"], encoding="utf-8")
        pid = os.fork()
        if pid == 0:  # the child: never returns
            child_main(workdir, request, limits)
        returncode, timed_out = wait_for(pid, limits.seconds)
        printed = (workdir / OUTPUT_FILE).read_bytes()[: limits.output_kb * 1024].decode("utf-8", "replace")
        report = read_report(workdir / REPORT_FILE)
    if report is None:
        report = ended_without_report(returncode, timed_out, limits, printed)
    report["printed"] = printed
    return report


def wait_for(pid: int, seconds: float) -> tuple:
    """(the child's return code, whether it ran out of time and was killed)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), False
        time.sleep(0.01)
    os.killpg(pid, signal.SIGKILL)  # the child's whole group: nothing it started survives
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), True


def child_main(workdir: Path, request: dict, limits: SandboxLimits):
    """In the forked child: take on the limits, load the visitor's Head, check
    it, write the report, and exit without returning to the helper's loop."""
    code = 1
    try:
        os.setsid()  # its own group, so that a timeout kills everything it started
        os.chdir(workdir)
        output = os.open(OUTPUT_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(output, 1)  # what the visitor's code prints goes to a file, not the helper's answers
        os.dup2(output, 2)
        sys.stdin.close()
        limit_child(limits)
        import torch

        from tinyllm.headcheck import check_head, problem_report
        from tinyllm.io import atomic_write_json

        torch.set_num_threads(1)  # leave the server's cores to the server
        try:
            report = check_head(load_head_class(HEAD_FILE), request["checkpoint"], request["layer"], request["head"])
        except HeadCodeError as e:
            report = problem_report(e.problem, request["layer"], request["head"])
        except TinyLLMError as e:  # not the visitor's code: a missing checkpoint, say
            report = problem_report(CodeProblem("setup", str(e)), request["layer"], request["head"])
        try:
            sys.stdout.flush()
        except OSError:  # over the output limit: what was printed is cut there
            pass
        atomic_write_json(REPORT_FILE, report)
        code = 0
    finally:
        os._exit(code)
