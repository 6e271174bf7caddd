"""Attacks from outside, one test each: forged checkpoints through the CLI and
the app, resuming a forged run, visitors' text without end, a one-character
upload, and markup planted in a corpus."""

import re
import shutil

import pytest
import torch
from forgeries import forged, forged_resume, real_checkpoint
from helpers import tiny_configs
from streamlit.testing.v1 import AppTest
from test_app import APP, texts

from tinyllm.cli import main
from tinyllm.errors import TinyLLMError
from tinyllm.model import GPTConfig

# The forgeries that gave tracebacks, crashes or gigabytes before the loader checked them.
ATTACKS = [
    "a context of 12,000",
    "stride-0 views",
    "a NaN weight",
    "a lone surrogate in the vocab",
    "a loss that is a string",
    "elapsed time a string",
    "corpus chars a string",
    "training settings without steps",
]


def forge_into(run_dir, change, vocab_of=None):
    """run_dir/model.pt replaced by a forgery (of a checkpoint with the run's
    vocabulary when vocab_of is a real checkpoint, so the pages could use it)."""
    base = torch.load(vocab_of, weights_only=True) if vocab_of else real_checkpoint(run_dir / "real.pt")
    torch.save(forged(base, change), run_dir / "model.pt")


@pytest.mark.parametrize("change", ATTACKS)
def test_the_cli_refuses_a_forged_checkpoint_in_words(tmp_path, tiny_data_file, change, capsys):
    run = tmp_path / "run"
    run.mkdir()
    forge_into(run, change)
    checkpoint = str(run / "model.pt")
    for argv in (["show", "--checkpoint", checkpoint], ["sample", "--checkpoint", checkpoint, "--length", "5"]):
        assert main(argv) == 2
        assert "not a checkpoint this tinyllm can use" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", checkpoint]) == 2
    assert main(["export", "--run", str(run)]) == 2
    assert capsys.readouterr().err.count("not a checkpoint this tinyllm can use") == 2


@pytest.fixture
def forged_runs(tiny_run, tmp_path, monkeypatch):
    """One run folder per forgery, each a copy of the tiny run (export and
    all) with its model.pt forged; and one with no export, to press "Write them now"."""
    monkeypatch.setenv("PEEK_KID_DIR", str(tiny_run))
    monkeypatch.setenv("PEEK_RUNS_DIR", str(tmp_path / "runs"))
    names = []
    for n, change in enumerate(ATTACKS):
        run = tmp_path / "runs" / f"forged-{n}"
        shutil.copytree(tiny_run, run)
        forge_into(run, change, vocab_of=tiny_run / "model.pt")
        names.append(run.name)
    unwritten = tmp_path / "runs" / "forged-unwritten"
    shutil.copytree(tmp_path / "runs" / names[0], unwritten)
    shutil.rmtree(unwritten / "export")
    return names


