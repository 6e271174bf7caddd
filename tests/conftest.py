"""Shared fixtures: a small learnable corpus and a tiny run trained on it.

Everything here is made in-process, in seconds, with fixed seeds. Nothing
touches the network.
"""

import hashlib
import os
import random
from pathlib import Path

import pytest
import torch
from helpers import make_text, tiny_configs

from tinyllm.data import corpus_from_bytes
from tinyllm.train import train

KID = Path(__file__).resolve().parent.parent / "artifacts" / "kid"

# One thread, here and in the processes the tests start: the tests' models are
# tiny, and on a busy machine two threads that wait for each other made a
# 120-step training 5 times slower. The app does the same (streamlit_app.py).
torch.set_num_threads(1)
os.environ["OMP_NUM_THREADS"] = "1"


def kid_fingerprint() -> dict:
    return {
        path.relative_to(KID).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(KID.rglob("*"))
        if path.is_file()
    }


def pytest_sessionstart(session):
    session.config.kid_before = kid_fingerprint()


def pytest_sessionfinish(session, exitstatus):
    """The committed kid is what the app deploys: no test may change, add or
    remove a file of it. A change fails the whole run."""
    before, after = session.config.kid_before, kid_fingerprint()
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    if changed:
        print(f"\nThe tests changed the committed kid (artifacts/kid): {', '.join(changed)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def tiny_text():
    return make_text()


@pytest.fixture
def tiny_data_file(tmp_path, monkeypatch, tiny_text):
    """The small corpus as a file that `python -m tinyllm train` finds (TINYLLM_DATA)."""
    path = tmp_path / "rhymes.txt"
    path.write_text(tiny_text)
    monkeypatch.setenv("TINYLLM_DATA", str(path))
    return path


@pytest.fixture(scope="session")
def tiny_corpus(tiny_text):
    return corpus_from_bytes(tiny_text.encode(), "rhymes.txt")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_corpus):
    """A trained tiny run folder (120 steps), exported, shared by the tests that only read it."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    model_config, train_config = tiny_configs()
    train(model_config, train_config, tiny_corpus, run_dir)
    from tinyllm.export import export_run

    export_run(run_dir)
    return run_dir


@pytest.fixture(scope="session")
def smallest_run(tmp_path_factory):
    """The smallest run the limits accept: 1 layer, 1 head, block 2, a
    2-character vocabulary (30 steps), exported."""
    rng = random.Random(0)
    corpus = corpus_from_bytes("".join(rng.choice("ab") for _ in range(3000)).encode(), "ab.txt")
    run_dir = tmp_path_factory.mktemp("runs") / "smallest"
    model_config, train_config = tiny_configs(n_layer=1, n_head=1, block_size=2, n_embd=4, steps=30, eval_interval=10)
    train(model_config, train_config, corpus, run_dir)
    from tinyllm.export import export_run

    export_run(run_dir)
    return run_dir


@pytest.fixture(scope="session")
def largest_run(tmp_path_factory):
    """The largest run the default limits accept (jobs.largest_accepted: the
    form's most layers and heads, the longest context, as wide as the
    parameter limit allows, every character the vocabulary limit allows),
    trained 4 steps and exported."""
    from tinyllm.export import export_run
    from tinyllm.jobs import LIMIT_SETTINGS, Limits, largest_accepted

    # the defaults, whatever PEEK_MAX_* this machine has set
    limits = Limits(**{name: default for name, (_, default, *_) in LIMIT_SETTINGS.items()})
    alphabet = [chr(0x21 + i) for i in range(limits.max_vocab)]
    rng = random.Random(0)
    corpus = corpus_from_bytes(
        ("".join(rng.choice(alphabet) for _ in range(6000)) + "".join(alphabet)).encode(), "all.txt"
    )
    run_dir = tmp_path_factory.mktemp("runs") / "largest"
    settings = dict(largest_accepted(limits), steps=4, eval_interval=2, eval_batches=1, batch_size=2, sample_chars=8)
    train(*tiny_configs(**settings), corpus, run_dir)
    export_run(run_dir)
    return run_dir
