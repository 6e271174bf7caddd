"""Visitors' code: who may run it, and the jail it runs in, attacked.

The jail tests skip, with the reason, on a machine that lacks part of the
jail (test_the_jail_reports_what_this_machine_offers says which ran). Each
check starts a jail that imports PyTorch (seconds): the fast tier keeps one,
test_the_jail_hides_secrets_the_server_and_other_visitors_files; the others
are marked slow."""

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
from head_solutions import SOLUTION, planted, with_mistake

from tinyllm.sandbox import (
    SandboxLimits,
    check_in_sandbox,
    jail_missing,
    jail_report,
    listens_locally,
    read_report,
    visitor_code_allowed,
    visitor_code_setting,
)

ROOT = Path(__file__).resolve().parent.parent  # the project
KID = ROOT / "artifacts" / "kid" / "model.pt"
MISSING = jail_missing()
needs_jail = pytest.mark.skipif(bool(MISSING), reason=f"this machine lacks part of the jail: {MISSING}")


@pytest.fixture(autouse=True)
def code_on(monkeypatch):
    monkeypatch.setenv("PEEK_VISITOR_CODE", "on")


# --------------------------------------------------------------------------
# Who may run code


def test_the_jail_reports_what_this_machine_offers(capsys):
    report = jail_report()
    with capsys.disabled():  # CI's log says which jail tests ran
        print(f"\njail on this machine: {json.dumps(report)}")
    assert report["missing"] == MISSING


def test_code_runs_nowhere_by_default_whoever_the_visitor_seems(monkeypatch):
    monkeypatch.delenv("PEEK_VISITOR_CODE")
    assert visitor_code_setting() == "off"
    # a learner's own machine, a loopback proxy, a whole jail: nothing runs unless the deployer says so
    assert not visitor_code_allowed("off", [], True)[0]
    assert "PEEK_VISITOR_CODE=off" in visitor_code_allowed("off", [], True)[1]


@pytest.mark.parametrize("spelling", ["true", "yes", "1", "auto", "ON!"])
def test_a_setting_not_understood_means_off_and_says_so(monkeypatch, spelling):
    from tinyllm.jobs import SETTING_PROBLEMS

    SETTING_PROBLEMS.clear()
    monkeypatch.setenv("PEEK_VISITOR_CODE", spelling)
    assert visitor_code_setting() == "off"
    assert (
        repr(spelling) in SETTING_PROBLEMS["PEEK_VISITOR_CODE"] and "Using off" in SETTING_PROBLEMS["PEEK_VISITOR_CODE"]
    )
    SETTING_PROBLEMS.clear()


def test_on_needs_the_whole_jail_and_local_says_what_is_missing():
    missing = ["no network (a network namespace)"]
    assert visitor_code_allowed("on", [], False)[0]
    allowed, reason = visitor_code_allowed("on", missing, True)
    assert not allowed and "network namespace" in reason
    assert visitor_code_allowed("local", [], False)[0]
    allowed, reason = visitor_code_allowed("local", missing, True)
    assert allowed and "without a full jail" in reason and "network namespace" in reason
    assert not visitor_code_allowed("local", missing, False)[0]  # listening beyond this machine
    assert listens_locally("localhost") and listens_locally("127.0.0.1")
    assert not listens_locally("") and not listens_locally("0.0.0.0")


def test_with_the_setting_off_nothing_runs_even_when_called_directly(monkeypatch):
    from tinyllm.errors import TinyLLMError

    monkeypatch.setenv("PEEK_VISITOR_CODE", "off")
    with pytest.raises(TinyLLMError, match="=off"):
        check_in_sandbox(SOLUTION, KID)


# --------------------------------------------------------------------------
# The check, in the jail


@needs_jail
@pytest.mark.slow  # several checks, each a fresh jail that imports PyTorch
def test_the_sandbox_checks_like_the_cli():
    report = check_in_sandbox(with_mistake("softmax_dim"), KID)
    assert report["mistake"] == "softmax_dim" and report["first_failure"] == "softmax"
    report = check_in_sandbox(SOLUTION, KID, layer=2, head=1)
    assert report["ok"] and report["jail"]["how"] == "jail"


