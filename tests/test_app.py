"""AppTest: every page renders against a small exported run, and its controls change what is shown."""

import base64
import re
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tinyllm.jobs import PRESETS
from ui import page_names

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")

PAGES = page_names()


@pytest.fixture
def app_env(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("PEEK_KID_DIR", str(tiny_run))
    monkeypatch.setenv("PEEK_RUNS_DIR", str(tmp_path / "runs"))
    return tiny_run


def open_page(page):
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception
    if page != "meet":
        at.switch_page(f"pages/{page}.py").run()
    return at


def texts(at):
    return " ".join(
        str(e.value)
        for kind in ("markdown", "caption", "code", "info", "warning", "success")
        for e in getattr(at, kind)
    )


@pytest.mark.parametrize("page", PAGES)
def test_every_page_asks_for_the_frame_before_it_draws(page):
    """Its first statement after the imports is in_frame(): a page that a
    fresh server serves on its own (Streamlit's pages/ folder) sends the
    visitor to the frame instead of drawing (test_browser.py opens each so)."""
    import ast

    from ui import APP_PAGES

    body = ast.parse((APP_PAGES / f"{page}.py").read_text()).body
    first = next(
        node
        for node in body
        if not isinstance(node, ast.Import | ast.ImportFrom)
        and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))  # the docstring
    )
    assert ast.unparse(first) == "in_frame()", f"{page}.py begins with {ast.unparse(first)!r}"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(app_env, page):
    at = open_page(page)
    assert not at.exception, at.exception
    assert at.title, f"{page} has no title"


def test_meet_shows_the_real_numbers(app_env):
    from tinyllm.export import read_chapter

    card = read_chapter(app_env, "model_card")
    at = open_page("meet")
    assert any(m.value == f"{card['total_params']:,}" for m in at.metric)
    assert f"{card['uniform_loss']:.3f}" in texts(at)
    assert at.sidebar.selectbox(key="run").value == "kid"


def test_vocab_encodes_and_flags_unknown_characters(app_env):
    at = open_page("vocab")
    at.text_input(key="vocab_text").set_value("ROMEO").run()
    codes = [c.value for c in at.code]
    assert not at.warning and any(c.startswith("[") for c in codes)
    at.text_input(key="vocab_text").set_value("ROMEO@").run()
    assert at.warning and "@" in at.warning[0].value
    assert "ROMEO" in [c.value for c in at.code]


def test_embeddings_neighbours_follow_the_choice(app_env):
    at = open_page("embeddings")
    before = [m.value for m in at.metric]
    at.selectbox(key="embeddings_char").set_value(3).run()
    assert not at.exception and [m.value for m in at.metric] != before
    assert len(at.get("vega_lite_chart")) >= 2


def charts(at):
    """What the Altair charts on the page would draw: spec and data."""
    return [
        (c.proto.spec, c.proto.data.data, [d.data.data for d in c.proto.datasets]) for c in at.get("vega_lite_chart")
    ]


def test_positions_slider_changes_the_matrix(app_env):
    at = open_page("positions")
    before = charts(at)
    assert len(before) == 3  # similarity heatmap, similarity by distance, the vectors
    at.slider(key="positions_dims").set_value(8).run()
    assert not at.exception
    after = charts(at)
    assert after[:2] == before[:2] and after[2] != before[2]


def test_vocab_sort_changes_the_chart(app_env):
    at = open_page("vocab")
    before = charts(at)
    at.radio(key="vocab_sort").set_value("by count").run()
    assert charts(at) != before


def test_attention_controls_change_the_numbers(app_env):
    at = open_page("attention")
    code = [c.value for c in at.code]
    assert any("class Head" in c and "softmax" in c for c in code)  # the real source, not a copy
    first = at.dataframe[0].value.to_dict()
    at.slider(key="attention_query").set_value(5).run()
    assert not at.exception
    assert at.dataframe[0].value.to_dict() != first
    at.slider(key="attention_layer").set_value(1).run()
    at.slider(key="attention_head").set_value(2).run()
    assert not at.exception and "Layer 1, head 2" in texts(at)
    at.radio(key="attention_prompt").set_value(3).run()  # your own text, computed live
    assert not at.exception
    at.text_area(key="attention_own").set_value("ROMEO:\nJuliet sees the moon.").run()
    assert not at.exception and at.dataframe
    at.text_area(key="attention_own").set_value("ROMEO ~~").run()
    assert "never seen" in texts(at)


