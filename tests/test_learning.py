"""learning.json: the kid's surprise at every character of a validation
passage, at every snapshot, re-derived by a second path; its classes; the
sentences the Training chapter prints from it; runs that have none."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from tinyllm.checkpoint import load_model
from tinyllm.export import export_run, read_chapter
from tinyllm.learning import BELOW, CLASSES, PASSAGE_CHARS, class_counts_sentence, class_of, learning_story
from tinyllm.runfolder import RunFolder

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
KID_LEARNING = RunFolder(Path(__file__).resolve().parent.parent / "artifacts" / "kid").chapter("learning")


def plain_losses(model, ids: list, T: int) -> list:
    """-ln p of each character from the second on, one forward pass per
    character, by the model's own loss: the window of the (at most) T
    characters before it, with every target but the last ignored."""
    model.set_fast(False)  # the readable attention, not the export's fused one
    losses = []
    with torch.no_grad():
        for t in range(1, len(ids)):
            window = ids[max(0, t - T) : t]
            targets = [-100] * (len(window) - 1) + [ids[t]]  # -100: ignored by cross_entropy
            _, loss = model(torch.tensor([window]), torch.tensor([targets]))
            losses.append(float(loss))
    return losses


@pytest.mark.slow
def test_losses_are_the_models_own_at_two_snapshots(tiny_run):
    doc = read_chapter(tiny_run, "learning")
    passage = doc["passage"]
    val = json.loads((tiny_run / "corpus.json").read_text())["val_slice"]
    assert passage == val[:PASSAGE_CHARS] and len(passage) == PASSAGE_CHARS  # the tiny split is longer
    snapshots = RunFolder(tiny_run).snapshot_files()
    assert doc["steps"] == sorted(doc["steps"]) and len(doc["steps"]) == len(snapshots) == len(doc["losses"])
    for path in (snapshots[0], snapshots[-1]):  # the untrained kid and the last one
        model, vocab, ckpt = load_model(path)
        expected = plain_losses(model, vocab.encode(passage), model.config.block_size)
        got = doc["losses"][doc["steps"].index(ckpt["step"])]
        assert len(got) == len(passage) - 1
        torch.testing.assert_close(torch.tensor(got), torch.tensor(expected), rtol=1e-3, atol=1e-4)
        # the losses are not all alike: the trained kid expects some characters far more than others
        assert max(expected) - min(expected) > (0.01 if ckpt["step"] == 0 else 1.0)


def test_classes_and_means_are_computed_from_the_passage(tiny_run):
    doc = read_chapter(tiny_run, "learning")
    assert doc["format"] == "peek-export/learning" and doc["version"] == 1
    assert [c["name"] for c in doc["classes"]] == [name for name, *_ in CLASSES]
    assert doc["class_of"] == class_of(doc["passage"])
    assert [c["count"] for c in doc["classes"]] == [doc["class_of"].count(i) for i in range(len(CLASSES))]
    for losses, means, mean in zip(doc["losses"], doc["class_means"], doc["means"]):
        assert mean == pytest.approx(sum(losses) / len(losses), rel=1e-3)
        for c, class_mean in enumerate(means):
            members = [loss for loss, found in zip(losses, doc["class_of"]) if found == c]
            assert class_mean == (pytest.approx(sum(members) / len(members), rel=1e-3) if members else None)


def test_each_character_is_in_one_class_by_precedence():
    text = "ROMEO:\nDon't go, sir 42$ o'er"
    names = [None if c is None else CLASSES[c][0] for c in class_of(text)]
    space, capital, first, inside, punct = (name for name, *_ in CLASSES)
    assert names == [
        capital, capital, capital, capital, punct, space,  # OMEO:\n (R is not predicted)
        capital, inside, inside, punct, inside, space,  # Don't : the t after the apostrophe stays in the word
        first, inside, punct, space, first, inside, inside, space,  # go, sir
        None, None, None, space, first, punct, inside, inside,  # 42$ (no class), o'er
    ]  # fmt: skip


def test_the_story_names_what_the_numbers_say(tiny_run, smallest_run):
    """For the committed kid, the 2-layer tiny run and the smallest run: the
    class named first below 1.0 (and its step) and the one named hardest
    are those the means say, found here by a loop of its own."""
    kid = json.loads(KID_LEARNING.read_text(encoding="utf-8"))
    tiny = read_chapter(tiny_run, "learning")
    for doc in (kid, tiny):
        story = learning_story(doc)
        present = [c for c, cls in enumerate(doc["classes"]) if cls["count"]]
        last = doc["class_means"][-1]
        hardest = max(present, key=lambda c: last[c])
        assert f"{doc['classes'][hardest]['name'].capitalize()} stay hardest to guess" in story
        assert f"{last[hardest]:.2f} at step {doc['steps'][-1]:,}" in story
        # the first snapshot where some class is below 1.0, and those classes
        s = next(s for s, means in enumerate(doc["class_means"]) if any(means[c] < BELOW for c in present))
        below = [doc["classes"][c]["name"] for c in present if doc["class_means"][s][c] < BELOW]
        assert s > 0  # both runs start above 1.0 everywhere
        both = " both" if len(below) == 2 else " all" if len(below) > 2 else ""
        assert f"the first to fall below a loss of 1.0:{both} at step {doc['steps'][s]:,}" in story
        assert all(name in story.split("the first to fall")[0].lower() for name in below)

    smallest = read_chapter(smallest_run, "learning")
    counts = {c["name"]: c["count"] for c in smallest["classes"]}
    assert (
        counts["letters inside words"] == len(smallest["passage"]) - 1
        and sum(counts.values()) == counts["letters inside words"]
    )  # only a and b, no space: one word
    assert "no spaces and newlines, no capitals, no first letters of words" in class_counts_sentence(smallest)
    assert learning_story(smallest).startswith("Only one class has characters in this passage, letters inside words")


def test_the_story_when_no_class_or_every_class_is_below():
    doc = dict(
        steps=[0, 10],
        classes=[{"name": "a", "count": 3}, {"name": "b", "count": 2}],
        class_means=[[0.5, 0.9], [0.4, 0.2]],
    )
    assert learning_story(doc).startswith("Every class is already below a loss of 1.0 at step 0")
    doc["class_means"] = [[3.0, 2.0], [2.5, 1.5]]
    story = learning_story(doc)
    assert story.startswith("No class falls below a loss of 1.0 by step 10; b come closest, at 1.50.")
    assert "A stay hardest" in story
    doc["class_means"] = [[3.0, 2.0], [2.5, 0.5]]
    assert learning_story(doc).startswith("B are the first to fall below a loss of 1.0: at step 10. A are still above")
    doc["classes"][0]["count"] = doc["classes"][1]["count"] = 0
    assert learning_story(doc).startswith("No character of this passage is in any class")


def open_training(run_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("PEEK_KID_DIR", str(run_dir))
    monkeypatch.setenv("PEEK_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/training.py").run()
    assert not at.exception, at.exception
    return at


def passage_spans(at) -> list:
    """The coloured passage on the page: each character's background colour."""
    import re

    html = next(h.proto.body for h in at.get("html") if "loss" in h.proto.body)
    return re.findall(r'<span title="[^"]*" style="background:([^;]*);', html)