@needs_jail
@pytest.mark.slow
def test_the_sandbox_stops_an_endless_loop_within_its_time():
    limits = SandboxLimits(seconds=8)
    started = time.perf_counter()
    report = check_in_sandbox(planted("while True: pass"), KID, limits=limits)
    assert time.perf_counter() - started < limits.seconds + 3
    assert not report["ok"] and ("stopped after 8 s" in report["diagnosis"] or "processor" in report["diagnosis"])


@needs_jail
@pytest.mark.slow  # a fresh jail that imports PyTorch: seconds
def test_the_sandbox_refuses_a_10_gb_allocation():
    report = check_in_sandbox(planted("torch.ones(10 * 2**30, dtype=torch.uint8)"), KID)
    assert not report["ok"] and "more memory than it may use" in report["diagnosis"]


@needs_jail
@pytest.mark.slow  # a fresh jail that imports PyTorch: seconds
def test_the_sandbox_hides_the_servers_environment(monkeypatch):
    monkeypatch.setenv("PEEK_TEST_SECRET", "hunter2")
    report = check_in_sandbox(
        planted("import os; print('seen:', os.environ.get('PEEK_TEST_SECRET'), sorted(os.environ))"), KID
    )
    assert report["ok"] and "seen: None" in report["printed"] and "hunter2" not in report["printed"]


@needs_jail
@pytest.mark.slow  # several checks, each a fresh jail that imports PyTorch
def test_the_sandbox_survives_exit_and_floods_of_output():
    report = check_in_sandbox(planted("import sys; sys.exit(0)"), KID)
    assert "called exit()" in report["diagnosis"]
    report = check_in_sandbox(planted("import os; os._exit(0)"), KID)
    assert "ended before it could report" in report["diagnosis"]
    report = check_in_sandbox(planted("while True: print('x' * 1000)"), KID, limits=SandboxLimits(output_kb=16))
    assert "printed more" in report["diagnosis"] and len(report["printed"]) <= 16 * 1024


# --------------------------------------------------------------------------
# Attacks: each prints what it got; the assertions say what it must not get


def attempt(name: str, body: str) -> str:
    """Lines that run `body` and print 'NAME: got ...' or 'NAME: refused ...'."""
    got = f"print('{name}: got', repr(_)[:80])"
    return f"try:\n    {body}\n    {got}\nexcept BaseException as e:\n    print('{name}: refused', type(e).__name__)"


@needs_jail
def test_the_jail_hides_secrets_the_server_and_other_visitors_files(tmp_path, monkeypatch):
    secret = ROOT / ".streamlit" / "secrets.toml"
    runs = tmp_path / "runs"
    (runs / "someone" / "upload").mkdir(parents=True)
    (runs / "someone" / "upload" / "theirs.txt").write_text("another visitor's text")
    monkeypatch.setenv("PEEK_RUNS_DIR", str(runs))
    server = os.getpid()
    code = "\n".join(
        [
            attempt("secrets", f"_ = open({str(secret)!r}).read()"),
            attempt("project", f"_ = open({str(ROOT / 'pyproject.toml')!r}).read()"),
            attempt("environ", f"_ = open('/proc/{server}/environ').read()"),
            attempt("parent", "import os; _ = open(f'/proc/{os.getppid()}/environ').read()"),
            attempt("upload", f"_ = open({str(runs / 'someone' / 'upload' / 'theirs.txt')!r}).read()"),
            attempt("processes", "import os; _ = [p for p in os.listdir('/proc') if p.isdigit()]"),
        ]
    )
    report = check_in_sandbox(planted(code), KID)
    printed = report["printed"]
    for name in ("secrets", "project", "environ", "upload"):
        assert f"{name}: refused" in printed, printed
    # the parent it can name is the jail's own first process, whose environment is empty
    assert "PEEK_VISITOR_CODE" not in printed and "PATH" not in printed
    seen = printed.split("processes: got ")[1].splitlines()[0]
    assert len(eval(seen)) <= 3, seen  # itself and bwrap's: no server, no other visitor


