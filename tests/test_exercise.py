"""The Head exercise: the template, the checker's diagnoses, the sandbox, training with a learner's Head."""

import json
import time
from pathlib import Path

import pytest
import torch
from head_solutions import MISTAKES, SOLUTION, with_mistake

from tinyllm.cli import main
from tinyllm.exercise import TEMPLATE, HeadCodeError, load_head_class
from tinyllm.headcheck import STEPS, check_head
from tinyllm.sandbox import SandboxLimits, check_in_sandbox, visitor_code_allowed

KID = Path(__file__).resolve().parent.parent / "artifacts" / "kid" / "model.pt"


def head_file(tmp_path, code, name="my_head.py"):
    path = tmp_path / name
    path.write_text(code)
    return path


def check(tmp_path, code, checkpoint=KID, **where):
    return check_head(load_head_class(head_file(tmp_path, code)), checkpoint, **where)


def test_the_solution_passes_every_step_on_the_kid_and_on_a_small_run(tmp_path, tiny_run):
    for checkpoint, where in [(KID, dict(layer=3, head=2)), (tiny_run / "model.pt", {})]:
        report = check(tmp_path, SOLUTION, checkpoint, **where)
        assert report["ok"], report
        assert [s["name"] for s in report["steps"]] == STEPS
        assert abs(report["loss"]["yours"] - report["loss"]["kid"]) < 1e-5


