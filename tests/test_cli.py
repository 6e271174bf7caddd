"""The command line, end to end, as a user types it."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def tinyllm(*args):
    """The real `python -m tinyllm` in a process of its own (seconds for Python
    and torch to start: most tests call the CLI's main() in this process)."""
    return subprocess.run(
        [sys.executable, "-m", "tinyllm", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_sample_show_and_eval(tiny_run, tmp_path, tiny_text):
    ckpt = tiny_run / "model.pt"
    result = tinyllm("sample", "--checkpoint", ckpt, "--prompt", "ROMEO:", "--length", 50, "--seed", 1)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ROMEO:") and len(result.stdout.rstrip("\n")) >= 50

    result = tinyllm("show", "--checkpoint", ckpt)
    assert result.returncode == 0, result.stderr
    assert "blocks.1.attn" in result.stdout and "total" in result.stdout and "120 steps" in result.stdout

    corpus = tmp_path / "rhymes.txt"
    corpus.write_text(tiny_text)
    result = tinyllm("eval", "--checkpoint", ckpt, "--data", corpus)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("val_loss ") and 0 < float(last.split()[1]) < 2.0


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--n-embd", "30", "--n-head", "4", "--data", "{corpus}"], "--n-embd"),
        (["train", "--steps", "-5", "--data", "{corpus}"], "--steps"),
        (["train", "--block-size", "5000", "--data", "{corpus}"], "--block-size"),
        (["sample", "--checkpoint", "{missing}"], "No checkpoint"),
        (["sample", "--checkpoint", "{ckpt}", "--prompt", "ROMEO@#"], "'@'"),
        (["sample", "--checkpoint", "{ckpt}", "--temperature", "0"], "--temperature"),
        (["train", "--data", "{missing}"], "No corpus file"),
        (["train", "--data", "{corpus}", "--out", "{corpus}"], "is a file, not a run folder"),
        (["train", "--data", "{corpus}", "--out", "/proc/peek-run"], "No such file or directory: /proc/peek-run"),
        pytest.param(
            ["train", "--data", "/proc/self/mem"],
            "cannot be read",
            marks=pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="Linux only"),
        ),
        pytest.param(
            ["train", "--device", "mps", "--data", "{corpus}"],
            "--device mps",
            marks=pytest.mark.skipif(sys.platform == "darwin", reason="a Mac may have MPS"),
        ),
        (["sample", "--checkpoint", "{corpus}"], "cannot be read as a checkpoint"),
    ],
)
def test_bad_input_gets_a_clear_error_without_traceback(args, message, tiny_run, tmp_path, tiny_text, capsys):
    """In this process, through the CLI's own main() (a subprocess per case
    cost seconds each for Python and torch to start; test_every_flag_has_help
    and test_sample_show_and_eval run the real `python -m tinyllm`): an
    exception escaping main() would fail the test with its traceback."""
    from tinyllm.cli import main

    corpus = tmp_path / "rhymes.txt"
    corpus.write_text(tiny_text)
    values = dict(corpus=corpus, missing=tmp_path / "missing", ckpt=tiny_run / "model.pt")
    extra = ["--out", tmp_path / "out"] if args[0] == "train" and "--out" not in args else []
    try:
        code = main([str(a) for a in [*[a.format(**values) for a in args], *extra]])
    except SystemExit as refused:  # argparse's own refusals exit
        code = refused.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_a_full_disk_is_an_error_message_not_a_traceback(monkeypatch, capsys, tiny_data_file, tmp_path):
    import errno

    from tinyllm import cli

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "model.pt"))

    monkeypatch.setattr(cli, "train", full_disk)
    assert cli.main(["train", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == f"error: No space left on device: {tmp_path / 'run' / 'model.pt'}"


def test_every_flag_has_help():
    from tinyllm.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(commands) == {"train", "sample", "show", "eval", "export", "exercise", "check-head"}
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help text"
    assert tinyllm("train", "--help").returncode == 0


def test_train_flags_are_made_from_the_settings_own_descriptions():
    from dataclasses import fields

    from tinyllm.cli import build_parser
    from tinyllm.model import GPTConfig
    from tinyllm.settings import SETTINGS, described, flag
    from tinyllm.train import TrainConfig

    train_parser = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    flags = {a.option_strings[0]: a for a in train_parser._actions if a.option_strings}
    settings = described(GPTConfig) + described(TrainConfig)
    assert len(settings) == 17
    # every field has its row in the table, and every row its field (vocab_size comes from the corpus)
    names = {f.name for f in fields(GPTConfig)} - {"vocab_size"} | {f.name for f in fields(TrainConfig)}
    assert set(SETTINGS) == names == {s.name for s in settings}
    for setting_field in settings:
        action = flags[flag(setting_field.name)]
        assert action.dest == setting_field.name
        assert action.default == setting_field.default and action.type is type(setting_field.default)
        assert action.help.startswith(setting_field.help)


def test_the_progress_bar_writes_carriage_returns_only_to_a_terminal():
    import io

    from tinyllm.cli import ProgressBar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    step = dict(kind="step", step=5, steps=10, loss=1.5, tokens_per_s=1000.0, eta_s=3.0)
    evaluation = dict(kind="eval", step=5, train_loss=1.4, val_loss=1.5, best=True, lr=1e-3, elapsed_s=6.0)
    log, terminal = io.StringIO(), Terminal()
    for stream in (log, terminal):
        bar = ProgressBar(stream)
        for event in (step, step, evaluation):
            bar(event)
    assert "\r" not in log.getvalue() and log.getvalue().count("\n") == 2  # one step line, one eval line
    assert log.getvalue().startswith("step      5/10 [")
    assert terminal.getvalue().count("\r") == 3


def test_resume_says_which_settings_it_ignores(tiny_corpus, tiny_data_file, tmp_path, capsys):
    import os

    from helpers import tiny_configs

    from tinyllm.cli import main
    from tinyllm.train import train

    out = tmp_path / "run"
    out.mkdir()
    (out / "STOP").write_text(str(os.getpid()))
    train(*tiny_configs(steps=5000), tiny_corpus, out)
    (out / "STOP").write_text(str(os.getpid()))  # the resumed run stops at once too
    assert main(["train", "--out", str(out), "--resume", "--quiet", "--lr", "0.5", "--n-layer", "3"]) == 0
    err = capsys.readouterr().err
    assert "ignoring --n-layer, --lr" in err or "ignoring --lr, --n-layer" in err


def offline(monkeypatch, tmp_path):
    """No TINYLLM_DATA, an empty cache, and a download that fails at once (a
    proxy on a closed local port): the network is never reached."""
    import os
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    for name in [k for k in os.environ if k == "TINYLLM_DATA" or k.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TINYLLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("https_proxy", closed)
    monkeypatch.setenv("HTTPS_PROXY", closed)


def test_eval_of_a_run_trained_on_an_upload_uses_the_text_it_kept(tiny_run, tmp_path, tiny_text, monkeypatch, capsys):
    import shutil

    from tinyllm.cli import main

    offline(monkeypatch, tmp_path)
    run = tmp_path / "uploaded"
    run.mkdir()
    shutil.copy(tiny_run / "model.pt", run / "model.pt")
    assert main(["eval", "--checkpoint", str(run / "model.pt")]) == 2
    err = capsys.readouterr().err
    assert "--data PATH/TO/rhymes.txt" in err and "download" not in err
    (run / "upload").mkdir()
    (run / "upload" / "rhymes.txt").write_text(tiny_text)
    assert main(["eval", "--checkpoint", str(run)]) == 0  # the folder: its model.pt
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("val_loss ")


def test_the_stop_hint_repeats_the_data_it_needs(tmp_path, tiny_text, capsys):
    import os

    from tinyllm.cli import main

    corpus, out = tmp_path / "rhymes.txt", tmp_path / "run"
    corpus.write_text(tiny_text)
    out.mkdir()
    (out / "STOP").write_text(str(os.getpid()))  # stops at its first step
    small = ["--n-layer", "1", "--n-head", "1", "--n-embd", "8", "--block-size", "8", "--eval-batches", "1"]
    assert main(["train", "--out", str(out), "--data", str(corpus), "--quiet", *small]) == 0
    assert f"train --out {out} --data {corpus} --resume" in capsys.readouterr().out


def test_sample_refuses_unknown_characters_before_writing_anything(tiny_run, capsys):
    from tinyllm.cli import main

    assert main(["sample", "--checkpoint", str(tiny_run / "model.pt"), "--prompt", "héllo €"]) == 2
    result = capsys.readouterr()
    assert result.out == "" and "'é'" in result.err and "'€'" in result.err


def test_show_takes_a_run_folder(tiny_run, tmp_path, capsys):
    from tinyllm.cli import main

    assert main(["show", "--checkpoint", str(tiny_run)]) == 0
    assert f"checkpoint  {tiny_run / 'model.pt'}" in capsys.readouterr().out
    assert main(["show", "--checkpoint", str(tmp_path)]) == 2
    assert "no model.pt in it" in capsys.readouterr().err


def test_no_escape_code_from_a_run_folder_reaches_the_terminal(tmp_path, capsys):
    """A run folder is anyone's: its corpus name, its device and the
    characters its kid writes may hold terminal escape codes (a new window
    title, the screen cleared). show, sample, eval and the errors name each
    control character instead; a sample keeps its newlines."""
    import unicodedata

    import torch
    from forgeries import real_checkpoint

    from tinyllm.cli import main

    run = tmp_path / "run"
    run.mkdir()
    ckpt = real_checkpoint(run / "model.pt")
    ckpt["vocab"] = ["\x1b", "\x07", "\x9b", "\n", "a", "\u202e"]  # ESC, BEL, CSI, newline, a, right-to-left
    ckpt["corpus"]["name"] = "\x1b]0;owned\x07.txt"
    ckpt["device"] = "\x1b[2Jcpu"
    torch.save(ckpt, run / "model.pt")
    (tmp_path / "a.txt").write_text("a\n" * 100)

    def controls(text):
        return [ch for ch in text if ch != "\n" and unicodedata.category(ch)[0] == "C"]

    assert main(["show", "--checkpoint", str(run)]) == 0
    out = capsys.readouterr().out
    assert controls(out) == [] and "⟨U+001B⟩]0;owned⟨U+0007⟩.txt" in out and "⟨U+001B⟩[2Jcpu" in out
    assert out.split("sample (seed 0):\n")[1].count("\n") > 2  # the sample's own newlines, kept
    assert main(["sample", "--checkpoint", str(run), "--prompt", "a", "--length", "200"]) == 0
    out = capsys.readouterr().out
    assert controls(out) == [] and "⟨U+001B⟩" in out and "⟨U+202E⟩" in out
    assert main(["eval", "--checkpoint", str(run), "--data", str(tmp_path / "a.txt")]) == 0
    err = capsys.readouterr().err
    assert controls(err) == [] and "⟨U+001B⟩]0;owned" in err
    assert main(["sample", "--checkpoint", str(run), "--prompt", "b"]) == 2  # an error quotes the vocabulary
    err = capsys.readouterr().err
    assert controls(err) == [] and "'b'" in err


def test_a_misspelt_flag_shows_its_command_s_usage(capsys):
    from tinyllm.cli import main

    with pytest.raises(SystemExit) as refused:
        main(["train", "--stpes", "5"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "usage: python -m tinyllm train" in err and "--stpes" in err