@needs_jail
@pytest.mark.slow  # a fresh jail that imports PyTorch: seconds
def test_the_jail_cannot_write_into_the_project_or_the_runs(tmp_path, monkeypatch):
    page = ROOT / "pages" / "meet.py"
    before = page.read_bytes()
    runs = tmp_path / "runs"
    (runs / "someone").mkdir(parents=True)
    (runs / "someone" / "model_card.json").write_text("{}")
    monkeypatch.setenv("PEEK_RUNS_DIR", str(runs))
    code = "\n".join(
        [
            attempt("page", f"_ = open({str(page)!r}, 'a').write('import os')"),
            attempt("package", f"_ = open({str(ROOT / 'tinyllm' / 'evil.py')!r}, 'w').write('x')"),
            attempt("run", f"import os; _ = os.remove({str(runs / 'someone' / 'model_card.json')!r})"),
            attempt("model", "import os; _ = os.remove('/run/peek/model.pt')"),
            attempt("private", "_ = open('/tmp/mine.txt', 'w').write('ok')"),
            attempt("root", "_ = open('/mine.txt', 'w').write('x')"),  # folders in memory without a size
            attempt("dev", "_ = open('/dev/shm/mine', 'w').write('x')"),
            attempt("fill", "_ = [open(f'/tmp/{i}', 'wb').write(bytes(2**20)) for i in range(40)]"),
        ]
    )
    report = check_in_sandbox(planted(code), KID)
    printed = report["printed"]
    for name in ("page", "package", "run", "model", "root", "dev", "fill"):
        assert f"{name}: refused" in printed, printed
    assert "private: got" in printed  # its own folder is writable
    assert page.read_bytes() == before and (runs / "someone" / "model_card.json").exists()
    assert not (ROOT / "tinyllm" / "evil.py").exists() and KID.exists()


@needs_jail
@pytest.mark.slow  # a fresh jail that imports PyTorch: seconds
def test_the_jail_has_no_network():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    code = attempt("connect", f"import socket; _ = socket.create_connection(('127.0.0.1', {port}), timeout=2)")
    code += "\n" + attempt("outside", "import socket; _ = socket.create_connection(('1.1.1.1', 80), timeout=2)")
    report = check_in_sandbox(planted(code), KID)
    with pytest.raises(TimeoutError):
        listener.accept()
    listener.close()
    assert "connect: refused" in report["printed"] and "outside: refused" in report["printed"], report["printed"]


FORK_BOMB = """
import os, time
for i in range(10):
    try:
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                open('/proc/self/comm', 'w').write('peek-survivor')
                time.sleep(60)
            os._exit(0)
        print('fork: got a child')
    except OSError as e:
        print('fork: refused', e.errno)
"""


def survivors() -> list:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if open(f"/proc/{pid}/comm").read().strip() == "peek-survivor":
                found.append(int(pid))
        except OSError:
            pass
    return found


@needs_jail
@pytest.mark.slow  # a fresh jail that imports PyTorch: seconds
def test_setsid_and_a_double_fork_start_nothing_that_outlives_the_check():
    report = check_in_sandbox(planted(FORK_BOMB, once=True), KID)
    left = survivors()
    for pid in left:  # never leave them behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left and "fork: got" not in report["printed"] and "fork: refused" in report["printed"]


@needs_jail
@pytest.mark.slow  # a fresh jail that imports PyTorch: seconds
def test_four_children_cannot_hold_more_memory_than_one_check():
    limits = SandboxLimits()
    code = """
import os, torch
held = []
for i in range(4):
    try:
        if os.fork() == 0:
            held.append(torch.ones(2**30, dtype=torch.uint8))
            import time; time.sleep(5)
            os._exit(0)
        print('child: got')
    except OSError:
        print('child: refused')
try:
    held.append(torch.ones(1400 * 2**20, dtype=torch.uint8))
    print('one more GB: got')
except (MemoryError, RuntimeError):
    print('one more GB: refused')
"""
    report = check_in_sandbox(planted(code, once=True), KID, limits=limits)
    assert "child: got" not in report["printed"] and report["printed"].count("child: refused") == 4
    assert "one more GB: refused" in report["printed"]
    assert report["jail"]["peak_mb"] < limits.memory_mb, report["jail"]