def test_predictions_position_and_logit_lens(app_env):
    at = open_page("predictions")
    assert "The logit lens" in texts(at)
    lens = at.dataframe[0].value
    assert len(lens) == 2  # one row per layer of the tiny model
    at.slider(key="predictions_pos").set_value(3).run()
    assert not at.exception and not at.dataframe[0].value.equals(lens)


def test_training_scrubs_through_snapshots(app_env):
    at = open_page("training")
    final_sample = at.code[0].value
    at.select_slider(key="training_step").set_value(0).run()
    assert not at.exception
    assert at.code[0].value != final_sample  # the untrained kid writes noise
    at.select_slider(key="training_step").set_value(50).run()
    # the timeline of snapshots, on an axis of steps, marks the one chosen
    import pyarrow as pa

    charts = [
        {d.name: pa.ipc.open_stream(d.data.data).read_all().to_pylist() for d in c.proto.datasets}
        for c in at.get("vega_lite_chart")
    ]
    timeline = [tables for tables in charts if "selected" in tables]
    assert len(timeline) == 1
    assert len(timeline[0]["snapshots"]) == len(at.select_slider(key="training_step").options)  # every snapshot
    assert [row["step"] for row in timeline[0]["selected"]] == [50]


def test_missing_export_is_explained_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("PEEK_KID_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("PEEK_RUNS_DIR", str(tmp_path / "runs"))
    at = open_page("meet")
    assert not at.exception
    assert "the kid's pages cannot be read" in at.info[0].value
    assert "python -m" not in at.info[0].value and str(tmp_path) not in at.info[0].value  # words, not commands


@pytest.mark.slow
def test_live_training_view_run_selector_and_playground(app_env, tiny_data_file):
    from ui.train_form import jobs

    at = open_page("train_live")
    assert "No run started" in texts(at)
    # The sidebar's Train button calls jobs().start with the form's values; AppTest
    # cannot click buttons in the frame's sidebar (the browser test does), so
    # this starts the shared job the same way.
    job = jobs()
    settings = dict(steps=50, batch_size=8, block_size=16, n_embd=32, n_head=4, n_layer=1, dropout=0.0, lr=3e-3, seed=0)
    job.start("from-ui", settings)
    at.switch_page("pages/train_live.py").run()
    assert not at.exception
    assert "'from-ui'" in texts(at) or any("from-ui" in s.value for s in at.subheader)
    deadline = time.time() + 120
    while job.running():
        assert time.time() < deadline
        time.sleep(0.2)
    at.switch_page("pages/train_live.py").run()
    assert not at.exception
    assert "Done:" in " ".join(s.value for s in at.success)
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert "from-ui" in at.sidebar.selectbox(key="run").options

    at.sidebar.selectbox(key="run").set_value("from-ui").run()
    at.switch_page("pages/playground.py").run()
    at.text_area(key="playground_prompt").set_value("ROMEO:\n")
    at.slider(key="playground_length").set_value(100)
    at.button(key="playground_write").click().run()
    assert not at.exception
    assert "100 characters in" in texts(at)
    at.text_area(key="playground_prompt").set_value("ROMEO ~").run()
    assert "never seen" in texts(at)


@pytest.mark.slow
def test_sidebar_shows_a_running_job_on_every_page(app_env, tiny_data_file):
    from ui.train_form import jobs

    job = jobs()
    job.start("long-one", dict(steps=5000, batch_size=8, block_size=16, n_embd=32, n_head=4, n_layer=1))
    try:
        for page in ("meet", "attention"):
            at = open_page(page)
            assert not at.exception, at.exception
            assert at.sidebar.button(key="train_stop_sidebar")  # Stop, instead of the form
            assert not [b for b in at.sidebar.button if b.key == "train_start"]
    finally:
        job.stop()
        while job.running():
            time.sleep(0.1)


@pytest.mark.slow
def test_write_head_checks_the_code_and_names_each_mistake(app_env, monkeypatch):
    from head_solutions import SOLUTION, with_mistake

    from tinyllm.headcheck import MISTAKE_TITLES

    monkeypatch.setenv("PEEK_VISITOR_CODE", "on")
    at = open_page("write_head")
    assert "Fill in the five steps" in texts(at) and not at.error
    for mistake in ("no_scaling", "no_mask", "softmax_dim"):
        at.text_area(key="head_code").set_value(with_mistake(mistake)).run()
        at.button(key="head_check").click().run()
        assert not at.exception
        assert MISTAKE_TITLES[mistake] in at.error[0].value
    at.text_area(key="head_code").set_value(SOLUTION).run()
    assert "press **Check** again" in texts(at) and not at.error  # no stale report beside new code
    at.button(key="head_check").click().run()
    assert "You wrote attention" in at.success[0].value
    assert at.button(key="head_train")
    at.selectbox(key="head_layer").set_value(1).run()
    assert not at.success  # the report was for layer 0
    at.button(key="head_hint").click().run()
    assert "**Step 1.**" in texts(at)


@pytest.mark.slow
def test_training_with_your_head_offline_offers_a_text_of_your_own(app_env, monkeypatch, tmp_path):
    """No copy of tinyshakespeare and a download that fails at once (a proxy on
    a closed local port, never the network): Train says so and offers the upload."""
    import socket

    from head_solutions import SOLUTION

    from ui.train_form import jobs

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.delenv("TINYLLM_DATA", raising=False)
    monkeypatch.setattr("tinyllm.data.CACHE_DIR", tmp_path / "cache")
    for name in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, closed)
    monkeypatch.setenv("PEEK_VISITOR_CODE", "on")
    at = open_page("write_head")
    at.text_area(key="head_code").set_value(SOLUTION).run()
    at.button(key="head_check").click().run()
    assert at.radio(key="head_corpus").options == ["tinyshakespeare", "my own text file"]
    at.button(key="head_train").click().run()
    assert not at.exception and not jobs().running()
    assert "could not be downloaded" in at.error[0].value and "--data" not in at.error[0].value


