"""Running a visitor's code: in a jail the operating system builds, never in the server.

The app's "Write attention yourself" page runs the code a visitor typed, and
"Train a quick kid with your Head" trains with it. Whether it may is one
setting, PEEK_VISITOR_CODE:

  off    (the default) never run it: the page offers the template and the
         CLI commands, which always work on a learner's own machine
  on     run everyone's code, in the jail; where this machine cannot build
         the whole jail, run nothing, and say what is missing
  local  the person deploying is the only visitor (a learner's own
         `streamlit run`, listening on localhost only): run it in the jail
         where the machine has one, else with what the machine has

There is no "automatic" choice: a page cannot tell the person at the machine
from a stranger behind a proxy on that machine (nginx, ssh -L, kubectl
port-forward all connect from loopback, and need not say so).

The jail, each piece enforced by the kernel, not by Python:
  - bubblewrap (bwrap) puts each check in new user, PID, network, IPC and
    mount namespaces: it sees its own processes only (it cannot name, let
    alone signal, the server or the helper), has no network but its own
    loopback, and sees a read-only view of nothing but Python, the tinyllm
    package and the two files of the run it is checked against, plus a
    small private writable folder in memory. When its first process ends,
    or the server kills it, the kernel kills everything in it.
  - a seccomp filter refuses to create a process (fork, vfork, clone without
    CLONE_THREAD; threads are allowed), ptrace, io_uring, bpf, perf and keys:
    the visitor's code is one process, so the limits below are the limits of
    everything it does.
  - rlimits on that one process: address space (memory), CPU seconds, file
    size, no core files. The server adds a wall-clock limit and caps what it
    reads of the output.
`jail_report()` measures which of these work on this machine.
"""

import ctypes
import json
import logging
import math
import os
import platform
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tinyllm.errors import TinyLLMError
from tinyllm.runfolder import runs_dir

PACKAGE_PARENT = Path(__file__).resolve().parent.parent  # where the jail imports tinyllm from

SETTING = "PEEK_VISITOR_CODE"
CHOICES = ("off", "on", "local")
HEAD_FILE = "my_head.py"
MAX_CODE_CHARS = 100_000  # a Head is a page of code
LOG = logging.getLogger("peek")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass
class SandboxLimits:
    seconds: float = 20.0  # wall clock, the child's start (importing torch) included
    memory_mb: int = 1500  # address space of its one process: importing torch needs about 1 GB of it
    output_kb: int = 64  # what the child may print before it is stopped
    cpu_seconds: float = 20.0  # processor time of its one process (its threads included)
    tmp_mb: int = 16  # the private writable folder, in memory


# --------------------------------------------------------------------------
# The setting, and who may run code


def visitor_code_setting() -> str:
    """The setting's value; a spelling not understood means off, and says so
    (in the server's log and on the pages, as the training limits do)."""
    problem = setting_problem()
    if problem is None:
        return (os.environ.get(SETTING) or "off").strip().lower() or "off"
    from tinyllm.jobs import SETTING_PROBLEMS  # the one list of settings not understood

    if SETTING_PROBLEMS.get(SETTING) != problem:
        SETTING_PROBLEMS[SETTING] = problem
        LOG.error(problem)
    return "off"


def setting_problem() -> str | None:
    """What is wrong with the setting as written, in words; None when it is understood."""
    text = os.environ.get(SETTING)
    value = (text or "off").strip().lower() or "off"
    if value in CHOICES:
        return None
    why = (
        "auto is no longer offered: a page cannot tell the person at the machine from a visitor behind a proxy on it"
        if value == "auto"
        else "it must be off, on or local"
    )
    return f"{SETTING}={text!r} is not understood: {why}. Using off: visitors' code does not run."