# mistake: the first step that differs
FIRST_STEP = {
    "no_scaling": "scores",
    "scale_by_head_size": "scores",
    "query_key_swapped": "scores",
    "no_mask": "mask",
    "zero_mask": "mask",
    "softmax_dim": "softmax",
    "returns_weights": "output shape",
    "keys_not_transposed": "runs",
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_each_classic_mistake_is_named_at_its_step(tmp_path, mistake):
    report = check(tmp_path, with_mistake(mistake))
    assert not report["ok"]
    assert report["first_failure"] == FIRST_STEP[mistake], report["steps"]
    assert report["mistake"] == mistake, report["diagnosis"]
    assert report["diagnosis"] and report["title"]


def test_the_diagnoses_carry_this_texts_numbers(tmp_path):
    report = check(tmp_path, with_mistake("no_scaling"))
    assert "√32 = 5.66 times too large" in report["diagnosis"]
    report = check(tmp_path, with_mistake("no_mask"))
    future = report["compare"]["yours"][report["compare"]["row"] + 1 :]
    assert sum(future) > 0.01 and report["compare"]["kid"][report["compare"]["row"] + 1 :] == [0] * len(future)
    report = check(tmp_path, with_mistake("keys_not_transposed"))
    assert "multiplied (2, 64, 32) by (2, 64, 32)" in report["diagnosis"]
    assert "scores = q @ k" in report["problem"]["where"]


def test_the_unfinished_template_says_so(tmp_path):
    report = check(tmp_path, TEMPLATE)
    assert report["first_failure"] == "runs" and "not written yet" in report["diagnosis"]


def test_syntax_errors_exceptions_and_wrong_shapes_are_reported_in_the_learners_terms(tmp_path):
    with pytest.raises(HeadCodeError) as e:
        load_head_class(head_file(tmp_path, SOLUTION.replace("return weights @ v", "return weights @ v)")))
    line = SOLUTION.splitlines().index("        return weights @ v  # (B, T, hs)") + 1
    assert e.value.problem.kind == "syntax" and f"line {line}" in e.value.problem.message

    boom = SOLUTION.replace(
        "        v = self.value(x)  # (B, T, hs)\n",
        "        v = self.value(x)  # (B, T, hs)\n        raise ValueError('boom')\n",
    )
    report = check(tmp_path, boom)
    assert report["problem"]["kind"] == "exception" and "ValueError: boom" in report["diagnosis"]
    assert "raise ValueError('boom')" in report["problem"]["where"]  # their line, not the checker's
    assert "headcheck.py" not in report["problem"]["where"]

    report = check(tmp_path, SOLUTION.replace("return weights @ v", "return (weights @ v)[..., :3]"))
    assert report["first_failure"] == "output shape" and "(2, 64, 3)" in report["diagnosis"]

    with pytest.raises(HeadCodeError, match="no class Head"):
        load_head_class(head_file(tmp_path, SOLUTION.replace("class Head(", "class MyHead(")))
    report = check(
        tmp_path,
        SOLUTION.replace(
            "self.value = nn.Linear(config.n_embd, head_size, bias=False)",
            "self.values = nn.Linear(config.n_embd, head_size, bias=False)",
        ),
    )
    assert "weights do not fit" in report["diagnosis"] and "values.weight" in report["diagnosis"]


def test_cli_exercise_and_check_head(tmp_path, capsys):
    path = tmp_path / "mine.py"
    assert main(["exercise", str(path)]) == 0
    assert path.read_text() == TEMPLATE
    assert main(["exercise", str(path)]) == 2  # never overwrites
    assert "exists already" in capsys.readouterr().err
    assert main(["check-head", str(path)]) == 1
    path.write_text(with_mistake("zero_mask"))
    assert main(["check-head", str(path)]) == 1
    out = capsys.readouterr().out
    assert "First difference: mask" in out and "filled with 0 instead of -inf" in out
    path.write_text(SOLUTION)
    assert main(["check-head", str(path), "--layer", "1", "--head", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]
    assert main(["check-head", str(path), "--layer", "4"]) == 2


# --------------------------------------------------------------------------
# The sandbox


def test_who_may_run_code():
    assert visitor_code_allowed("auto", from_loopback=True, via_proxy=False)[0]
    assert not visitor_code_allowed("auto", from_loopback=False, via_proxy=False)[0]
    assert not visitor_code_allowed("auto", from_loopback=True, via_proxy=True)[0]
    assert visitor_code_allowed("on", from_loopback=False, via_proxy=True)[0]
    assert not visitor_code_allowed("off", from_loopback=True, via_proxy=False)[0]


def planted(line: str) -> str:
    """The solution with `line` run first in forward."""
    first = "        k = self.key(x)  # (B, T, hs)\n"
    return SOLUTION.replace(first, f"        {line}\n{first}")


@pytest.mark.slow
def test_the_sandbox_checks_like_the_cli():
    report = check_in_sandbox(with_mistake("softmax_dim"), KID)
    assert report["mistake"] == "softmax_dim" and report["first_failure"] == "softmax"
    assert check_in_sandbox(SOLUTION, KID, layer=2, head=1)["ok"]


@pytest.mark.slow
def test_the_sandbox_stops_an_endless_loop_within_its_time():
    limits = SandboxLimits(seconds=6)
    started = time.perf_counter()
    report = check_in_sandbox(planted("while True: pass"), KID, limits=limits)
    assert time.perf_counter() - started < limits.seconds + 3
    assert not report["ok"] and "stopped after 6 s" in report["diagnosis"]


def test_the_sandbox_refuses_a_10_gb_allocation():
    report = check_in_sandbox(planted("torch.ones(10 * 2**30, dtype=torch.uint8)"), KID)
    assert not report["ok"] and "more memory than it may use" in report["diagnosis"]


def test_the_sandbox_hides_the_servers_environment(monkeypatch):
    monkeypatch.setenv("PEEK_TEST_SECRET", "hunter2")
    report = check_in_sandbox(
        planted("import os; print('seen:', os.environ.get('PEEK_TEST_SECRET'), len(os.environ))"), KID
    )
    assert report["ok"] and "seen: None" in report["printed"] and "hunter2" not in report["printed"]


@pytest.mark.slow
def test_the_sandbox_survives_exit_and_floods_of_output():
    report = check_in_sandbox(planted("import sys; sys.exit(0)"), KID)
    assert "called exit()" in report["diagnosis"]
    report = check_in_sandbox(planted("import os; os._exit(0)"), KID)
    assert "ended before it could report" in report["diagnosis"]
    report = check_in_sandbox(planted("while True: print('x' * 1000)"), KID, limits=SandboxLimits(output_kb=16))
    assert "printed more" in report["diagnosis"] and len(report["printed"]) <= 16 * 1024


# --------------------------------------------------------------------------
# Training with a learner's Head


@pytest.mark.slow
def test_train_with_the_solution_repeats_the_readable_run_number_for_number(tmp_path, tiny_corpus, monkeypatch):
    from helpers import tiny_configs

    from tinyllm.export import export_run, read_chapter
    from tinyllm.model import GPT
    from tinyllm.train import train

    model_config, train_config = tiny_configs(steps=50, eval_interval=10, dropout=0.1)
    head_class = load_head_class(head_file(tmp_path, SOLUTION))
    train(model_config, train_config, tiny_corpus, tmp_path / "your_head", head_class=head_class)
    # the normal run, on the readable per-head path: the kid's own Head, never swapped
    set_fast = GPT.set_fast
    monkeypatch.setattr(GPT, "set_fast", lambda model, fast: set_fast(model, False))
    train(model_config, train_config, tiny_corpus, tmp_path / "kid_head")
    theirs = torch.load(tmp_path / "kid_head" / "latest.pt", weights_only=True)
    yours = torch.load(tmp_path / "your_head" / "latest.pt", weights_only=True)
    assert yours["step"] == 50
    for name, tensor in theirs["model"].items():
        assert torch.equal(tensor, yours["model"][name]), name
    export_run(tmp_path / "your_head")
    assert read_chapter(tmp_path / "your_head", "model_card")["head"] == "my_head.py"


def test_train_refuses_a_head_that_is_not_attention_yet(tmp_path, tiny_data_file, capsys):
    path = head_file(tmp_path, with_mistake("no_scaling"))
    assert main(["train", "--out", str(tmp_path / "run"), "--head", str(path), "--steps", "5", "--quiet"]) == 2
    assert "check-head" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