@needs_jail
@pytest.mark.slow  # several checks, each a fresh jail that imports PyTorch
def test_stopping_its_parent_stops_nobody_else():
    code = attempt("stop", "import os, signal; _ = os.getppid(); os.kill(_, signal.SIGSTOP)")
    code += "\n" + attempt("stop all", "import os, signal; _ = os.kill(-1, signal.SIGSTOP)")
    first = check_in_sandbox(planted(code), KID, limits=SandboxLimits(seconds=15))
    started = time.perf_counter()
    second = check_in_sandbox(SOLUTION, KID)
    assert second["ok"] and time.perf_counter() - started < 15, second["diagnosis"]
    assert "State:\tT" not in open(f"/proc/{os.getpid()}/status").read()
    assert first["jail"]["how"] == "jail"


# --------------------------------------------------------------------------
# Nothing the jail writes is trusted

FORGED = dict(ok=True, steps=[], loss=None)


@needs_jail
@pytest.mark.slow  # a fresh jail that imports PyTorch: seconds
def test_a_forged_report_gives_neither_a_traceback_nor_a_pass():
    forged = json.dumps(FORGED)
    code = (
        "import os\n"
        f"open('report.json', 'w').write({forged!r})\n"
        "for fd in range(1, 20):\n"
        "    try:\n"
        f"        os.write(fd, ({forged!r} + chr(10)).encode())\n"
        "    except OSError:\n"
        "        pass\n"
        "os._exit(0)"
    )
    report = check_in_sandbox(planted(code), KID)
    assert report["ok"] is False and report["steps"] and report["diagnosis"]
    assert "damaged" in report["diagnosis"] or "ended before" in report["diagnosis"]


def a_real_report(**change) -> bytes:
    from tinyllm.headcheck import STEPS

    report = dict(
        ok=True, first_failure=None, layer=0, head=0, text="abc", head_size=8, mistake=None, title=None,
        diagnosis="", compare=None, problem=None, seconds=0.1,
        steps=[dict(name=n, status="ok", detail="fine") for n in STEPS],
        loss=dict(kid=1.5, yours=1.5, characters=10),
    )  # fmt: skip
    report.update(change)
    return ("printed junk\n" + json.dumps(report)).encode()


def test_a_report_is_read_field_by_field_and_must_agree_with_itself():
    assert read_report(a_real_report(), 0, 0)["ok"]
    assert read_report(a_real_report(ok=False, first_failure=None, loss=None), 0, 0)["ok"] is False
    for change in [
        dict(steps=[]),  # the KeyError of old: no steps to draw
        dict(loss=dict(kid=1.5, yours=9.0, characters=10)),  # "ok" with a loss that differs
        dict(problem=dict(kind="exception", message="x", where="")),  # "ok" with a problem
        dict(layer=1),  # a report for another layer
        dict(steps=[dict(name="runs", status="ok")]),  # a step without its detail
        dict(compare=dict(title="t", row=0, chars=["a"], yours=[1], kid=[])),
        dict(loss=dict(kid=float("nan"), yours=float("nan"), characters=1)),
        dict(mistake="rm -rf"),
        dict(seconds="fast"),
    ]:
        assert read_report(a_real_report(**change), 0, 0) is None, change
    assert read_report(b"", 0, 0) is None and read_report(b"[1, 2]", 0, 0) is None


# --------------------------------------------------------------------------
# Training with a visitor's Head: the same jail


