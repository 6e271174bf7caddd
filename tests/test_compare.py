"""Two runs side by side: the settings that differ and which learned better,
computed from two tiny runs made here; the kid's siblings in the run list."""

import json
import shutil

import pytest
from helpers import tiny_configs
from streamlit.testing.v1 import AppTest
from test_app import APP

from tinyllm.compare import (
    card_side,
    differences_sentence,
    head_rows,
    learning_rows,
    matching_steps,
    settings_diff,
    sibling_line,
    verdict,
)
from tinyllm.export import export_run, read_chapter
from tinyllm.runfolder import RunFolder, find_run, list_runs, reserved_names
from tinyllm.train import train
from ui.text import escaped


@pytest.fixture(scope="module")
def one_block(tmp_path_factory, tiny_corpus):
    """A sibling of the tiny run: the same corpus, steps and seed, one block instead of two."""
    run_dir = tmp_path_factory.mktemp("siblings") / "one-block"
    train(*tiny_configs(n_layer=1), tiny_corpus, run_dir)
    export_run(run_dir)
    return run_dir


def side(name, run_dir):
    return card_side(name, read_chapter(run_dir, "model_card"), read_chapter(run_dir, "training")["rows"])


def test_the_settings_that_differ_are_those_changed(tiny_run, one_block):
    card, sibling = read_chapter(tiny_run, "model_card"), read_chapter(one_block, "model_card")
    diff = settings_diff(card, sibling)
    assert [(d.name, d.a, d.b) for d in diff] == [("n_layer", 2, 1)]
    assert differences_sentence(card, sibling) == "1 block instead of 2"
    assert differences_sentence(sibling, card) == "2 blocks instead of 1"
    assert differences_sentence(card, card) == "the same settings"
    # the heads: the same width, so each head grows
    one_head = dict(card, config=dict(card["config"], n_head=1))
    width, heads = card["config"]["n_embd"], card["config"]["n_head"]
    assert differences_sentence(card, one_head) == (
        f"1 head per layer instead of {heads} (each {width} numbers wide instead of {width // heads}: the same width)"
    )
    short = dict(card, config=dict(card["config"], block_size=8))
    assert differences_sentence(card, short) == f"a context of 8 characters instead of {card['config']['block_size']}"


def test_the_verdict_names_the_better_run_by_how_much_and_from_which_step(tiny_run, one_block):
    a, b = side("the two-block run", tiny_run), side("the one-block run", one_block)
    better, worse = (a, b) if a.loss < b.loss else (b, a)
    assert a.loss != b.loss
    said = verdict(a, b)
    assert said.startswith(f"The {better.name.removeprefix('the ')} is better")
    assert f"validation loss {better.loss:.3f} against {worse.loss:.3f} for {worse.name}" in said
    assert f"{worse.loss - better.loss:.3f} lower" in said
    # from which step: the first evaluation from which the better one stayed below, computed here from the rows
    lows = {r["step"]: r["val_loss"] for r in better.rows}
    highs = {r["step"]: r["val_loss"] for r in worse.rows}
    steps = sorted(lows)
    streak = [s for i, s in enumerate(steps) if all(lows[t] < highs[t] for t in steps[i:])]
    if not streak:
        assert f"at step {steps[-1]:,}, the last step both measured, {worse.name} was not behind" in said
    elif streak[0] == steps[0]:
        assert f"ahead at every step both measured, from step {steps[0]:,}" in said
    else:
        assert f"ahead since step {streak[0]:,}" in said
    # the same two runs the other way round: the same verdict
    assert verdict(b, a).split(":")[0] == said.split(":")[0]