def visitor_code_allowed(setting: str, missing: list, listens_locally: bool) -> tuple:
    """(allowed, the reason in a visitor's words). missing: what this machine
    lacks of the jail (jail_missing()); listens_locally: the server listens
    on a loopback address only (Streamlit's server.address)."""
    jail = "in a jail: no network, no files but the check's, no other process, limited memory and time"
    if setting == "on" and not missing:
        return True, f"This server runs visitors' code ({SETTING}=on), {jail}."
    if setting == "on":
        return False, (
            f"This server is set to run visitors' code ({SETTING}=on), but it cannot lock the code away "
            f"on this machine (missing: {'; '.join(missing)}), so it does not run it."
        )
    if setting == "local" and not missing:
        return True, f"This server runs your code ({SETTING}=local), {jail}."
    if setting == "local" and listens_locally:
        return True, (
            f"This server runs your code ({SETTING}=local) without a full jail (missing: {'; '.join(missing)}): "
            "your code can read what the server can. Only this machine can reach the server."
        )
    if setting == "local":
        return False, (
            f"This server is set for one learner ({SETTING}=local), but it cannot lock code away here "
            f"(missing: {'; '.join(missing)}) and it listens beyond this machine, so it does not run code."
        )
    return False, f"This server does not run visitors' code ({SETTING}=off)."


def listens_locally(address) -> bool:
    """Whether a server bound to `address` (Streamlit's server.address; empty: every interface) is
    reachable from this machine only."""
    return str(address or "").strip().lower() in LOOPBACK_NAMES


# --------------------------------------------------------------------------
# The seccomp filter: one process, no new ones
#
# A classic BPF program over struct seccomp_data {int nr; u32 arch; u64 ip;
# u64 args[6]}, built here so that nothing needs compiling. Each instruction is
# struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}; jt/jf count instructions
# to skip.

LD_ARCH, LD_NR, LD_ARG0 = (0x20, 4), (0x20, 0), (0x20, 16)  # BPF_LD | BPF_W | BPF_ABS, offset
JEQ, JGE, JSET, RET = 0x15, 0x35, 0x45, 0x06
ALLOW, KILL = 0x7FFF0000, 0x80000000  # SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS
CLONE_THREAD = 0x00010000
X32_BIT = 0x40000000
DENIED = ("fork", "vfork", "ptrace", "io_uring_setup", "bpf", "perf_event_open", "keyctl", "add_key", "request_key")
DENIED += ("unshare", "setns")  # no new namespaces from inside (with an old bwrap too)
SYSCALLS = {  # (AUDIT_ARCH_*, {name: number}); aarch64 has no fork or vfork
    "x86_64": (
        0xC000003E,
        dict(
            fork=57,
            vfork=58,
            clone=56,
            clone3=435,
            ptrace=101,
            io_uring_setup=425,
            bpf=321,
            perf_event_open=298,
            keyctl=250,
            add_key=248,
            request_key=249,
        ),
    ),  # fmt: skip
    "aarch64": (
        0xC00000B7,
        dict(
            clone=220,
            clone3=435,
            ptrace=117,
            io_uring_setup=425,
            bpf=280,
            perf_event_open=241,
            keyctl=219,
            add_key=217,
            request_key=218,
        ),
    ),  # fmt: skip
}


def seccomp_program() -> bytes | None:
    """The filter's instructions, or None on a machine it does not know."""
    if sys.platform != "linux" or platform.machine() not in SYSCALLS:
        return None
    arch, numbers = SYSCALLS[platform.machine()]

    def op(code, k, jt=0, jf=0):
        return struct.pack("HBBI", code, jt, jf, k)

    def refuse(errno_):
        return op(RET, 0x00050000 | errno_)  # SECCOMP_RET_ERRNO

    program = [op(*LD_ARCH), op(JEQ, arch, 1, 0), op(RET, KILL), op(*LD_NR)]
    if arch == SYSCALLS["x86_64"][0]:
        program += [op(JGE, X32_BIT, 0, 1), refuse(1)]  # the x32 numbers: another door to the same calls
    # clone3 passes its flags in memory a filter cannot read: ENOSYS makes the C library use clone
    program += [op(JEQ, numbers["clone3"], 0, 1), refuse(38)]
    for name in DENIED:
        if name in numbers:
            program += [op(JEQ, numbers[name], 0, 1), refuse(1)]  # EPERM
    # clone: a thread (CLONE_THREAD in its flags) may be made, a process may not
    program += [op(JEQ, numbers["clone"], 0, 4), op(*LD_ARG0), op(JSET, CLONE_THREAD, 0, 1), op(RET, ALLOW)]
    program += [refuse(1), op(RET, ALLOW)]
    return b"".join(program)


