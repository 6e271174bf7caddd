"""The Head exercise: the template, the checker's diagnoses, training with a Head (the sandbox: test_sandbox.py)."""

import json
import re
import time
import warnings
from pathlib import Path

import pytest
import torch
from head_solutions import SOLUTION, planted, with_mistake

from tinyllm.cli import main
from tinyllm.exercise import TEMPLATE, HeadCodeError, load_head_class
from tinyllm.headcheck import MISTAKE_TITLES, STEPS, check_head, check_head_file, format_report, problem_report

KID = Path(__file__).resolve().parent.parent / "artifacts" / "kid" / "model.pt"


def head_file(tmp_path, code, name="my_head.py"):
    path = tmp_path / name
    path.write_text(code)
    return path


def check(tmp_path, code, checkpoint=KID, **where):
    return check_head(load_head_class(head_file(tmp_path, code)), checkpoint, **where)


def code_lines(source: str) -> list:
    """The lines of `forward` that run (no comment lines, no blank ones)."""
    body = source[source.index("    def forward(self, x):") :]
    return [line for line in body.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_kids_head_is_the_exercises_solution_line_for_line():
    """model.py's Head.forward, read on the Attention page, is what a learner
    who solves the exercise writes: the same lines, comments aside."""
    import inspect

    from tinyllm.model import Head

    assert code_lines(inspect.getsource(Head)) == code_lines(SOLUTION)
    assert len(code_lines(SOLUTION)) == 9  # the signature, B, T, C, then the seven lines of the five steps


def test_the_solution_passes_every_step_on_the_kid_and_on_a_small_run(tmp_path, tiny_run):
    for checkpoint, where in [(KID, dict(layer=3, head=2)), (tiny_run / "model.pt", {})]:
        report = check(tmp_path, SOLUTION, checkpoint, **where)
        assert report["ok"], report
        assert [s["name"] for s in report["steps"]] == STEPS
        assert abs(report["loss"]["yours"] - report["loss"]["kid"]) < 1e-5


# --------------------------------------------------------------------------
# The learners' Heads: tests/learner_heads holds Heads a learner might write,
# each with its verdict in its first line: "Expect: pass." or "Expect: STEP
# (MISTAKE)." (the first step that differs, and the mistake named there).

LEARNER_HEADS = Path(__file__).resolve().parent / "learner_heads"
EXPECT = re.compile(r"Expect: (?P<step>[^.(]+?)(?: \((?P<mistake>\w+)\))?\.")


def expectation(path) -> tuple:
    found = EXPECT.search(path.read_text().split("\n", 1)[0])
    return found["step"], found["mistake"]


def check_file(path, checkpoint=KID) -> dict:
    try:
        return check_head(load_head_class(path), checkpoint)
    except HeadCodeError as e:
        return problem_report(e.problem)


@pytest.mark.parametrize("path", sorted(LEARNER_HEADS.glob("*.py")), ids=lambda p: p.stem)
def test_each_learners_head_passes_or_fails_at_its_step_with_its_mistake_named(path):
    step, mistake = expectation(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning of PyTorch's leaks out, naming the checker's file
        report = check_file(path)
    json.dumps(report, allow_nan=False)  # the sandbox sends it as JSON: no NaN in it
    if step == "pass":
        assert report["ok"], (report["diagnosis"], report["steps"])
        assert [s["name"] for s in report["steps"]] == STEPS
        return
    assert not report["ok"]
    assert report["first_failure"] == step, report["steps"]
    assert report["mistake"] == mistake, report["diagnosis"]
    assert report["diagnosis"], report["steps"]
    text = format_report(report)
    assert "nan" not in text.replace("NaN", "")  # NaN is said as NaN ("up to nan" says nothing)
    if mistake:
        assert report["title"] and report["title"].lower() not in report["diagnosis"].lower()  # said once


def test_the_collection_holds_every_kind_of_head():
    verdicts = [expectation(p) for p in LEARNER_HEADS.glob("*.py")]
    assert sum(step == "pass" for step, _ in verdicts) >= 20
    named = {mistake for _, mistake in verdicts if mistake}
    assert named == set(MISTAKE_TITLES)  # every mistake the checker can name is made by one


def test_the_reports_say_what_a_learner_needs(tmp_path):
    report = check_file(LEARNER_HEADS / "tril_equals_one.py")
    mask = next(s for s in report["steps"] if s["name"] == "mask")["detail"]
    assert "some rows are all -inf: every position is hidden" in mask and "the future is visible" in mask
    assert "the past is hidden" in mask
    report = check_file(LEARNER_HEADS / "mask_not_sliced.py")
    assert "self.tril[:T, :T]" in report["diagnosis"] and "33 characters" in report["diagnosis"]
    report = check_file(LEARNER_HEADS / "sdpa.py")
    assert report["ok"] and "did the five steps for you" in report["note"]
    report = check_file(LEARNER_HEADS / "karpathy_gpt_py_own_sizes.py")
    assert "self.key is nn.Linear(384, 32), the kid's nn.Linear(128, 32)" in report["diagnosis"]
    for name in ("head_size_signature", "karpathy_gpt_py_no_globals"):
        report = check_file(LEARNER_HEADS / f"{name}.py")
        assert "__init__(self, head_size)" in report["diagnosis"], name
        assert "The template's is __init__(self, config)" in report["diagnosis"]
    report = check_file(LEARNER_HEADS / "values_transposed.py")
    assert "multiplied (2, 64, 64) by (2, 32, 64)" in report["diagnosis"] and "k.transpose" not in report["diagnosis"]


def test_a_nul_byte_is_found_on_its_line(tmp_path):
    code = SOLUTION.replace("        v = self.value(x)", "        v = self.value(x)\0")
    line = code[: code.index("\0")].count("\n") + 1
    with pytest.raises(HeadCodeError) as e:
        load_head_class(head_file(tmp_path, code))
    assert f"Line {line} holds an invisible NUL character" in e.value.problem.message
    assert "None" not in e.value.problem.message and "v = self.value(x)" in e.value.problem.where


def test_the_command_lines_check_has_a_time_limit_and_a_ctrl_c(tmp_path):
    started = time.perf_counter()
    report = check_head_file(head_file(tmp_path, planted("while True: pass")), KID, seconds=2)
    assert time.perf_counter() - started < 15  # the kid's loading is not counted in the 2 s
    assert "stopped after 2 s" in report["diagnosis"] and "while True: pass" in report["problem"]["where"]
    report = check_head_file(head_file(tmp_path, planted("raise KeyboardInterrupt")), KID)
    assert "You stopped the check (Ctrl-C) while it ran your code" in report["diagnosis"]


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


def test_train_refuses_a_head_that_is_not_attention_yet_naming_the_learners_file(tmp_path, tiny_data_file, capsys):
    for name, step in [("no_scaling", "scores"), ("mask_not_sliced", "runs"), ("softmax_no_dim", "softmax")]:
        path = head_file(tmp_path, (LEARNER_HEADS / f"{name}.py").read_text(), f"{name}.py")
        args = ["train", "--out", str(tmp_path / "run"), "--head", str(path), "--steps", "5", "--quiet"]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert main(args) == 2
        err = capsys.readouterr().err
        assert f"the first step that differs is {step}: {MISTAKE_TITLES[name]}" in err
        assert f"check-head {path}" in err and "PATH" not in err
        assert not (tmp_path / "run").exists()


def test_a_head_with_dropout_and_a_saved_mask_trains_and_its_run_reads_with_the_kids_head(tmp_path, tiny_data_file):
    from tinyllm.checkpoint import load_model

    path = LEARNER_HEADS / "karpathy_config.py"  # nn.Dropout on the weights, a persistent tril
    args = ["train", "--out", str(tmp_path / "run"), "--head", str(path), "--steps", "5", "--quiet"]
    assert main(args + ["--block-size", "16", "--n-embd", "32", "--n-layer", "1", "--dropout", "0.1"]) == 0
    model, _, checkpoint = load_model(tmp_path / "run" / "model.pt")  # strict: no learner's buffer in it
    assert checkpoint["step"] == 5 and not any("tril" in name for name in checkpoint["model"])


def test_the_app_shows_the_visitors_text_in_a_report_as_text():
    from ui.head_report import plain

    said = plain("ValueError: **bold** $x$ :red[red] [link](http://example.com) <b>tag</b>\n# title")
    assert said == (
        r"ValueError: \*\*bold\*\* \$x\$ \:red\[red\] \[link\](http:" + "\u200b"
        r"//example.com) \<b\>tag\</b\> \# title"
    )
    assert plain("No mask: the future is visible") == "No mask: the future is visible"  # the checker's own words