def test_the_verdict_of_made_up_curves(tiny_run):
    rows = [{"step": s, "val_loss": 3.0 - s / 100} for s in range(0, 500, 100)]
    ahead_late = [{"step": s, "val_loss": 3.0 - s / 100 + (0.2 if s < 300 else -0.1)} for s in range(0, 500, 100)]
    a = card_side("a", {"exact_val_loss": 1.0, "training_minutes": 2.0}, rows)
    b = card_side("b", {"exact_val_loss": 0.9, "training_minutes": 3.0}, ahead_late)
    said = verdict(a, b)
    assert said.startswith("B is better: validation loss 0.900 against 1.000 for a, 0.100 lower (10.0% lower)")
    assert "ahead since step 300 and stayed ahead to step 400; before that it was not ahead at 3 of the 5" in said
    assert "Training took 2 minutes for a, 3 minutes for b, each on the machine that trained it" in said
    # a run that failed (no kept checkpoint): compared where both measured, and it says so
    failed = card_side("the failed run", None, ahead_late[:3])
    said = verdict(a, failed)
    assert said.startswith("The failed run lacks a kept checkpoint's exact loss")
    assert "at step 200, the last step both measured" in said
    assert "A is better: validation loss 1.000 against 1.200 for the failed run" in said
    # two texts: losses on different texts do not compare
    other = card_side("c", {"exact_val_loss": 0.5, "corpus": {"name": "ab.txt", "md5": "x"}}, rows)
    tiny = card_side("d", {"exact_val_loss": 1.0, "corpus": {"name": "tiny.txt", "md5": "y"}}, rows)
    assert verdict(tiny, other) == (
        "D and c read different texts (tiny.txt and ab.txt): a loss measures surprise on its own text, so theirs "
        "cannot say which learned better (validation loss 1.000 for d, 0.500 for c)."
    )
    # nothing in common, and nothing kept: it says it cannot
    assert "cannot be compared" in verdict(card_side("x", None, []), failed)
    # a damaged log row is left out, never an error
    damaged = card_side("d", {"exact_val_loss": "1.0"}, [{"step": "0", "val_loss": 1}, {"step": 0, "val_loss": None}])
    assert "cannot be compared" in verdict(damaged, failed)


def test_heads_samples_and_learning_from_the_files(tiny_run, one_block):
    rows = head_rows(read_chapter(one_block, "attention"), read_chapter(one_block, "knockout"))
    knockout = read_chapter(one_block, "knockout")
    assert [(r["layer"], r["head"]) for r in rows] == [(0, h) for h in range(4)]
    assert [r["cost"] for r in rows] == [round(loss - knockout["base_loss"], 4) for loss in knockout["heads"][0]]
    assert all(isinstance(r["habit"], str) for r in rows)
    assert head_rows({}, {}) == []
    samples = read_chapter(tiny_run, "training")["samples"]
    assert matching_steps(samples, read_chapter(one_block, "training")["samples"]) == [s["step"] for s in samples]
    assert matching_steps(samples, samples[:2]) == [samples[0]["step"], samples[1]["step"]]
    doc = {
        "format": "peek-export/learning",
        "version": 1,
        "steps": [0, 100],
        "classes": [{"name": "letters", "count": 3}, {"name": "spaces", "count": 0}],
        "class_means": [[4.0, None], [2.0, None]],
    }
    assert learning_rows(doc) == [
        {"step": 0, "class": "letters", "loss": 4.0},
        {"step": 100, "class": "letters", "loss": 2.0},
    ]
    assert learning_rows(dict(doc, version=2)) is None
    assert learning_rows(dict(doc, class_means=[[4.0]])) is None
    assert learning_rows(None) is None


