import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import tiny_configs

from tinyllm.checkpoint import load_checkpoint, load_model
from tinyllm.data import Vocab, split
from tinyllm.errors import TinyLLMError
from tinyllm.io import read_jsonl
from tinyllm.train import exact_loss, lr_at, snapshot_steps, train, validate

ROOT = Path(__file__).resolve().parent.parent


def test_loss_falls_far_below_a_uniform_guess(tiny_run, tiny_corpus):
    uniform = math.log(len(Vocab.from_text(tiny_corpus.text)))
    rows = read_jsonl(tiny_run / "log.jsonl")
    assert rows[0]["val_loss"] == pytest.approx(uniform, abs=0.15)  # untrained: a uniform guess
    assert rows[-1]["val_loss"] < 0.5 * uniform
    model, vocab, ckpt = load_model(tiny_run / "model.pt")
    _, val_ids = split(torch.tensor(vocab.encode(tiny_corpus.text)))
    assert exact_loss(model, val_ids) < 0.5 * uniform


def test_run_folder_holds_log_snapshots_and_checkpoints(tiny_run):
    rows = read_jsonl(tiny_run / "log.jsonl")
    assert [r["step"] for r in rows] == [0, 40, 50, 80, 100, 120]
    assert {"train_loss", "val_loss", "lr", "tokens_per_s", "elapsed_s", "sample"} <= set(rows[0])
    assert all(len(r["sample"]) == 40 for r in rows)
    snaps = sorted(p.name for p in (tiny_run / "snapshots").glob("*.pt"))
    assert (
        snaps
        == [f"step_{s:06d}.pt" for s in snapshot_steps(120)]
        == ["step_000000.pt", "step_000050.pt", "step_000100.pt", "step_000120.pt"]
    )
    best = load_checkpoint(tiny_run / "model.pt")
    assert best["losses"]["val"] == min(r["val_loss"] for r in rows)
    assert "resume" in load_checkpoint(tiny_run / "latest.pt")


def test_learning_rate_warms_up_then_decays():
    _, cfg = tiny_configs(steps=100, warmup_steps=10, lr=1e-2, min_lr=1e-3)
    assert lr_at(0, cfg) == pytest.approx(1e-3)
    assert lr_at(9, cfg) == pytest.approx(1e-2)
    assert lr_at(100, cfg) == pytest.approx(1e-3)
    assert lr_at(30, cfg) > lr_at(60, cfg) > lr_at(90, cfg)


@pytest.mark.parametrize(
    "overrides, flag",
    [
        (dict(n_embd=30, n_head=4), "--n-embd"),
        (dict(steps=0), "--steps"),
        (dict(block_size=100000), "--block-size"),
        (dict(dropout=1.0), "--dropout"),
        (dict(lr=-1.0), "--lr"),
        (dict(batch_size=0), "--batch-size"),
        (dict(device="tpu"), "--device"),
        (dict(seed=-1), "--seed"),
        (dict(seed=2**63), "--seed"),
        (dict(grad_clip=float("nan")), "--grad-clip"),
        (dict(lr=float("inf")), "--lr"),
        (dict(min_lr=0.01, lr=0.001), "--min-lr"),
        (dict(warmup_steps=-1), "--warmup-steps"),
        (dict(weight_decay=-0.1), "--weight-decay"),
        (dict(n_layer=0), "--n-layer"),
    ],
)
def test_bad_settings_are_refused_naming_the_flag(overrides, flag, tiny_corpus):
    model_config, train_config = tiny_configs(**overrides)
    with pytest.raises(TinyLLMError, match=flag):
        validate(model_config, train_config, len(tiny_corpus.text))


def test_the_forms_words_name_each_setting_by_its_label(tiny_corpus):
    model_config, train_config = tiny_configs(n_embd=30, n_head=4, steps=0, dropout=1.0)
    with pytest.raises(TinyLLMError) as refused:
        validate(model_config, train_config, len(tiny_corpus.text), words="form")
    message = str(refused.value)
    assert "Steps must be at least 1, not 0" in message
    assert "Dropout must be below 1, not 1" in message
    assert "Width (n_embd) (30) must be divisible by Heads per layer (4)" in message
    assert "--" not in message