def test_write_head_without_running_code(app_env, monkeypatch):
    monkeypatch.setenv("PEEK_VISITOR_CODE", "off")
    at = open_page("write_head")
    assert not at.exception
    assert not [t for t in at.text_area if t.key == "head_code"]
    assert "PEEK_VISITOR_CODE=off" in texts(at)
    # no command line for the visitor here: the commands live in Behind the scenes
    from tinyllm.exercise import TEMPLATE  # the file itself names its command, for the learner's terminal

    commands = [c.value for c in at.code if c.value.strip() != TEMPLATE.strip()]
    assert not any("python -m" in value for value in commands) and "Do it yourself" in texts(at)
    assert at.get("download_button")
    at.switch_page("pages/behind.py").run()
    assert any("python -m tinyllm check-head my_head.py" in c.value for c in at.code)


def diagram(at) -> str:
    """The SVG of the page's forward-pass diagram (st.image sends it as a data URL)."""
    url = at.get("image")[0].proto.imgs[0].url
    return base64.b64decode(url.split(",", 1)[1]).decode()


def test_whole_kid_follows_stage_position_neuron_and_text(app_env):
    at = open_page("whole_kid")
    assert not at.exception
    svg = diagram(at)
    assert "block 1" in svg and "block 2" not in svg  # drawn from the tiny run's 2 layers
    assert "# ◀ this stage" in at.code[0].value
    shown = charts(at), texts(at)
    at.slider(key="whole_pos").set_value(3).run()
    assert not at.exception and charts(at) != shown[0]
    stage_code = at.code[0].value
    at.select_slider(key="whole_stage").set_value("block 1: feed-forward adds (narrow back)").run()
    assert not at.exception and at.code[0].value != stage_code and "residual stream" in texts(at)
    marked = [line for line in at.code[0].value.splitlines() if "◀ this stage" in line]
    assert len(marked) == 1 and "self.ffwd(self.ln2(x))" in marked[0]
    assert re.search(r'fill="#1f4e79"[^>]*/><text[^>]*>128 → 32<', diagram(at))  # marked, with the real widths
    at.radio(key="whole_block").set_value(1).run()
    assert "neurons of block 1 fired" in texts(at)
    contexts = [h.proto.body for h in at.get("html")]
    neuron = at.selectbox(key="whole_neuron_1")
    neuron.set_value(neuron.options and int(neuron.options[1].split(" ")[0][1:])).run()
    assert not at.exception and [h.proto.body for h in at.get("html")] != contexts
    # the attribution's pushes add up to the logit that the caption prints
    for caption in [c.value for c in at.caption if "pushes sum to" in c.value]:
        pushes, bias, total, logit = [float(n) for n in re.findall(r"-?\d+\.\d+", caption)]
        assert pushes + bias == pytest.approx(total, abs=2e-3) and total == pytest.approx(logit, abs=2e-3)
    at.radio(key="whole_prompt").set_value(3).run()
    at.text_area(key="whole_own").set_value("R").run()  # one character
    assert not at.exception and "Position: 0 (the only one)" in texts(at)
    at.text_area(key="whole_own").set_value("ROMEO ~~").run()
    assert not at.exception and "never seen" in texts(at)