def test_siblings_are_listed_after_the_kid_and_keep_their_names(tiny_run, one_block, tmp_path, monkeypatch):
    kid = tmp_path / "artifacts" / "kid"
    shutil.copytree(tiny_run, kid)
    shutil.copytree(one_block, tmp_path / "artifacts" / "siblings" / "one-block")
    runs = tmp_path / "runs"
    monkeypatch.setenv("PEEK_RUNS_DIR", str(runs))
    shutil.copytree(tiny_run, runs / "mine")
    shutil.copytree(tiny_run, runs / "one-block")  # a visitor's run may not take a sibling's name
    listed = list_runs(kid)
    assert [(r.name, r.kind) for r in listed] == [("kid", "kid"), ("one-block", "sibling"), ("mine", "visitor")]
    assert listed[1].exported and listed[1].path == tmp_path / "artifacts" / "siblings" / "one-block"
    assert reserved_names(kid) == {"kid", "one-block"}
    assert find_run("one-block", kid) == listed[1].path
    assert find_run("mine", kid) == runs / "mine"
    assert find_run("kid", kid) == kid
    for bad in ("../kid", "one-block/../../x", "", None, "gone"):
        assert find_run(bad, kid) is None
    card = read_chapter(kid, "model_card")
    sibling = read_chapter(listed[1].path, "model_card")
    line = sibling_line("one-block", sibling, card)
    assert line == (
        f"one-block: 1 block instead of 2; validation loss {sibling['exact_val_loss']:.3f} "
        f"({sibling['exact_val_loss'] - card['exact_val_loss']:+.3f} against the kid)"
    )
    # a damaged card says less, never fails
    (listed[1].path / "export" / "model_card.json").write_text(json.dumps({"format": "x"}))
    assert not list_runs(kid)[1].exported
    assert sibling_line("one-block", {}, card).endswith("its validation loss is not known")
    assert RunFolder(listed[1].path).model.is_file()


# --- the app: the Compare page, Meet the kid's siblings, the form's sibling ------


@pytest.fixture
def family(tiny_run, one_block, tmp_path, monkeypatch):
    """The tiny run as the kid, with one sibling beside it, and an empty runs folder."""
    kid = tmp_path / "artifacts" / "kid"
    shutil.copytree(tiny_run, kid)
    shutil.copytree(one_block, tmp_path / "artifacts" / "siblings" / "one-block")
    monkeypatch.setenv("PEEK_KID_DIR", str(kid))
    monkeypatch.setenv("PEEK_RUNS_DIR", str(tmp_path / "runs"))
    return kid


def app_texts(at):
    return " ".join(
        str(e.value) for kind in ("markdown", "caption", "info", "warning", "success") for e in getattr(at, kind)
    )


def test_compare_opens_on_the_kid_against_a_sibling(family):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    sibling = family.parent / "siblings" / "one-block"
    kid_card, card = read_chapter(family, "model_card"), read_chapter(sibling, "model_card")
    # Meet the kid: a line per sibling, from its files
    line = sibling_line("one-block", card, kid_card).removeprefix("one-block")
    assert f"**{escaped('one-block')}**{escaped(line)}" in app_texts(at)
    assert at.sidebar.selectbox(key="run").options == ["kid", "one-block"]
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert (at.selectbox(key="compare_a").value, at.selectbox(key="compare_b").value) == ("kid", "one-block")
    expected = verdict(side("the kid", family), side("'one-block'", sibling))
    assert at.success[0].value == escaped(expected)
    assert "1 setting differ" in app_texts(at)
    # the sidebar's selection (an address ?run=one-block) shows the sibling, described against the kid
    at.sidebar.selectbox(key="run").set_value("one-block").run()
    assert f"The kid's sibling: {escaped('1 block instead of 2')}." in app_texts(at)


def test_train_a_sibling_of_this_run_fills_the_form(family):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.sidebar.selectbox(key="run").set_value("one-block").run()
    at.sidebar.button(key="train_sibling").click().run()
    assert not at.exception, at.exception
    card = read_chapter(family.parent / "siblings" / "one-block", "model_card")
    for name in ("n_layer", "n_head", "n_embd", "block_size", "dropout"):
        assert at.sidebar.number_input(key=f"train_{name}").value == card["config"][name], name
    for name in ("batch_size", "lr", "seed"):
        assert at.sidebar.number_input(key=f"train_{name}").value == card["train_settings"][name], name
    # 120 steps is below the form's least (50 is its least: kept), the corpus is not tinyshakespeare
    assert at.sidebar.number_input(key="train_steps").value == max(card["train_settings"]["steps"], 50)
    assert at.sidebar.radio(key="train_corpus").value == "my own text file"
    assert "The form holds the settings of 'one-block'" in app_texts(at)
    # a visitor's run may not take a sibling's name
    from ui.train_form import start

    assert "comes with the app" in start("one-block", {}, None, "tinyshakespeare")