def test_stopped_then_resumed_equals_uninterrupted(tmp_path, tiny_corpus):
    model_config, train_config = tiny_configs(steps=60, eval_interval=20, dropout=0.1)
    straight = tmp_path / "straight"
    train(model_config, train_config, tiny_corpus, straight)

    stopped = tmp_path / "stopped"

    def stop_at_40(event):  # what a STOP file does when a user drops it in
        if event["kind"] == "eval" and event["step"] == 40:
            (stopped / "STOP").touch()

    model_config, train_config = tiny_configs(steps=60, eval_interval=20, dropout=0.1)
    summary = train(model_config, train_config, tiny_corpus, stopped, callback=stop_at_40)
    assert summary["status"] == "stopped" and summary["step"] == 40
    assert load_checkpoint(stopped / "latest.pt")["step"] == 40

    summary = train(None, None, tiny_corpus, stopped, resume=True)
    assert summary["status"] == "done" and summary["step"] == 60
    steps = [r["step"] for r in read_jsonl(stopped / "log.jsonl")]
    assert steps == [0, 20, 40, 50, 60]  # continued, no duplicate rows
    a = load_checkpoint(straight / "latest.pt")["model"]
    b = load_checkpoint(stopped / "latest.pt")["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=name)


def test_existing_run_is_not_overwritten(tiny_run, tiny_corpus):
    model_config, train_config = tiny_configs()
    with pytest.raises(TinyLLMError, match="already holds a run"):
        train(model_config, train_config, tiny_corpus, tiny_run)


def test_resume_needs_the_same_corpus(tiny_run, tmp_path):
    from tinyllm.data import corpus_from_bytes

    other = corpus_from_bytes(b"something else entirely " * 50, "other.txt")
    with pytest.raises(TinyLLMError, match="same corpus"):
        train(None, None, other, tiny_run, resume=True)


@pytest.mark.slow
def test_sigterm_leaves_a_resumable_run(tmp_path, tiny_text):
    corpus = tmp_path / "rhymes.txt"
    corpus.write_text(tiny_text)
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "tinyllm",
        "train",
        "--data",
        str(corpus),
        "--out",
        str(out),
        "--block-size",
        "16",
        "--n-embd",
        "32",
        "--n-head",
        "4",
        "--n-layer",
        "1",
        "--batch-size",
        "8",
        "--steps",
        "100000",
        "--eval-interval",
        "50",
        "--quiet",
        "--eval-batches",
        "2",
        "--sample-chars",
        "10",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while not (out / "log.jsonl").exists() or len(read_jsonl(out / "log.jsonl")) < 3:
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output
    assert "--resume" in output
    ckpt = load_checkpoint(out / "latest.pt")
    stopped_at = ckpt["step"]
    assert stopped_at >= 100
    log_steps = [r["step"] for r in read_jsonl(out / "log.jsonl")]
    assert log_steps == sorted(set(log_steps)) and log_steps[-1] <= stopped_at
    assert read_jsonl(out / "log.jsonl")  # readable, not truncated
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())

    # continue it for a little while, then stop it with a STOP file
    proc = subprocess.Popen(cmd + ["--resume"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while load_checkpoint(out / "latest.pt")["step"] <= stopped_at:
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.2)
    (out / "STOP").touch()
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert load_checkpoint(out / "latest.pt")["step"] > stopped_at
    log_steps = [r["step"] for r in read_jsonl(out / "log.jsonl")]
    assert log_steps == sorted(set(log_steps))
    assert not (out / "STOP").exists()
    os.sync()


def test_a_diverging_run_stops_with_a_clear_error_and_a_failed_status(tiny_corpus, tmp_path):
    import json

    model_config, train_config = tiny_configs(lr=1e30, min_lr=1e-4, steps=50)
    with pytest.raises(TinyLLMError, match="diverged at step"):
        train(model_config, train_config, tiny_corpus, tmp_path / "run")
    progress = json.loads((tmp_path / "run" / "progress.json").read_text())  # strict JSON: no NaN
    assert progress["status"] == "failed"


@pytest.mark.parametrize(
    "setting, value", [("grad_clip", -1.0), ("grad_clip", float("nan")), ("seed", 2**70), ("lr", float("inf"))]
)
def test_settings_that_cannot_train_are_refused(tiny_corpus, tmp_path, setting, value):
    model_config, train_config = tiny_configs(**{setting: value})
    with pytest.raises(TinyLLMError, match="--" + setting.replace("_", "-")):
        train(model_config, train_config, tiny_corpus, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_stale_stop_file_and_leftover_temporary_files_are_cleared(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "STOP").touch()  # left by a kill before the run read it
    (run_dir / ".log.jsonl.abc123.tmp").write_text("half a file")
    summary = train(*tiny_configs(steps=20), tiny_corpus, run_dir)
    assert summary["status"] == "done" and summary["step"] == 20
    assert not list(run_dir.rglob("*.tmp"))


@pytest.mark.slow
def test_a_run_folder_has_one_writer(tiny_corpus, tiny_data_file, tmp_path):
    from tinyllm.runfolder import RunFolder, RunFolderLock

    def writer_of(path):
        return RunFolder(path).writer()

    out = tmp_path / "run"
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tinyllm",
            "train",
            "--out",
            str(out),
            "--quiet",
            "--steps",
            "5000",
            "--block-size",
            "16",
            "--n-embd",
            "32",
            "--n-layer",
            "1",
            "--device",
            "cpu",
        ],
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        deadline = time.time() + 60
        while not (out / "progress.json").exists():
            assert time.time() < deadline and first.poll() is None
            time.sleep(0.2)
        assert writer_of(out) == first.pid
        with pytest.raises(TinyLLMError, match=f"being written by another process \\(pid {first.pid}\\)"):
            train(*tiny_configs(), tiny_corpus, out, resume=True)
    finally:
        (out / "STOP").write_text(str(first.pid))
        first.wait(timeout=60)
    assert writer_of(out) is None  # the lock went with the process
    with RunFolderLock(out):  # and the next writer gets it
        assert writer_of(out) == os.getpid()


def test_killed_before_its_first_resumable_checkpoint_it_starts_again(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    first = train(*tiny_configs(steps=40), tiny_corpus, out)
    losses = [r["val_loss"] for r in read_jsonl(out / "log.jsonl")]
    for name in ("latest.pt", "summary.json"):  # as if killed right after the first model.pt
        (out / name).unlink()
    with pytest.raises(TinyLLMError, match="without --resume to start it again"):
        train(*tiny_configs(steps=40), tiny_corpus, out, resume=True)
    again = train(*tiny_configs(steps=40), tiny_corpus, out)
    assert again["status"] == first["status"] == "done"
    assert [r["val_loss"] for r in read_jsonl(out / "log.jsonl")] == losses


SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


def test_a_run_takes_exactly_the_textbook_steps(tmp_path, tiny_corpus):
    """train() against the plain loop of "Let's build GPT", written out here
    a second time: same seed, batches, schedule and optimizer give the same
    weights, bit for bit (dropout on, so the random numbers' order counts too)."""
    from tinyllm.model import GPT
    from tinyllm.train import random_batch

    model_config, train_config = tiny_configs(steps=30, eval_interval=10, dropout=0.1)
    train(model_config, train_config, tiny_corpus, tmp_path / "run")
    trained = load_checkpoint(tmp_path / "run" / "latest.pt")["model"]

    vocab = Vocab.from_text(tiny_corpus.text)
    train_ids, _ = split(torch.tensor(vocab.encode(tiny_corpus.text)))
    torch.manual_seed(train_config.seed)
    model = GPT(model_config).set_fast(True)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": train_config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        betas=(0.9, 0.99),
    )
    batches = torch.Generator().manual_seed(train_config.seed)
    model.train()
    for step in range(train_config.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, train_config)
        x, y = random_batch(train_ids, model_config.block_size, train_config.batch_size, batches)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_config.grad_clip)
        optimizer.step()
    for name, weights in model.state_dict().items():
        if name in trained:
            assert torch.equal(weights, trained[name]), name