@pytest.mark.parametrize("run", ["smallest_run", pytest.param("largest_run", marks=pytest.mark.slow)])
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_the_smallest_and_the_largest_run(run, page, tmp_path, monkeypatch, request):
    """The runs at both ends of what the limits accept (conftest.py)."""
    monkeypatch.setenv("PEEK_KID_DIR", str(request.getfixturevalue(run)))
    monkeypatch.setenv("PEEK_RUNS_DIR", str(tmp_path / "runs"))
    at = open_page(page)
    assert not at.exception, at.exception


@pytest.mark.parametrize(
    "page, prefix", [("attention", "attention"), ("predictions", "predictions"), ("whole_kid", "whole")]
)
def test_one_character_of_your_own_text(app_env, page, prefix):
    at = open_page(page)
    at.radio(key=f"{prefix}_prompt").set_value(3).run()
    at.text_area(key=f"{prefix}_own").set_value("R").run()
    assert not at.exception, at.exception
    assert "(the only one)" in texts(at)


def test_broken_run_folders_never_take_the_app_down(app_env, tmp_path):
    """A run folder with a damaged model card or chapter, a dangling link, a
    folder named 'kid': listed as broken (or skipped), every page still works."""
    import json
    import shutil

    runs = tmp_path / "runs"
    for name, card in [("list", []), ("number", 42), ("empty", {}), ("wrong-types", {"total_params": "many"})]:
        shutil.copytree(app_env, runs / name)
        (runs / name / "export" / "model_card.json").write_text(json.dumps(card))
    shutil.copytree(app_env, runs / "not-utf8")
    (runs / "not-utf8" / "export" / "vocab.json").write_bytes(b"\xff\xfe{")
    shutil.copytree(app_env, runs / "kid")
    (runs / "gone").symlink_to(tmp_path / "nowhere")
    at = open_page("meet")
    options = at.sidebar.selectbox(key="run").options
    assert options.count("kid") == 1 and "gone" not in options
    for name in ("list", "number", "empty", "wrong-types"):
        at.sidebar.selectbox(key="run").set_value(name).run()
        assert not at.exception, at.exception
        assert "cannot be shown" in " ".join(c.value for c in at.sidebar.caption)
    at.sidebar.selectbox(key="run").set_value("not-utf8").run()
    at.switch_page("pages/vocab.py").run()
    assert not at.exception and "damaged" in texts(at)


def test_playground_shows_what_the_knobs_did_and_never_a_stale_text(app_env):
    at = open_page("playground")
    at.slider(key="playground_length").set_value(50)
    at.slider(key="playground_temperature").set_value(0.5)
    at.button(key="playground_write").click().run()
    assert not at.exception and "50 characters in" in texts(at)
    assert any("drawn from" in str(datasets) + str(data) for _, data, datasets in charts(at))
    assert "temperature 0.5" in texts(at)
    # at temperature 0.5 the likeliest candidate takes more than the kid believed
    first = at.session_state["playground_result"]["written"][0]
    assert first["drawn"][0] > first["top"][0][1]
    at.slider(key="playground_temperature").set_value(1.5).run()
    assert "knobs changed" in texts(at) and "50 characters in" not in texts(at)