@pytest.mark.slow
def test_the_app_survives_forged_checkpoints(forged_runs):
    """Every page that loads the model, the playground's Write, and "Write
    them now" for a run without pages: a message, never a crash."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    for name in forged_runs:
        at.sidebar.selectbox(key="run").set_value(name).run()
        for page in ("playground", "whole_kid", "vocab", "predictions"):
            at.switch_page(f"pages/{page}.py").run()
            assert not at.exception, (name, page, at.exception)
            assert "not a checkpoint this tinyllm can use" in texts(at), (name, page)
    at.sidebar.selectbox(key="run").set_value("forged-unwritten").run()
    at.switch_page("pages/vocab.py").run()
    at.button(key="export_now").click().run()
    assert not at.exception, at.exception
    assert "Writing them failed" in " ".join(e.value for e in at.error)


@pytest.mark.parametrize("change", ["no resume state", "a random-number state too short"])
def test_resuming_a_forged_run_is_refused_in_words(tmp_path, tiny_corpus, change):
    """The app's resume check and the training process itself (KeyError:
    'resume' and 'steps' before)."""
    from tinyllm.jobs import Limits
    from tinyllm.train import train

    run = tmp_path / "run"
    run.mkdir()
    model_config, train_config = tiny_configs()
    good = real_checkpoint(tmp_path / "real.pt", GPTConfig(**{**model_config.to_dict(), "vocab_size": 6}), resume=True)
    torch.save(forged_resume(good, change), run / "latest.pt")
    (run / "model.pt").write_bytes((tmp_path / "real.pt").read_bytes())
    with pytest.raises(TinyLLMError, match="not a checkpoint this tinyllm can use"):
        train(model_config, train_config, tiny_corpus, run, resume=True)
    with pytest.raises(TinyLLMError, match="not a checkpoint this tinyllm can use"):
        Limits().check_resume(run)  # the app refuses before starting the training process
    torch.save(forged(good, "training settings without steps"), run / "latest.pt")
    with pytest.raises(TinyLLMError, match="not a checkpoint this tinyllm can use"):
        Limits().check_resume(run)


# --------------------------------------------------------------------------
# Stored markup: a corpus whose every line is markup, a backtick and
# invisible characters; every page must show them as text.

IMAGE = "![](//x.yz)"
RLO, ZERO_WIDTH = "\u202e", "\u200b"
PLANTED = f"{IMAGE}`{RLO}*a*{ZERO_WIDTH}\n"


def outside_code_spans(markdown: str) -> str:
    """The Markdown with its code spans taken out (CommonMark's rule: a run
    of n backticks opens one, the next run of exactly n closes it); an
    unmatched backtick stays, as the text it then is."""
    out, i = [], 0
    while i < len(markdown):
        if markdown[i] == "`" and (i == 0 or markdown[i - 1] != "\\"):
            n = len(markdown[i:]) - len(markdown[i:].lstrip("`"))
            j = i + n
            while j < len(markdown):
                k = markdown.find("`" * n, j)
                if k < 0:
                    break
                m = len(markdown[k:]) - len(markdown[k:].lstrip("`"))
                if m == n:
                    i = k + n
                    break
                j = k + m
            else:
                out.append(markdown[i : i + n])
                i += n
                continue
            if k < 0:
                out.append(markdown[i : i + n])
                i += n
            continue
        out.append(markdown[i])
        i += 1
    return "".join(out)


def markdown_sources(at) -> list:
    """Every string on the page that Streamlit renders as Markdown."""
    sources = [
        str(e.value)
        for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader", "header")
        for e in getattr(at, kind)
    ]
    sources += [str(option) for radio in at.radio for option in radio.options]
    return sources


def plain_sources(at) -> list:
    """What a page shows as code or HTML (st.code, st.html)."""
    return [str(c.value) for c in at.code] + [e.proto.body for e in at.get("html")]


def assert_shown_as_text(at, where):
    for source in markdown_sources(at):
        rest = re.sub(r"\\.", "", outside_code_spans(source))  # escaped characters are text
        assert "![" not in rest and "](" not in rest and "`" not in rest and "*a*" not in rest, (where, source)
    for source in markdown_sources(at) + plain_sources(at):
        assert RLO not in source and ZERO_WIDTH not in source, (where, source)
        assert "<img" not in source, (where, source)


def test_the_markdown_checker_sees_markup_outside_code():
    assert outside_code_spans(f"a `{IMAGE}` b") == "a  b"
    assert outside_code_spans(f"`` ` `` {IMAGE}") == f" {IMAGE}"
    assert outside_code_spans("never seen `a`, ```, `b`") == "never seen , ```, "  # the old "never seen" list


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    from tinyllm.data import corpus_from_bytes
    from tinyllm.export import export_run
    from tinyllm.train import train

    run_dir = tmp_path_factory.mktemp("runs") / "planted"
    corpus = corpus_from_bytes((PLANTED * 400).encode(), f"{IMAGE}.txt")
    model_config, train_config = tiny_configs(block_size=24, steps=40, eval_interval=20)
    train(model_config, train_config, corpus, run_dir)
    export_run(run_dir)
    return run_dir


@pytest.mark.slow
def test_planted_markup_is_shown_as_text_on_every_page(planted_run, tmp_path, monkeypatch):
    from ui import page_names

    monkeypatch.setenv("PEEK_KID_DIR", str(planted_run))
    monkeypatch.setenv("PEEK_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    for page in page_names():
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        assert_shown_as_text(at, page)
        if page in ("attention", "predictions", "whole_kid"):  # the visitor's own text, with a character it never saw
            prefix = "whole" if page == "whole_kid" else page
            at.radio(key=f"{prefix}_prompt").set_value(3).run()
            at.text_area(key=f"{prefix}_own").set_value(f"q{PLANTED}").run()
            assert_shown_as_text(at, page + " (never seen)")
            at.text_area(key=f"{prefix}_own").set_value(PLANTED * 2).run()
            assert_shown_as_text(at, page + " (own text)")
            at.radio(key=f"{prefix}_prompt").set_value(0).run()
    at.switch_page("pages/playground.py").run()
    at.text_area(key="playground_prompt").set_value(f"q{PLANTED}").run()
    assert "never seen" in " ".join(w.value for w in at.warning)
    at.slider(key="playground_length").set_value(30)
    at.button(key="playground_write").click().run()
    assert not at.exception
    assert_shown_as_text(at, "playground")
    at.switch_page("pages/vocab.py").run()
    at.text_input(key="vocab_text").set_value(f"q`{IMAGE}").run()
    assert_shown_as_text(at, "vocab (never seen)")
    # the vocabulary table names the invisible characters
    assert all(ch not in str(df.value.to_dict()) for df in at.dataframe for ch in (RLO, ZERO_WIDTH))
    assert "⟨U+202E⟩" in str(at.dataframe[0].value.to_dict()) and "⟨U+200B⟩" in str(at.dataframe[0].value.to_dict())


# --------------------------------------------------------------------------
# Visitors' text without end: every text box keeps at most its limit.

BOXES = [("playground", "playground_prompt", "prompt"), ("vocab", "vocab_text", "encode")] + [
    (page, f"{prefix}_own", "own text")
    for page, prefix in [("attention", "attention"), ("predictions", "predictions"), ("whole_kid", "whole")]
]


@pytest.mark.slow
@pytest.mark.parametrize("page, key, use", BOXES)
def test_a_text_box_keeps_no_more_than_its_limit(tiny_run, tmp_path, monkeypatch, page, key, use):
    """A forged message (AppTest, like a script on the websocket, ignores the
    browser's max_chars) with 2 MB of text: cut to the box's limit, and
    nothing longer kept in Session State."""
    from tinyllm.explain import TEXT_BOX_LIMITS

    monkeypatch.setenv("PEEK_KID_DIR", str(tiny_run))
    monkeypatch.setenv("PEEK_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    if use == "own text":
        at.radio(key=key.replace("_own", "_prompt")).set_value(3).run()
    box = at.text_area(key=key) if use != "encode" else at.text_input(key=key)
    limit = TEXT_BOX_LIMITS[use]
    assert box.proto.max_chars == limit
    box.set_value("ROMEO " * 350_000).run()
    assert not at.exception, at.exception
    assert len(at.session_state[key]) == limit


# --------------------------------------------------------------------------
# A text of one distinct character: nothing to guess. Refused with the reason
# (it trained, then its export failed on a loss of log(1) = 0, half-written).


@pytest.mark.parametrize("text", ["a" * 3000, "\n" * 50, "x"], ids=["a-3000", "newline-50", "x"])
def test_a_text_of_one_character_is_refused_with_the_reason(tmp_path, monkeypatch, text):
    from tinyllm.data import corpus_from_bytes
    from tinyllm.jobs import TrainingJobs

    with pytest.raises(TinyLLMError, match="nothing to guess"):
        corpus_from_bytes(text.encode(), "one.txt")
    monkeypatch.setenv("PEEK_RUNS_DIR", str(tmp_path / "runs"))
    jobs = TrainingJobs()
    with pytest.raises(TinyLLMError, match="nothing to guess"):
        jobs.start("one", dict(steps=20), text.encode(), "one.txt")
    assert not jobs.running() and not (tmp_path / "runs" / "one").exists()


@pytest.mark.parametrize(
    "odd", [{"prompts": 5}, {"prompts": None, "name": 3}, {"counts": "x"}, {"val_slice": 5}, {"chars": "many"}]
)
def test_export_refuses_odd_corpus_fields_in_words(tiny_run, tmp_path, capsys, odd):
    import json

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    facts = json.loads((run / "corpus.json").read_text())
    (run / "corpus.json").write_text(json.dumps({**facts, **odd}))
    assert main(["export", "--run", str(run)]) == 2
    assert "corpus.json is damaged" in capsys.readouterr().err