@pytest.mark.skipif(not SHAKESPEARE.is_file(), reason="needs tinyshakespeare beside the project (../shared)")
@pytest.mark.slow
def test_the_kids_recipe_repeats_the_kids_first_100_steps(tmp_path):
    """The committed kid's own settings and corpus, stopped at step 100: the
    logged losses equal the kid's. Exactly on the CPU that trained it; another
    CPU sums floats in another order (this project's CI machine: 0.0004 apart
    at step 50, 0.0025 at step 200, with the kid's own commit too), so there
    they must agree to 0.005. train() itself is checked bit for bit against
    the textbook loop above, and the learning rate of the kid's steps after
    its warm-up (the steps this run stops before) against the textbook's
    cosine below."""
    from tinyllm.data import load_corpus
    from tinyllm.model import GPTConfig
    from tinyllm.train import TrainConfig

    kid = ROOT / "artifacts" / "kid"
    kid_ckpt = load_checkpoint(kid / "model.pt")
    run_dir = tmp_path / "again"

    def stop_at_100(event):
        if event["kind"] == "eval" and event["step"] == 100:
            (run_dir / "STOP").touch()

    corpus = load_corpus(str(SHAKESPEARE))
    model_config = GPTConfig(**{k: v for k, v in kid_ckpt["config"].items() if k != "vocab_size"})
    summary = train(model_config, TrainConfig(**kid_ckpt["train"]), corpus, run_dir, callback=stop_at_100)
    assert summary["step"] == 100
    losses = lambda rows: [(r["step"], r["train_loss"], r["val_loss"]) for r in rows if r["step"] <= 100]  # noqa: E731
    ours, kids = losses(read_jsonl(run_dir / "log.jsonl")), losses(read_jsonl(kid / "log.jsonl"))
    assert [row[0] for row in ours] == [row[0] for row in kids] == [0, 50, 100]
    for mine, theirs in zip(ours, kids):
        assert mine == pytest.approx(theirs, abs=0.005)


