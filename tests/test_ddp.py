"""Several processes, one run (tinyllm/distributed.py): two CPU processes
over gloo train what one process trains, and only process 0 writes.

The processes are real: torchrun for the command line, torch.multiprocessing
where a test must hand each process its own arguments. Each pays for a
Python and a torch start, hence `slow`.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch.multiprocessing
from helpers import tiny_configs

from tinyllm.checkpoint import load_checkpoint
from tinyllm.data import corpus_from_bytes
from tinyllm.io import read_jsonl
from tinyllm.settings import flag
from tinyllm.train import train

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = dict(steps=40, eval_interval=10, dropout=0.0, batch_size=16)  # dropout 0: the same numbers


def losses(run_dir) -> list:
    return [(r["step"], r["train_loss"], r["val_loss"]) for r in read_jsonl(Path(run_dir) / "log.jsonl")]


def assert_same_losses(ours, theirs):
    assert [row[0] for row in ours] == [row[0] for row in theirs] == [0, 10, 20, 30, 40]
    for mine, one in zip(ours, theirs):
        assert mine == pytest.approx(one, abs=1e-3)
    assert theirs[-1][2] < theirs[0][2] - 0.3  # it learned: not equal because nothing moved


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, tiny_corpus):
    run_dir = tmp_path_factory.mktemp("ddp") / "one"
    train(*tiny_configs(**SETTINGS), tiny_corpus, run_dir)
    return run_dir


def torchrun(nproc: int, args: list) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        command + ["-m", "tinyllm", "train", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )


def cli_flags(**settings) -> list:
    model_config, train_config = tiny_configs(**settings)
    values = {**model_config.to_dict(), **train_config.to_dict()}
    del values["vocab_size"]
    return [word for name, value in values.items() for word in (flag(name), str(value))]


@pytest.mark.slow
def test_two_processes_log_the_losses_of_one(one_process, tiny_data_file, tmp_path):
    run_dir = tmp_path / "two"
    done = torchrun(2, ["--out", str(run_dir), "--quiet", *cli_flags(**SETTINGS)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert_same_losses(losses(run_dir), losses(one_process))
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(p.name for p in one_process.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "done" and summary["step"] == 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process(rank, port, run_dirs, text, stop_at, resume):
    """One of two processes, as torchrun would start it, but with its own run
    folder: what process 1 writes lands in its folder, where the test sees it."""
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    run_dir = Path(run_dirs[rank])

    def stop(event):  # a user dropping a STOP file in
        if event["kind"] == "eval" and event["step"] == stop_at:
            (run_dir / "STOP").touch()

    train(*tiny_configs(**SETTINGS), corpus_from_bytes(text.encode(), "rhymes.txt"), run_dir, resume, stop)


def two_processes(run_dirs, text, stop_at=None, resume=False):
    args = (free_port(), [str(d) for d in run_dirs], text, stop_at, resume)
    # spawn re-runs the parent's __main__ in each child; after an AppTest that is streamlit_app.py
    # (Streamlit runs a script as __main__), so the children get an empty one instead
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        torch.multiprocessing.spawn(process, args=args, nprocs=2, join=True)
    finally:
        sys.modules["__main__"] = main


@pytest.mark.slow
def test_a_second_process_writes_nothing_and_any_number_resumes(one_process, tiny_corpus, tiny_text, tmp_path):
    run_dir, elsewhere = tmp_path / "run", tmp_path / "process-1"
    two_processes([run_dir, elsewhere], tiny_text, stop_at=20)
    assert not elsewhere.exists()  # process 1 never touched its folder
    assert json.loads((run_dir / "progress.json").read_text())["status"] == "stopped"
    assert [row[0] for row in losses(run_dir)] == [0, 10, 20]
    summary = train(None, None, tiny_corpus, run_dir, resume=True)  # two stopped, one resumes
    assert summary["status"] == "done" and summary["step"] == 40
    assert_same_losses(losses(run_dir), losses(one_process))

    run_dir = tmp_path / "again"

    def stop_at_10(event):
        if event["kind"] == "eval" and event["step"] == 10:
            (run_dir / "STOP").touch()

    train(*tiny_configs(**SETTINGS), tiny_corpus, run_dir, callback=stop_at_10)
    two_processes([run_dir, elsewhere], tiny_text, resume=True)  # one stopped, two resume
    assert not elsewhere.exists()
    assert_same_losses(losses(run_dir), losses(one_process))


@pytest.mark.slow
def test_a_batch_that_does_not_divide_is_refused_naming_both_numbers(tiny_data_file, tmp_path):
    run_dir = tmp_path / "run"
    refused = torchrun(2, ["--out", str(run_dir), "--quiet", *cli_flags(**{**SETTINGS, "batch_size": 15})])
    assert refused.returncode != 0
    assert "--batch-size 15 does not divide among 2 processes" in refused.stderr
    assert not run_dir.exists()


def children(parent: int) -> list:
    """The process ids whose parent is `parent` (Linux's /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])  # after the name, which may hold spaces
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        if ppid == parent:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds torchrun's processes in Linux's /proc")
def test_sigterm_to_one_process_stops_both_at_the_same_step(tiny_data_file, tmp_path):
    """torchrun's process 1 alone gets SIGTERM: both stop cleanly (had only
    process 1 stopped, process 0 would wait for it at the next step's
    gradients and fail), and the run can be resumed."""
    run_dir = tmp_path / "run"
    settings = {**SETTINGS, "steps": 100000, "eval_interval": 50}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    command += ["-m", "tinyllm", "train", "--out", str(run_dir), "--quiet", *cli_flags(**settings)]
    launcher = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, text=True)
    try:
        deadline = time.time() + 180
        while not (run_dir / "log.jsonl").exists() or len(read_jsonl(run_dir / "log.jsonl")) < 2:
            assert time.time() < deadline and launcher.poll() is None
            time.sleep(0.2)
        process_0 = json.loads((run_dir / "progress.json").read_text())["pid"]
        (process_1,) = [pid for pid in children(launcher.pid) if pid != process_0]
        os.kill(process_1, signal.SIGTERM)
        assert launcher.wait(timeout=120) == 0
    finally:
        launcher.kill()
    assert json.loads((run_dir / "progress.json").read_text())["status"] == "stopped"
    assert load_checkpoint(run_dir / "latest.pt")["step"] >= 50