def test_a_run_without_pages_is_explained_in_a_visitors_words_and_can_be_written(app_env, tmp_path):
    import json
    import shutil

    runs = tmp_path / "runs"
    failed = runs / "failed-early"
    failed.mkdir(parents=True)
    (failed / "progress.json").write_text(json.dumps(dict(status="failed", step=0, steps=1)))
    shutil.copytree(app_env, runs / "unwritten")
    shutil.rmtree(runs / "unwritten" / "export")
    at = open_page("meet")
    at.sidebar.selectbox(key="run").set_value("failed-early").run()
    assert "before its first checkpoint" in " ".join(c.value for c in at.sidebar.caption)
    assert "python -m tinyllm" not in " ".join(c.value for c in at.sidebar.caption)
    at.sidebar.selectbox(key="run").set_value("unwritten").run()
    at.switch_page("pages/vocab.py").run()
    assert not at.exception and "not written yet" in texts(at)
    at.button(key="export_now").click().run()
    assert not at.exception and (runs / "unwritten" / "export" / "vocab.json").is_file()
    assert at.title[0].value == "Vocabulary"


def test_a_visitor_deletes_a_run_they_made_and_only_that(app_env, tmp_path):
    import shutil

    runs = tmp_path / "runs"
    for name in ("mine", "someone-elses"):
        shutil.copytree(app_env, runs / name)
    at = open_page("train_live")
    assert "only you can delete them" in texts(at)  # nothing of someone else's is offered
    at.session_state["my_runs"] = {"mine"}
    at.run()
    assert at.selectbox(key="train_live_delete_name").options == ["mine"]
    at.button(key="train_live_delete").click().run()
    assert not at.exception and not (runs / "mine").exists() and (runs / "someone-elses").exists()
    assert "mine" not in at.sidebar.selectbox(key="run").options


def test_every_chapter_ends_with_the_way_back_and_on(app_env):
    chapters = [
        "meet",
        "vocab",
        "embeddings",
        "positions",
        "attention",
        "whole_kid",
        "predictions",
        "training",
        "behind",
    ]
    at = open_page("meet")
    for n, page in enumerate(chapters):
        if page != "meet":
            at.switch_page(f"pages/{page}.py").run()
        labels = [link.proto.label for link in at.get("page_link")]
        assert (n > 0) == any(label.startswith(f"Back: {n}.") for label in labels), (page, labels)
        assert (n < len(chapters) - 1) == any(label.startswith(f"Next: {n + 2}.") for label in labels), labels


def test_the_attention_table_says_what_the_mask_did(app_env):
    at = open_page("attention")
    at.slider(key="attention_query").set_value(5).run()
    table = at.dataframe[0].value
    hidden = table[table["pos"] > 5]["score"].tolist()
    assert hidden and all(score == "−∞" for score in hidden)
    assert all(float(score) == float(score) for score in table[table["pos"] <= 5]["score"])  # numbers, no None


def test_training_explains_its_two_losses_and_scrubs_the_samples(app_env):
    from tinyllm.export import read_chapter

    card = read_chapter(app_env, "model_card")
    at = open_page("training")
    assert f"this checkpoint's loss is {card['exact_val_loss']:.3f}" in texts(at)
    last = at.code[-1].value
    at.select_slider(key="training_sample_step").set_value(0).run()
    assert not at.exception and at.code[-1].value != last


def test_vocabulary_caption_names_the_run_s_own_most_and_least_frequent(app_env):
    from tinyllm.export import read_chapter
    from ui.text import code

    chars = read_chapter(app_env, "vocab")["chars"]
    most, least = max(chars, key=lambda c: c["count"]), min(chars, key=lambda c: c["count"])
    at = open_page("vocab")
    caption = next(c.value for c in at.caption if "most frequent" in c.value)
    assert f"{code(most['char'])}, appears {most['count']:,} times" in caption
    assert f"the rarest, {code(least['char'])}, {least['count']:,}" in caption