def test_the_kids_learning_rate_is_the_textbooks_at_every_step():
    """Every step of the committed kid's schedule: a linear warm-up to lr, then
    a cosine from lr down to min_lr at its last step, written out here a
    second time (the kid's recipe above is repeated only through its warm-up)."""
    import math

    from tinyllm.train import TrainConfig

    cfg = TrainConfig(**load_checkpoint(ROOT / "artifacts" / "kid" / "model.pt")["train"])
    assert 0 < cfg.warmup_steps < cfg.steps and cfg.min_lr < cfg.lr
    for step in range(cfg.steps):
        if step < cfg.warmup_steps:
            textbook = cfg.lr * (step + 1) / cfg.warmup_steps
        else:
            done = (step - cfg.warmup_steps) / (cfg.steps - cfg.warmup_steps)
            textbook = cfg.min_lr + (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * done)) / 2
        assert lr_at(step, cfg) == pytest.approx(textbook, rel=1e-12), step


# Training runs in children that die (os._exit: no clean-up, as a SIGKILL)
# at one file write each, just before or just after the rename that makes the
# write visible. One Python process imports torch once and forks a child per
# kill point (it computes nothing itself, so forking is safe); the first child,
# never killed, records the writes of a whole run.
KILLED_RUNS = """
import json, os, sys
sys.path[:0] = [{tests!r}]
import tinyllm.io
from helpers import tiny_configs
from tinyllm.data import load_corpus
from tinyllm.train import train

def run(out, kill):
    seen, replace = {{}}, os.replace

    def watched_replace(tmp, target):
        name = os.path.relpath(target, out)
        nth = seen.get(name, 0)
        seen[name] = nth + 1
        if name == "progress.json" and kill and kill["nth"] == "done":
            nth = "done" if json.load(open(tmp))["status"] == "done" else None
        hit = kill and (kill["name"], kill["nth"]) == (name, nth)
        if hit and kill["when"] == "before":
            os._exit(137)
        replace(tmp, target)
        if hit:
            os._exit(137)
        if not kill:
            with open(os.path.join(out, "..", "writes.txt"), "a") as f:
                f.write(name + "\\n")

    tinyllm.io.os.replace = watched_replace
    train(*tiny_configs(**{settings!r}), load_corpus({corpus!r}), out)

import torch
torch.optim.AdamW([torch.zeros(1, requires_grad=True)])  # its first use imports for seconds: once, not per child
results = {{}}
for label, kill in json.loads(sys.argv[1]):
    pid = os.fork()
    if pid == 0:
        run(os.path.join({root!r}, label), kill)
        os._exit(0)
    results[label] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps(results))
"""