@needs_jail
@pytest.mark.slow
def test_training_with_a_visitors_head_runs_in_the_jail(tmp_path, tiny_data_file):
    import subprocess

    from tinyllm.sandbox import jail_training, train_in_sandbox

    canary = tmp_path / "canary.txt"
    canary.write_text("the server's")
    spy = "\n".join(
        [
            attempt("canary", f"_ = open({str(canary)!r}, 'w').write('visitor')"),  # the jail's own /tmp
            attempt("page", f"_ = open({str(ROOT / 'pages' / 'meet.py')!r}, 'a').write('x')"),
            attempt("project", f"_ = open({str(ROOT / 'pyproject.toml')!r}).read()"),
            attempt("fork", "import os; _ = os.fork() or os._exit(0)"),
        ]
    )
    head = tmp_path / "run" / "head" / "my_head.py"
    head.parent.mkdir(parents=True)
    head.write_text(spy + "\n" + SOLUTION)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "tinyllm", "train", "--out", str(run), "--data", str(tiny_data_file)]
    cmd += ["--head", str(head), "--steps", "5", "--block-size", "8", "--n-embd", "16", "--n-layer", "1"]
    cmd += ["--n-head", "2", "--batch-size", "4", "--quiet"]
    options = train_in_sandbox()
    done = subprocess.run(jail_training(cmd, run), cwd=ROOT, capture_output=True, text=True, timeout=300, **options)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert canary.read_text() == "the server's"  # it wrote a file of its own, in memory
    assert "page: refused" in out and "project: refused" in out and "fork: refused" in out, out
    assert (run / "latest.pt").is_file()


# --------------------------------------------------------------------------
# The page


@pytest.mark.parametrize("setting", [None, "auto", "yes"])
@pytest.mark.slow  # the whole app, in AppTest
def test_the_page_runs_no_code_by_default_for_a_visitor_over_loopback(tiny_run, tmp_path, monkeypatch, setting):
    """AppTest connects as a browser on the server's own machine does, and as
    one behind a loopback proxy that adds no header (ssh -L, socat, kubectl
    port-forward): no address, no forwarding header. Unless the deployer says
    on (or local), no code runs for it, and the page says why."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("PEEK_KID_DIR", str(tiny_run))
    monkeypatch.setenv("PEEK_RUNS_DIR", str(tmp_path / "runs"))
    if setting is None:
        monkeypatch.delenv("PEEK_VISITOR_CODE")
    else:
        monkeypatch.setenv("PEEK_VISITOR_CODE", setting)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=30)
    at.run()
    at.switch_page("pages/write_head.py").run()
    assert not at.exception
    assert not [t for t in at.text_area if t.key == "head_code"]  # no editor, no Check
    said = " ".join(str(i.value) for i in at.info)
    assert ("PEEK_VISITOR_CODE=off" if setting is None else f"PEEK_VISITOR_CODE='{setting}' is not understood") in said


# --------------------------------------------------------------------------
# A machine without the whole jail


def without_the_jail(monkeypatch, missing=("no network (a network namespace)",)):
    import tinyllm.sandbox as sandbox

    monkeypatch.setattr(sandbox, "JAIL", {})
    monkeypatch.setattr(sandbox, "jail_report", lambda: dict(missing=list(missing)))


def test_a_machine_without_the_jail_runs_nothing_when_on_and_the_log_names_what_is_missing(monkeypatch, caplog):
    from tinyllm.errors import TinyLLMError

    without_the_jail(monkeypatch)
    with caplog.at_level("ERROR", logger="peek"):
        with pytest.raises(TinyLLMError, match="network namespace"):
            check_in_sandbox(SOLUTION, KID)
    assert "lacks part of the jail: no network (a network namespace)" in caplog.text


@pytest.mark.skipif(sys.platform != "linux", reason="the seccomp filter is Linux's")
@pytest.mark.slow  # a check that imports PyTorch in a process of its own: seconds
def test_local_without_the_jail_still_bans_new_processes_and_limits_memory(monkeypatch):
    without_the_jail(monkeypatch)
    monkeypatch.setenv("PEEK_VISITOR_CODE", "local")
    code = attempt("fork", "import os; _ = os.fork() or os._exit(0)")
    report = check_in_sandbox(planted(code), KID)
    assert report["ok"] and report["jail"]["how"] == "limits"
    assert "fork: refused" in report["printed"] and "fork: got" not in report["printed"]