def install_seccomp(program: bytes):
    """In a child before exec (preexec_fn): no new privileges, then the filter."""
    libc = ctypes.CDLL(None, use_errno=True)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_char_p))
    PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) or libc.prctl(
        PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0
    ):
        raise OSError(ctypes.get_errno(), "seccomp")


# --------------------------------------------------------------------------
# The jail: what this machine offers, measured once per server


def python_paths() -> list:
    """Folders Python and its packages live in (read-only in the jail). Never
    the project folder or one above it: that would show its secrets."""
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    candidates += [p for p in sys.path if p and Path(p).is_absolute()]
    candidates.append(str(Path(sys.executable).resolve().parent.parent))
    folders = []
    for p in candidates:
        path = Path(p).resolve()
        if not path.is_dir() or path in folders or path == Path("/"):
            continue
        if path == PACKAGE_PARENT or PACKAGE_PARENT.is_relative_to(path) or path.is_relative_to(PACKAGE_PARENT):
            if path.is_relative_to(PACKAGE_PARENT) and path != PACKAGE_PARENT and path.name in (".venv", "venv"):
                folders.append(path)  # a virtual environment kept in the project: code, no secrets
            continue
        folders.append(path)
    return folders


SYSTEM = ["/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache", "/etc/alternatives"]


def jail_argv(read_only: dict, writable: dict, workdir: str, limits: SandboxLimits, seccomp_fd=None) -> list:
    """bwrap's arguments for a jail that sees `read_only` and `writable`
    ({path inside: path outside}), with a private folder in memory at /tmp;
    the command follows."""
    bwrap = shutil.which("bwrap") or "bwrap"
    argv = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    argv += ["--unshare-cgroup-try", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "jail"]
    if "--disable-userns" in bwrap_options(bwrap):  # bubblewrap 0.8; the seccomp filter refuses unshare anyway
        argv.append("--disable-userns")
    for folder in SYSTEM:
        argv += ["--ro-bind-try", folder, folder]
    for folder in python_paths():
        argv += ["--ro-bind", str(folder), str(folder)]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    if "--size" in bwrap_options(bwrap):  # bubblewrap 0.7: a folder in memory, of a given size
        argv += ["--size", str(limits.tmp_mb * 2**20), "--tmpfs", "/tmp"]
    else:  # an older one: /tmp without a size would be memory without a limit; the jail gets none
        argv += ["--dir", "/tmp"]
    hidden = []
    # a system folder above the project or its runs (a Python in /usr, the app in /usr/src): hidden
    for secret in (PACKAGE_PARENT, runs_dir().resolve(), Path.home() / ".streamlit"):
        if any(secret.is_relative_to(Path(s)) for s in SYSTEM) or any(secret.is_relative_to(p) for p in python_paths()):
            argv += ["--tmpfs", str(secret)]
            hidden.append(str(secret))
    for inside, outside in read_only.items():
        argv += ["--ro-bind", str(outside), str(inside)]
    for inside, outside in writable.items():
        argv += ["--bind", str(outside), str(inside)]
    # the jail's root and /dev are folders in memory without a size: read-only (/dev/null and such stay usable)
    for folder in ["/", "/dev", *hidden]:
        argv += ["--remount-ro", folder]
    argv += ["--setenv", "HOME", "/tmp", "--chdir", workdir]
    if seccomp_fd is not None:
        argv += ["--seccomp", seccomp_fd]
    return argv + ["--"]


BWRAP_OPTIONS = {}


def bwrap_options(bwrap: str) -> str:
    """bwrap's --help (its options), read once: older versions lack some."""
    if bwrap not in BWRAP_OPTIONS:
        try:
            done = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10)
            BWRAP_OPTIONS[bwrap] = done.stdout + done.stderr
        except (OSError, subprocess.SubprocessError):
            BWRAP_OPTIONS[bwrap] = ""
    return BWRAP_OPTIONS[bwrap]


PROBE = """
import json, os, resource, socket, sys
seen = dict(pid=os.getpid(), processes=len([p for p in os.listdir("/proc") if p.isdigit()]))
seen["interfaces"] = [line.split(":")[0].strip() for line in open("/proc/net/dev").read().splitlines()[2:]]
seen["project"] = os.path.exists(sys.argv[1])
try:
    os.fork() or os._exit(0)
    seen["fork"] = True
except OSError:
    seen["fork"] = False
s = socket.socket()
s.settimeout(1)
seen["network"] = s.connect_ex(("127.0.0.1", int(sys.argv[2]))) == 0
print(json.dumps(seen))
"""


