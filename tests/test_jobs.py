"""Background training for the app: one job at a time, clean stops, safe limits."""

import hashlib
import os
import time

import pytest

from tinyllm.errors import TinyLLMError
from tinyllm.jobs import Limits, TrainingJobs
from tinyllm.runfolder import RunFolder, list_runs, resumable_runs, training_runs

TINY = dict(steps=60, batch_size=8, block_size=16, n_embd=32, n_head=4, n_layer=1, dropout=0.0, lr=3e-3, seed=0)


@pytest.fixture
def env(tiny_run, tmp_path, monkeypatch, tiny_data_file):
    monkeypatch.setenv("PEEK_KID_DIR", str(tiny_run))
    monkeypatch.setenv("PEEK_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path


def wait(jobs, timeout=120):
    deadline = time.time() + timeout
    while jobs.running():
        assert time.time() < deadline, "the job did not finish"
        time.sleep(0.2)
    return jobs.status()


def digest(folder):
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_a_run_trains_exports_and_is_listed(env, tiny_run):
    kid_before = digest(tiny_run)
    jobs = TrainingJobs()
    jobs.start("first", TINY)
    status = wait(jobs)
    assert status["returncode"] == 0, (env / "runs" / "first" / "train.out").read_text()
    assert status["summary"]["step"] == 60 and status["progress"]["status"] == "done"
    listed = {run.name: run for run in list_runs(tiny_run)}
    assert listed["first"].exported and listed["first"].steps == 60
    assert digest(tiny_run) == kid_before  # the committed kid is never touched


@pytest.mark.slow
def test_second_start_is_refused_while_one_runs(env):
    jobs = TrainingJobs()
    jobs.start("long", {**TINY, "steps": 5000})
    try:
        with pytest.raises(TinyLLMError, match="busy training 'long'"):
            jobs.start("other", TINY)
    finally:
        jobs.stop()
        status = wait(jobs)
    assert status["progress"]["status"] == "stopped"
    assert resumable_runs() == ["long"]
    step = status["progress"]["step"]
    assert step < 5000
    # resume it, then stop it again: it continued from where it was
    jobs.start("long", {}, resume=True)
    deadline = time.time() + 60
    while (RunFolder(env / "runs" / "long").status()["progress"] or {}).get("step", 0) <= step + 5:
        assert time.time() < deadline and jobs.running()
        time.sleep(0.2)
    jobs.stop()
    status = wait(jobs)
    assert status["progress"]["step"] > step and status["progress"]["status"] == "stopped"


@pytest.mark.slow
def test_killed_run_leaves_a_resumable_checkpoint_and_readable_log(env):
    jobs = TrainingJobs()
    run_dir = jobs.start("killed", {**TINY, "steps": 5000})
    deadline = time.time() + 60
    while len(RunFolder(run_dir).status()["rows"]) < 3:
        assert time.time() < deadline
        time.sleep(0.2)
    jobs.proc.kill()  # no chance to clean up: SIGKILL
    status = wait(jobs)
    assert status["returncode"] != 0
    assert status["rows"] and status["resumable"]
    assert "killed" in resumable_runs()
    jobs.start("killed", {}, resume=True)
    time.sleep(1)
    jobs.stop()
    assert wait(jobs)["returncode"] == 0


@pytest.mark.parametrize(
    "name, settings, upload, message",
    [
        ("../escape", TINY, None, "run name"),
        ("evil\n", TINY, None, "run name"),
        ("deep", {**TINY, "n_layer": 10**7}, None, "parameters"),  # counted, never built
        ("many-chars", TINY, "".join(chr(0x4E00 + i) for i in range(3000)).encode() * 4, "different characters"),
        ("big", {**TINY, "steps": 10**6}, None, "at most"),
        ("long", {**TINY, "block_size": 4096}, None, "contexts of at most 64"),
        ("wide", {**TINY, "n_embd": 1024, "n_head": 8, "n_layer": 8}, None, "parameters"),
        # the app's form names settings by its labels, not by the CLI's flags
        ("odd", {**TINY, "n_embd": 30}, None, r"^Invalid settings: Width \(n_embd\) \(30\) must be divisible by Heads"),
        ("binary", TINY, b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        ("empty", TINY, b"", "empty"),
        ("huge", TINY, b"a" * 2_000_001, "MB"),
    ],
)
def test_bad_requests_are_refused(env, name, settings, upload, message):
    jobs = TrainingJobs(Limits(max_steps=5000, max_params=500_000, max_upload_mb=2))
    with pytest.raises(TinyLLMError, match=message):
        jobs.start(name, settings, upload, "upload.bin")
    assert not jobs.running()
    assert not (env / "runs" / name).exists()  # for ../escape: nothing outside runs/ either


@pytest.mark.slow
def test_uploaded_text_trains(env):
    jobs = TrainingJobs()
    jobs.start("mine", {**TINY, "steps": 20}, ("hello world, hello peek. " * 200).encode(), "mine.txt")
    status = wait(jobs)
    assert status["returncode"] == 0 and status["corpus"]["name"] == "mine.txt"
    with pytest.raises(TinyLLMError, match="exists already"):
        jobs.start("mine", TINY)


@pytest.mark.slow
def test_a_visitors_head_trains_in_a_process_without_the_servers_environment(env, monkeypatch):
    from head_solutions import SOLUTION

    monkeypatch.setenv("PEEK_VISITOR_CODE", "on")  # a visitor's Head runs only where the setting allows
    monkeypatch.setenv("PEEK_TEST_SECRET", "hunter2")
    spy = "        import os; print('secret:', os.environ.get('PEEK_TEST_SECRET'))\n"
    code = SOLUTION.replace("        B, T, C = x.shape", spy + "        B, T, C = x.shape", 1)
    jobs = TrainingJobs()
    jobs.start("with-my-head", {**TINY, "steps": 20}, head_code=code)
    status = wait(jobs)
    out = (env / "runs" / "with-my-head" / "train.out").read_text()
    assert status["returncode"] == 0, out
    assert "secret: None" in out and "hunter2" not in out
    assert (env / "runs" / "with-my-head" / "head" / "my_head.py").read_text() == code
    assert {run.name: run for run in list_runs(env)}["with-my-head"].exported


@pytest.mark.parametrize("value", ["2M", "five", "", "-1", "nan", "inf"])
def test_a_bad_limit_setting_falls_back_to_its_default_with_a_message(monkeypatch, value):
    from tinyllm.jobs import LIMIT_SETTINGS, SETTING_PROBLEMS

    for variable, *_ in LIMIT_SETTINGS.values():
        monkeypatch.setenv(variable, value)
    SETTING_PROBLEMS.clear()
    limits = Limits()
    for field_name, (variable, default, _, _) in LIMIT_SETTINGS.items():
        assert getattr(limits, field_name) == default
        assert variable in SETTING_PROBLEMS[variable] and "default" in SETTING_PROBLEMS[variable]
    monkeypatch.setenv("PEEK_MAX_STEPS", "6e3")  # a step count is a whole number
    assert Limits().max_steps == LIMIT_SETTINGS["max_steps"][1] and "6e3" in SETTING_PROBLEMS["PEEK_MAX_STEPS"]
    monkeypatch.setenv("PEEK_MAX_STEPS", "700")
    assert Limits().max_steps == 700


@pytest.mark.slow
def test_delete_refuses_the_kid_a_path_and_the_training_run(env):
    jobs = TrainingJobs()
    for name in ("kid", "../escape", "nothing-here"):
        with pytest.raises(TinyLLMError):
            jobs.delete(name)
    jobs.start("long", {**TINY, "steps": 5000})
    try:
        with pytest.raises(TinyLLMError, match="training"):
            jobs.delete("long")
        deadline = time.time() + 60
        while RunFolder(env / "runs" / "long").writer() is None:
            assert time.time() < deadline and jobs.running()
            time.sleep(0.1)
        # a slot that did not start it (another server, or a cleared cache) asks the folder's lock
        with pytest.raises(TinyLLMError, match="training"):
            TrainingJobs().delete("long")
    finally:
        jobs.stop()
        wait(jobs)
    jobs.delete("long")
    assert not (env / "runs" / "long").exists()


@pytest.mark.slow
def test_a_run_left_training_by_a_killed_server_is_recognised_and_stopped(env):
    """The old server's job (a first TrainingJobs) keeps training; a new server
    (a second TrainingJobs) never offers it for Resume, refuses a second
    run, and its Stop stops that very process."""
    old_server = TrainingJobs()
    old_server.start("orphan", {**TINY, "steps": 5000})
    orphan = old_server.proc
    deadline = time.time() + 60
    while "orphan" not in training_runs() or not (env / "runs" / "orphan" / "latest.pt").exists():
        assert time.time() < deadline and orphan.poll() is None
        time.sleep(0.2)
    new_server = TrainingJobs()
    assert new_server.others() == training_runs() == {"orphan": orphan.pid}
    assert old_server.others() == {}  # its own run
    assert "orphan" not in resumable_runs()
    with pytest.raises(TinyLLMError, match=f"still training \\(process {orphan.pid}\\)"):
        new_server.start("second", TINY)
    new_server.stop_orphan("orphan")
    assert orphan.wait(timeout=60) == 0
    assert RunFolder(env / "runs" / "orphan").status()["progress"]["status"] == "stopped"
    assert training_runs() == {} and resumable_runs() == ["orphan"]


def test_resuming_applies_the_servers_limits_to_the_runs_own_settings(env, tiny_corpus):
    import os

    from helpers import tiny_configs

    from tinyllm.train import train

    run_dir = env / "runs" / "from-the-cli"
    run_dir.mkdir(parents=True)
    (run_dir / "STOP").write_text(str(os.getpid()))  # stop at once: a stopped run set for 5,000 steps
    assert train(*tiny_configs(steps=5000), tiny_corpus, run_dir)["status"] == "stopped"
    with pytest.raises(TinyLLMError, match="set for 5,000 steps"):
        TrainingJobs(Limits(max_steps=1000)).start("from-the-cli", {}, resume=True)
    with pytest.raises(TinyLLMError, match="parameters"):
        TrainingJobs(Limits(max_steps=10_000, max_params=1_000)).start("from-the-cli", {}, resume=True)


def test_no_reader_waits_on_a_fifo_in_a_run_folder(env, tiny_run):
    """Every reader of run-folder files, with each file a FIFO: each gives an
    answer (nothing there, or an error in words) at once, never waits."""
    import shutil
    import threading

    from helpers import fifo_run, release_fifos

    from tinyllm.runfolder import RunFolderLock

    runs = env / "runs"
    shutil.copytree(tiny_run, runs / "piped")
    names = ["progress.json", "summary.json", "corpus.json", "log.jsonl", "STOP", ".writer", "latest.pt"]
    fifos = fifo_run(runs / "piped", names)
    shutil.copytree(tiny_run, runs / "out-piped")  # resumable as far as start() checks, but for its train.out
    fifos += fifo_run(runs / "out-piped", ["train.out"])
    outcome = {}

    def read_everything():
        folder = RunFolder(runs / "piped")
        status = folder.status()
        assert status["progress"] is status["summary"] is status["corpus"] is None and status["rows"] == []
        assert folder.writer() is None and folder.state() is None
        assert training_runs() == {} and resumable_runs() == []
        assert {run.name: run for run in list_runs(tiny_run)}["piped"].exported  # its model card is a file
        with pytest.raises(TinyLLMError, match="lock file"):
            RunFolderLock(folder.path).__enter__()
        with pytest.raises(TinyLLMError, match="checkpoint"):
            TrainingJobs().start("piped", {}, resume=True)
        with pytest.raises(TinyLLMError, match="train.out is not a file"):
            TrainingJobs().start("out-piped", {}, resume=True)
        folder.ask_to_stop(1)  # replaces the FIFO named STOP
        assert (folder.path / "STOP").read_text() == "1"
        folder.stop.unlink()
        os.mkfifo(folder.stop)
        folder.remove_leftovers()  # a STOP that is not a file is not a stop for this process
        assert not folder.stop.exists()
        outcome["done"] = True

    def run():
        try:
            read_everything()
        except BaseException as e:  # handed to the test
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    release_fifos(fifos)
    assert not thread.is_alive(), "a reader waited on a FIFO"
    if "error" in outcome:
        raise outcome["error"]
    assert outcome["done"]