KILLED = dict(steps=20, eval_interval=10, dropout=0.1, eval_batches=1, sample_chars=8, batch_size=4)


def killed_runs(root, corpus_path, kills) -> dict:
    """{label: exit code} of a run per (label, kill) in kills, each in root/label."""
    code = KILLED_RUNS.format(tests=str(ROOT / "tests"), corpus=str(corpus_path), root=str(root), settings=KILLED)
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(kills)], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_killed_at_each_kind_of_write_it_resumes_or_restarts_to_the_same_losses(tmp_path, tiny_data_file):
    """Every file the run writes, killed before and after its rename: what is
    left either resumes (it has a resumable checkpoint) or starts again, as
    the messages say, and ends with the losses of a run never killed."""
    from tinyllm.data import load_corpus

    root = tmp_path / "runs"
    assert killed_runs(root, tiny_data_file, [["reference", None]]) == {"reference": 0}
    writes = (root / "writes.txt").read_text().split()
    assert {"corpus.json", "model.pt", "latest.pt", "log.jsonl", "summary.json", "progress.json"} <= set(writes)
    # Each file at its first write and at its last. The first comes before the
    # run has a resumable checkpoint (it must start again), the last after its
    # last one (it resumes at its final step, or is complete); a write between
    # them (model.pt, log.jsonl, latest.pt at the middle evaluation) leaves what
    # the last one's twin leaves a step earlier: a resumable checkpoint with the
    # files written after it ahead of it. progress.json (rewritten about once a
    # second, so its count varies): its first write and the one saying done.
    points = [
        (name, nth)
        for i, name in enumerate(writes)
        if name != "progress.json" and (nth := writes[:i].count(name)) in (0, writes.count(name) - 1)
    ]
    points += [("progress.json", 0), ("progress.json", "done")]
    kills = [
        [f"{i}-{when}", dict(name=name, nth=nth, when=when)]
        for i, (name, nth) in enumerate(points)
        for when in ("before", "after")
    ]
    exits = killed_runs(root, tiny_data_file, kills)
    assert exits == {label: 137 for label, _ in kills}  # every kill point was reached

    expected = [(r["step"], r["train_loss"], r["val_loss"]) for r in read_jsonl(root / "reference" / "log.jsonl")]
    corpus = load_corpus(str(tiny_data_file))
    for label, kill in kills:
        out = root / label
        if (out / "summary.json").exists():
            pass  # killed after its very last write: the run is complete
        elif (out / "latest.pt").exists():
            assert train(None, None, corpus, out, resume=True)["status"] == "done", kill
        else:
            if (out / "model.pt").exists():  # a checkpoint, but not a resumable one: the message says so
                with pytest.raises(TinyLLMError, match="without --resume to start it again"):
                    train(None, None, corpus, out, resume=True)
            assert train(*tiny_configs(**KILLED), corpus, out)["status"] == "done", kill
        rows = read_jsonl(out / "log.jsonl")
        assert [(r["step"], r["train_loss"], r["val_loss"]) for r in rows] == expected, kill
        assert not list(out.rglob(".*.tmp")), kill  # half-written files are cleared