def jail_report() -> dict:
    """What this machine's jail holds, measured by running a probe in it:
    {protection: True/False}, with "missing" (in words) and "detail"."""
    report = dict(bwrap=shutil.which("bwrap"), seccomp=seccomp_program() is not None, missing=[], detail="")
    if not report["seccomp"]:
        report["missing"].append(f"a ban on starting processes (seccomp, for {sys.platform} {platform.machine()})")
    if report["bwrap"] is None:
        report["missing"].append("bubblewrap (bwrap), which builds the jail's namespaces, is not installed")
        return report
    listener = socket_listening()
    try:
        outcome = run_limited(
            jail_argv({}, {}, "/tmp", SandboxLimits(), seccomp_fd=SECCOMP_FD if report["seccomp"] else None)
            + [sys.executable, "-I", "-c", PROBE, str(PACKAGE_PARENT / "pages"), str(listener.getsockname()[1])],
            SandboxLimits(seconds=30),
            jailed=True,
        )
    finally:
        listener.close()
    try:
        seen = json.loads(outcome["report"].decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        first = (outcome["printed"].decode(errors="replace").strip().splitlines() or ["no message"])[0]
        report["missing"].append("namespaces (bubblewrap could not build a jail on this machine)")
        report["detail"] = first
        return report
    report.update(
        pid_namespace=seen["pid"] <= 3 and seen["processes"] <= 3,
        network_namespace=seen["interfaces"] == ["lo"] and not seen["network"],
        mount_namespace=not seen["project"],
        no_new_processes=not seen["fork"],
    )
    words = dict(
        pid_namespace="its own processes (a PID namespace)",
        network_namespace="no network (a network namespace)",
        mount_namespace="its own view of the files (a mount namespace)",
        no_new_processes="a ban on starting processes (seccomp)",
    )
    report["missing"] += [w for key, w in words.items() if not report[key] and w not in report["missing"]]
    return report


def socket_listening():
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    return listener


JAIL = {}  # the measured jail_report(), once per server
JAIL_LOCK = threading.Lock()


def jail_missing() -> list:
    """What this machine lacks of the jail, in words (empty: the whole jail
    works); measured once, and named in the server's log."""
    with JAIL_LOCK:
        if not JAIL:
            JAIL.update(jail_report())
            if JAIL["missing"]:
                detail = f" (bwrap said: {JAIL['detail']})" if JAIL.get("detail") else ""
                missing = "; ".join(JAIL["missing"])
                LOG.error("Visitors' code: this machine lacks part of the jail: %s%s", missing, detail)
        return list(JAIL["missing"])


# --------------------------------------------------------------------------
# Running a command under the limits

SECCOMP_FD = "{seccomp}"  # in jail_argv: the descriptor bwrap reads the filter from, filled in when run
REPORT_CAP = 2**20  # what the server reads of a report at most


def set_limits(limits: SandboxLimits):
    """In a child before exec (preexec_fn): the kernel enforces these on the jail's process."""
    memory = limits.memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = math.ceil(limits.cpu_seconds)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_kb * 1024 + 2**20,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def before_exec(limits: SandboxLimits, jailed: bool, program: bytes | None):
    """preexec_fn: rlimits, and without bwrap the seccomp filter itself (with
    bwrap, bwrap installs it on the jail's process, after building the jail)."""

    def prepare():
        set_limits(limits)
        if not jailed and program is not None:
            install_seccomp(program)

    return prepare


def run_limited(argv: list, limits: SandboxLimits, jailed: bool, env=None, cwd=None) -> dict:
    """Run argv (a jail's command line, or a bare one) under `limits`. Its
    stdout is the report channel, its stderr what it printed. Returns
    returncode (a signal as -N), stopped ("time", "output", "report" or
    None), report and printed (bytes, capped), peak_mb (its largest process),
    cpu_s and wall_s."""
    program = seccomp_program()
    pass_fds = ()
    if SECCOMP_FD in argv:  # bwrap reads the filter from a pipe, written here before it starts
        read, write = os.pipe()
        os.write(write, program)
        os.close(write)
        pass_fds = (read,)
        argv = [str(read) if a == SECCOMP_FD else a for a in argv]
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env if env is not None else {},
            cwd=cwd or tempfile.gettempdir(),
            pass_fds=pass_fds,
            start_new_session=True,
            preexec_fn=before_exec(limits, jailed, program),
        )
    finally:
        for fd in pass_fds:
            os.close(fd)
    channels = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    report, printed = channels[proc.stdout.fileno()], channels[proc.stderr.fileno()]
    open_fds = set(channels)
    deadline = started + limits.seconds
    stopped, status, usage = None, None, None
    peak_mb = cpu_s = 0.0
    sampled = 0.0
    while status is None:
        if time.monotonic() - sampled > 0.1:  # the figures: what the whole tree holds, seen from outside
            sampled = time.monotonic()
            rss, cpu = tree_usage(proc.pid)
            peak_mb, cpu_s = max(peak_mb, rss), max(cpu_s, cpu)
        if open_fds:
            ready, _, _ = select.select(list(open_fds), [], [], 0.05)
            for fd in ready:
                chunk = os.read(fd, 65536)
                channels[fd] += chunk
                if not chunk:
                    open_fds.discard(fd)
        else:
            time.sleep(0.02)
        if len(printed) > limits.output_kb * 1024:
            stopped = "output"
        elif len(report) > REPORT_CAP:
            stopped = "report"
        elif time.monotonic() > deadline:
            stopped = "time"
        pid, code, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status, usage = code, rusage
        elif stopped:
            # bwrap's own process: with it the jail's first process dies (--die-with-parent), and the
            # kernel kills everything in the jail's PID namespace with it
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    drain(channels, open_fds, limits.output_kb * 1024)
    for stream in (proc.stdout, proc.stderr):
        stream.close()
    returncode = proc.returncode
    if jailed and returncode > 128:  # bwrap says a signal as 128 + its number
        returncode = -(returncode - 128)
    return dict(
        returncode=returncode,
        stopped=stopped,
        report=bytes(report[:REPORT_CAP]),
        printed=bytes(printed[: limits.output_kb * 1024]),
        peak_mb=round(max(peak_mb, usage.ru_maxrss / 1024)),
        cpu_s=round(max(cpu_s, usage.ru_utime + usage.ru_stime), 2),
        wall_s=round(time.monotonic() - started, 2),
    )