@pytest.mark.slow
def test_the_page_colours_the_passage_at_the_chosen_step(tiny_run, monkeypatch, tmp_path):
    from tinyllm.explain import surprise_colour

    doc = read_chapter(tiny_run, "learning")
    at = open_training(tiny_run, monkeypatch, tmp_path)
    for step in (doc["steps"][0], doc["steps"][-1]):
        at.select_slider(key="training_step").set_value(step).run()
        assert not at.exception
        losses = doc["losses"][doc["steps"].index(step)]
        assert passage_spans(at) == ["transparent"] + [surprise_colour(loss) for loss in losses]
    page = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert learning_story(doc) in page and class_counts_sentence(doc) in page


@pytest.mark.slow
def test_runs_without_snapshots_or_without_the_file(tiny_run, monkeypatch, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    # exported before learning.json existed: the page says so and writes it on request
    RunFolder(run).chapter("learning").unlink()
    at = open_training(run, monkeypatch, tmp_path)
    assert "written before peek measured" in at.info[0].value
    at.button(key="training_export_learning").click().run()
    assert not at.exception and RunFolder(run).chapter("learning").is_file() and passage_spans(at)
    # no snapshots: no file (the stale one goes), and the page says why there is nothing to scrub
    shutil.rmtree(RunFolder(run).snapshots)
    export_run(run)
    assert not RunFolder(run).chapter("learning").exists()
    at = open_training(run, monkeypatch, tmp_path)
    assert "kept no snapshots" in at.info[0].value


@pytest.mark.slow
def test_a_run_shipped_without_snapshots_is_not_offered_a_measuring_it_cannot_do(tiny_run, monkeypatch, tmp_path):
    """Its pages (evolution.json) hold the snapshots' steps, but the files are gone: no button that does nothing."""
    run = tmp_path / "shipped"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("snapshots", "learning.json"))
    at = open_training(run, monkeypatch, tmp_path)
    assert not at.exception and "cannot be measured here" in at.info[0].value
    assert not [b for b in at.button if b.key == "training_export_learning"]