def test_the_training_form_offers_no_more_than_the_server_trains(app_env, monkeypatch):
    """With lower limits, the form's fields stop there and the presets are cut
    to fit (a preset above a field's maximum would be an error)."""
    from ui.train_form import jobs

    monkeypatch.setattr(jobs().limits, "max_steps", 1000)
    monkeypatch.setattr(jobs().limits, "max_context", 24)
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception
    steps, context = at.sidebar.number_input(key="train_steps"), at.sidebar.number_input(key="train_block_size")
    assert "(50 to 1000)" in steps.help and "(8 to 24)" in context.help
    assert steps.value == 1000 and context.value == 24  # the quick preset asks for 4,000 and 32
    # more than that is refused with the field's name (the browser test sees it next to Train)
    from ui.train_form import settings_problem

    assert settings_problem(dict(PRESETS["quick"], steps=1000, block_size=24)) is None
    too_many = settings_problem(dict(PRESETS["quick"], steps=1001, block_size=24))
    assert too_many == "Steps must be from 50 to 1000 (it is 1001)."


# Files of a run folder that become FIFOs (a writer never comes) in the tests below.
FIFO_FILES = [
    "progress.json",
    "summary.json",
    "corpus.json",
    "log.jsonl",
    "STOP",
    "train.out",
    ".writer",
    "latest.pt",
    "export/model_card.json",
]


def test_a_fifo_in_a_run_folder_hangs_no_page(app_env, tmp_path):
    """A FIFO named progress.json (or any other file of a run folder): every
    page lists the runs, and reading a FIFO waits for a writer that never
    comes. Every page must render at once, for the run listed beside it and
    for that run selected. (The pages run in a thread: one that waits on a
    FIFO fails the test, and is let go afterwards, instead of hanging it.)"""
    import shutil
    import threading

    from helpers import fifo_run, release_fifos

    runs = tmp_path / "runs"
    shutil.copytree(app_env, runs / "piped")
    fifos = fifo_run(runs / "piped", FIFO_FILES)
    pages = []

    def visit():
        at = AppTest.from_file(APP, default_timeout=30)
        at.run()
        at.sidebar.selectbox(key="run").set_value("piped").run()
        for page in PAGES:
            at.switch_page(f"pages/{page}.py").run()
            pages.append((page, list(at.exception)))

    thread = threading.Thread(target=visit, daemon=True)
    thread.start()
    thread.join(timeout=120)
    release_fifos(fifos)
    assert not thread.is_alive(), f"a page waited on a FIFO (rendered: {[page for page, _ in pages]})"
    assert [page for page, _ in pages] == PAGES
    assert not [(page, errors) for page, errors in pages if errors]


@pytest.mark.slow
def test_a_cleared_cache_forgets_no_training_run(app_env, tiny_data_file):
    """Streamlit's clear_cache message, which any client can send, clears every
    st.cache_resource. The training slot must not live there: after it, the
    run still shows as training (not as one left by a restarted server), and
    its owner still cannot delete it while it trains."""
    import streamlit as st

    from tinyllm.runfolder import RunFolder
    from ui.train_form import jobs

    at = open_page("train_live")
    at.session_state["my_runs"] = {"mine-training"}
    run_dir = jobs().start("mine-training", dict(steps=5000, batch_size=8, block_size=16, n_embd=32, n_layer=1))
    try:
        deadline = time.time() + 60
        while RunFolder(run_dir).writer() is None:
            assert time.time() < deadline and jobs().running()
            time.sleep(0.1)
        st.cache_resource.clear()  # what the clear_cache message does (with st.cache_data.clear())
        st.cache_data.clear()
        at.run()
        assert not at.exception
        assert "started before this server restarted" not in " ".join(w.value for w in at.warning)
        assert at.button(key="train_live_delete").disabled
        assert at.sidebar.button(key="train_stop_sidebar")  # the sidebar shows it running
        assert jobs().running() and jobs().name == "mine-training"
    finally:
        jobs().stop()
        while jobs().running():
            time.sleep(0.1)


def test_behind_offers_resume_only_where_there_is_a_state_to_resume(app_env, tmp_path, monkeypatch):
    """The committed kid and its siblings ship no latest.pt: no --resume line for them."""
    resumes = lambda at: any("--resume" in c.value for c in at.code)  # noqa: E731
    assert (app_env / "latest.pt").is_file() and resumes(open_page("behind"))
    shipped = tmp_path / "shipped"  # a copy as committed: without the state to resume from
    shutil.copytree(app_env, shipped, ignore=shutil.ignore_patterns("latest.pt"))
    monkeypatch.setenv("PEEK_KID_DIR", str(shipped))
    at = open_page("behind")
    assert not at.exception and not resumes(at) and any("--out" in c.value for c in at.code)