def process_tree(pid: int) -> list:
    """pid and every process below it (Linux's /proc/PID/task/TID/children)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return found


def tree_usage(pid: int) -> tuple:
    """(resident memory of the whole tree in MB, its processor seconds) now, as the server sees it."""
    rss = cpu = 0.0
    for p in process_tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        rss += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0) / 1024
        cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return rss, cpu


def drain(channels: dict, open_fds: set, cap: int):
    """What the jail wrote before it ended (it is dead: no writer is left)."""
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [], 0.5)
        if not ready:
            return
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk or len(channels[fd]) > max(cap, REPORT_CAP):
                open_fds.discard(fd)
            channels[fd] += chunk


# --------------------------------------------------------------------------
# Checking a visitor's Head

CHECK_LOCK = threading.Lock()  # one check at a time per server: each may use its memory limit
INSIDE = Path("/run/peek")  # where the jail sees the run's two files and the visitor's code
CHILD = "import sys; sys.path.insert(0, {root!r}); from tinyllm.sandbox import child_main; child_main()"


def how_code_runs() -> str:
    """ "jail", or "limits" (the setting is local and this machine lacks part
    of the jail). Raises TinyLLMError where visitors' code may not run: the
    setting is off (whatever a page decided), or on without the whole jail."""
    setting = visitor_code_setting()
    missing = jail_missing() if setting != "off" else []
    if setting != "off" and not missing:
        return "jail"
    if setting == "local":
        return "limits"
    raise TinyLLMError(visitor_code_allowed(setting, missing, False)[1])


def check_in_sandbox(code: str, checkpoint, layer=0, head=0, limits: SandboxLimits | None = None) -> dict:
    """Check a visitor's Head (its source text) in the jail. Returns the
    checker's report (headcheck), validated, with `printed` (what the code
    printed), `wall_s` and `jail` (how it ran, its peak memory and CPU) added."""
    from tinyllm.runfolder import RunFolder

    limits = limits or SandboxLimits()
    if len(code) > MAX_CODE_CHARS:
        raise TinyLLMError(f"Your code is {len(code):,} characters long; a Head fits in {MAX_CODE_CHARS:,}.")
    how = how_code_runs()
    checkpoint = Path(checkpoint).resolve()
    if not checkpoint.is_file():
        raise TinyLLMError("This run has no model to check against yet.")
    run = RunFolder(checkpoint.parent)
    if not CHECK_LOCK.acquire(timeout=limits.seconds + 10):
        raise TinyLLMError("The server is busy checking other visitors' code: try again in a moment.")
    try:
        with tempfile.TemporaryDirectory(prefix="peek-head-") as tmp:
            mine = Path(tmp) / HEAD_FILE
            mine.write_text(code, encoding="utf-8")
            request = dict(layer=layer, head=head)
            if how == "jail":
                files = {INSIDE / "model.pt": checkpoint, INSIDE / HEAD_FILE: mine}
                if run.corpus.is_file():
                    files[INSIDE / "corpus.json"] = run.corpus
                files[PACKAGE_PARENT / "tinyllm"] = PACKAGE_PARENT / "tinyllm"
                request.update(checkpoint=str(INSIDE / "model.pt"), code=str(INSIDE / HEAD_FILE), workdir="/tmp")
                argv = jail_argv(files, {}, "/tmp", limits, SECCOMP_FD)
            else:
                work = Path(tmp) / "work"
                work.mkdir()
                request.update(checkpoint=str(checkpoint), code=str(mine), workdir=str(work))
                argv = []
            argv += [sys.executable, "-I", "-c", CHILD.format(root=str(PACKAGE_PARENT)), json.dumps(request)]
            outcome = run_limited(argv, limits, jailed=how == "jail")
    finally:
        CHECK_LOCK.release()
    printed = outcome["printed"].decode("utf-8", "replace")
    report = None if outcome["stopped"] else read_report(outcome["report"], layer, head)
    if report is None:
        report = ended_without_report(outcome, limits, printed)
    report["printed"] = printed
    report["wall_s"] = outcome["wall_s"]
    report["jail"] = dict(how=how, peak_mb=outcome["peak_mb"], cpu_s=outcome["cpu_s"])
    return report


def ended_without_report(outcome: dict, limits: SandboxLimits, printed: str) -> dict:
    """What to tell the visitor when the check gave no report that can be trusted."""
    from tinyllm.exercise import CodeProblem
    from tinyllm.headcheck import problem_report

    code = outcome["returncode"]
    if outcome["stopped"] == "time":
        message = (
            f"Your code was stopped after {limits.seconds:g} s. Does it loop for ever? "
            "(The check itself takes a few seconds.)"
        )
    elif outcome["stopped"] == "output" or code == -signal.SIGXFSZ:
        message = f"Your code printed more than {limits.output_kb} KB, so it was stopped."
    elif code in (-signal.SIGXCPU, -signal.SIGKILL):
        message = f"Your code was stopped after {limits.cpu_seconds:g} s of processor time. Does it loop for ever?"
    elif outcome["report"].strip():
        message = (
            "The check's report came back damaged, so it is not shown. Does your code write to the "
            "checker's own output (file descriptor 1)? Print with print(), which is shown below."
        )
    else:
        tail = printed.strip().splitlines()[-1:] or ["nothing"]
        message = (
            f"The check ended before it could report (exit code {code}; last output: {tail[0][:200]}). "
            "Does your code call os._exit() or end the process?"
        )
    return problem_report(CodeProblem("exception", message))


# --------------------------------------------------------------------------
# Nothing the jail writes is trusted: its report is read as untrusted data

STATUSES = ("ok", "differs", "not seen")
PROBLEM_KINDS = ("syntax", "exception", "structure", "setup")


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def short_text(value, limit: int) -> bool:
    return isinstance(value, str) and len(value) <= limit


def read_report(data: bytes, layer: int, head: int) -> dict | None:
    """The report from the jail's last line, rebuilt field by field from what
    the checker can write, or None. A report that says it passed must agree
    with its own steps and loss: a forged pass is refused, not shown."""
    from tinyllm.headcheck import LOSS_TOLERANCE, MISTAKE_TITLES, STEPS

    lines = data.decode("utf-8", "replace").strip().splitlines()
    try:
        raw = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    try:
        steps = raw["steps"]
        assert isinstance(steps, list) and 1 <= len(steps) <= len(STEPS)
        clean_steps = []
        for step in steps:
            assert isinstance(step, dict) and step.get("name") in STEPS and step.get("status") in STATUSES
            assert short_text(step.get("detail"), 2000)
            clean_steps.append(dict(name=step["name"], status=step["status"], detail=step["detail"]))
        names = [s["name"] for s in clean_steps]
        assert names == [n for n in STEPS if n in names] and len(set(names)) == len(names)  # in order, once
        assert raw["layer"] == layer and raw["head"] == head and is_int(raw["layer"]) and is_int(raw["head"])
        assert short_text(raw["text"], 4096) and is_int(raw["head_size"]) and 0 <= raw["head_size"] <= 4096
        assert short_text(raw["diagnosis"], 4000) and is_number(raw["seconds"]) and 0 <= raw["seconds"] < 1e6
        mistake = raw["mistake"]
        assert mistake is None or mistake in MISTAKE_TITLES
        problem = raw["problem"]
        if problem is not None:
            assert isinstance(problem, dict) and problem.get("kind") in PROBLEM_KINDS
            assert short_text(problem.get("message"), 2000) and short_text(problem.get("where", ""), 8000)
            problem = dict(kind=problem["kind"], message=problem["message"], where=problem.get("where", ""))
        loss = raw["loss"]
        if loss is not None:
            assert isinstance(loss, dict) and is_int(loss.get("characters")) and loss["characters"] >= 0
            assert all(is_number(loss.get(k)) and math.isfinite(loss[k]) for k in ("kid", "yours"))
            loss = dict(kid=loss["kid"], yours=loss["yours"], characters=loss["characters"])
        compare = raw["compare"]
        if compare is not None:
            assert isinstance(compare, dict) and short_text(compare.get("title"), 500) and is_int(compare.get("row"))
            n = len(compare.get("chars") or [])
            assert 0 < n <= 512 and all(short_text(c, 8) for c in compare["chars"])
            assert all(isinstance(compare.get(k), list) and len(compare[k]) == n for k in ("yours", "kid"))
            assert all(is_number(v) for v in compare["yours"] + compare["kid"])
            compare = {k: compare[k] for k in ("title", "row", "chars", "yours", "kid")}
    except (AssertionError, KeyError, TypeError):
        return None
    first_failure = next((s["name"] for s in clean_steps if s["status"] == "differs"), None)
    passed = (
        len(clean_steps) == len(STEPS)
        and problem is None
        and first_failure is None
        and loss is not None
        and abs(loss["yours"] - loss["kid"]) <= LOSS_TOLERANCE
    )
    if raw.get("ok") is not passed or raw.get("first_failure") != first_failure:
        return None  # it contradicts itself: not the checker's report
    return dict(
        ok=passed,
        first_failure=first_failure,
        layer=layer,
        head=head,
        text=raw["text"],
        head_size=raw["head_size"],
        steps=clean_steps,
        mistake=mistake,
        title=MISTAKE_TITLES.get(mistake),
        diagnosis=raw["diagnosis"],
        compare=compare,
        problem=problem,
        loss=loss,
        seconds=float(raw["seconds"]),
    )


# --------------------------------------------------------------------------
# Inside the jail


def child_main():
    """The jail's one process: load the visitor's Head, check it, write the
    report as one line on the report channel (stdout), and exit. What the
    code prints goes to stderr, which the server shows as its output."""
    request = json.loads(sys.argv[1])
    channel = os.dup(1)
    os.dup2(2, 1)  # the visitor's print() goes to what the server shows as printed
    sys.stdin.close()
    os.chdir(request["workdir"])
    code = 1
    try:
        import torch

        from tinyllm.errors import TinyLLMError
        from tinyllm.exercise import CodeProblem, HeadCodeError, load_head_class
        from tinyllm.headcheck import check_head, problem_report

        torch.set_num_threads(1)  # leave the server's cores to the server
        layer, head = request["layer"], request["head"]
        try:
            report = check_head(load_head_class(request["code"]), request["checkpoint"], layer, head)
        except HeadCodeError as e:
            report = problem_report(e.problem, layer, head)
        except TinyLLMError as e:  # not the visitor's code: a missing checkpoint, say
            report = problem_report(CodeProblem("setup", str(e)), layer, head)
        try:
            sys.stdout.flush()
        except OSError:  # over the output limit: what was printed is cut there
            pass
        os.write(channel, ("\n" + json.dumps(report) + "\n").encode())
        code = 0
    finally:
        os._exit(code)


# --------------------------------------------------------------------------
# Training with a visitor's Head: the same jail, the run folder writable

# The quick preset needs about 2 CPU-minutes; its checkpoints count as output (the file-size limit).
TRAIN_LIMITS = SandboxLimits(seconds=1800, cpu_seconds=900, memory_mb=4000, output_kb=64 * 1024, tmp_mb=64)
PASSED_ON = ("TINYLLM_DATA", "TINYLLM_CACHE")  # where the corpus lies: paths, no secrets


def train_in_sandbox(limits: SandboxLimits = TRAIN_LIMITS) -> dict:
    """Popen arguments for a training process that runs a visitor's Head
    (its command comes from jail_training): the limits, and an environment
    holding only where the corpus lies."""
    env = {k: os.environ[k] for k in PASSED_ON if k in os.environ}
    return dict(env=env, start_new_session=True, preexec_fn=lambda: set_limits(limits))


def jail_training(cmd: list, run_dir: Path, limits: SandboxLimits = TRAIN_LIMITS) -> list:
    """The command line that trains `cmd` (python -m tinyllm train ...) in the
    jail: it sees Python, the tinyllm package and the corpus read-only, and
    writes only its own run folder. Killed after limits.seconds of wall
    clock by `timeout`, outside the jail. Raises TinyLLMError where visitors'
    code may not run; "local" on a machine without the jail: cmd as it is,
    with the seccomp filter and the limits."""
    from tinyllm.data import CACHE_DIR

    program = seccomp_program()
    if how_code_runs() != "jail":
        return [sys.executable, "-I", "-c", SECCOMP_EXEC, program.hex() if program else "", *cmd]
    run_dir = Path(run_dir).resolve()
    read_only = {PACKAGE_PARENT / "tinyllm": PACKAGE_PARENT / "tinyllm"}
    for corpus in (os.environ.get("TINYLLM_DATA"), CACHE_DIR / "tinyshakespeare.txt"):
        if corpus and Path(corpus).is_file():
            read_only[Path(corpus).resolve()] = Path(corpus).resolve()
    argv = jail_argv(read_only, {run_dir: run_dir}, str(PACKAGE_PARENT), limits, seccomp_fd=SECCOMP_FD)
    # bwrap reads the filter from a descriptor: this small launcher, outside the jail, makes it
    launcher = [sys.executable, "-I", "-c", SECCOMP_BWRAP, program.hex(), str(limits.seconds)]
    return launcher + argv + cmd


SECCOMP_EXEC = """
import ctypes, os, sys
sys.path.insert(0, {root!r})
from tinyllm.sandbox import install_seccomp
if sys.argv[1]:
    install_seccomp(bytes.fromhex(sys.argv[1]))
os.execv(sys.argv[2], sys.argv[2:])
""".replace("{root!r}", repr(str(PACKAGE_PARENT)))

SECCOMP_BWRAP = """
import os, signal, sys
read, write = os.pipe()
os.write(write, bytes.fromhex(sys.argv[1]))
os.close(write)
argv = sys.argv[3:]
argv[argv.index("--seccomp") + 1] = str(read)
os.set_inheritable(read, True)
child = os.fork()
if child == 0:
    os.execv(argv[0], argv)
os.close(read)
signal.signal(signal.SIGALRM, lambda *_: os.kill(child, signal.SIGKILL))
signal.alarm(int(float(sys.argv[2])))
for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda s, f: os.kill(child, s))
while True:
    try:
        _, status = os.waitpid(child, 0)
        break
    except InterruptedError:
        continue
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""
