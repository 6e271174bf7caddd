"""The page's address keeps the thread: Attention, The whole kid and
Predictions read and write the text and position there (?sample=2&pos=7, or
?text=...), so a link lands on the same view, and every bad value in it (the
address is typed by anyone) falls back with a note, never a traceback."""

import shutil
from urllib.parse import parse_qs

import pytest
from streamlit.testing.v1 import AppTest
from test_app import APP


@pytest.fixture
def app_env(tiny_run, tmp_path, monkeypatch):
    """The app on the tiny run (as in test_app.py)."""
    monkeypatch.setenv("PEEK_KID_DIR", str(tiny_run))
    monkeypatch.setenv("PEEK_RUNS_DIR", str(tmp_path / "runs"))
    return tiny_run


# the address of each page: its text choice's key prefix and its position slider
PAGES = {
    "predictions": ("predictions", "predictions_pos"),
    "whole_kid": ("whole", "whole_pos"),
    "attention": ("attention", "attention_query"),
}


def open_at(page, **params):
    """A fresh visitor opening the page at this address."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(f"pages/{page}.py")
    for name, value in params.items():
        at.query_params[name] = value
    return at.run()


def shown(at, page):
    """(the sample chosen, from 0, or "own", the position) that the page shows."""
    prefix, pos_key = PAGES[page]
    choice = at.radio(key=f"{prefix}_prompt")
    sample = "own" if choice.value == len(choice.options) - 1 else choice.value
    return sample, at.slider(key=pos_key).value


def follow(at, label):
    """Click the page link with this label: the browser drops the page's
    address for the link's and runs the page it names."""
    link = next(link.proto for link in at.get("page_link") if link.proto.label == label)
    at.query_params.clear()
    for name, values in parse_qs(link.query_string, keep_blank_values=True).items():
        at.query_params[name] = values[-1]
    return at.switch_page(f"pages/{link.page}.py").run()


@pytest.mark.slow
def test_the_predictions_link_lands_on_the_same_guess_and_keeps_the_run(app_env, tmp_path):
    other = tmp_path / "runs" / "other"  # a second run, so that the address names one
    shutil.copytree(app_env, other)
    at = open_at("predictions", run="other", sample="2", pos="7")
    assert not at.exception, at.exception
    assert shown(at, "predictions") == (1, 7) and not at.info
    at.slider(key="predictions_pos").set_value(9).run()
    assert at.query_params["pos"] == "9" and at.query_params["sample"] == "2"
    at = follow(at, "Which parts pushed this guess")
    assert not at.exception, at.exception
    assert shown(at, "whole_kid") == (1, 9)
    assert at.query_params["run"] == "other" and at.sidebar.selectbox(key="run").value == "other"
    # at Predictions' default (left out of its address), which is not the whole kid's
    at = open_at("predictions")
    assert at.query_params == {} and shown(at, "predictions") == (0, 15)
    assert shown(follow(at, "Which parts pushed this guess"), "whole_kid") == (0, 15)


@pytest.mark.slow
def test_the_reader_s_own_text_travels_in_the_address(app_env):
    at = open_at("predictions", text="ROMEO:\nJuliet sees", pos="3")
    assert shown(at, "predictions") == ("own", 3) and at.text_area(key="predictions_own").value == "ROMEO:\nJuliet sees"
    at = follow(at, "Which parts pushed this guess")
    assert shown(at, "whole_kid") == ("own", 3) and at.text_area(key="whole_own").value == "ROMEO:\nJuliet sees"
    at.radio(key="whole_prompt").set_value(2).run()  # back to a sample: the text leaves the address
    assert "text" not in at.query_params and at.query_params["sample"] == "3"


@pytest.mark.slow
@pytest.mark.parametrize(
    "params, expected, note",
    [
        (dict(sample="9", pos="5"), (2, 5), "there are samples 1 to 3: sample 3 is shown"),
        (dict(sample="0"), (0, 12), "sample 1 is shown"),
        (dict(sample="two", pos="5"), (0, 5), "“two”, which is not a number: sample 1 is shown"),
        (dict(sample="2", pos="999"), (1, 15), "positions 0 to 15: position 15 is shown"),
        (dict(pos="-4"), (0, 0), "position 0 is shown"),
        (dict(pos="1e3"), (0, 12), "“1e3”, which is not a number: position 12 is shown"),
        (dict(pos="3" * 40), (0, 15), "position 15 is shown"),
        (dict(text="ROMEO ~~", pos="2"), (0, 2), "never seen (` ~ `): the first sample is shown"),
        (dict(text=""), (0, 12), "an empty text: the first sample is shown"),
        (dict(text="ROMEO " * 400), ("own", 12), "2,400 characters; the box takes at most 1,000"),
    ],
)
def test_a_bad_address_falls_back_with_a_note(app_env, params, expected, note):
    at = open_at("whole_kid", **params)
    assert not at.exception, at.exception
    assert shown(at, "whole_kid") == expected
    assert any(note in info.value for info in at.info), [info.value for info in at.info]
    # the address now says what is shown: a reload shows the same, without a note
    again = open_at("whole_kid", **at.query_params)
    assert shown(again, "whole_kid") == expected and not [i for i in again.info if "address" in i.value]


@pytest.mark.slow
def test_the_address_follows_the_reader_and_the_back_button(app_env):
    at = open_at("attention")
    assert dict(at.query_params) == {}  # the defaults are left out: opening a page adds no step to the history
    at.slider(key="attention_query").set_value(4).run()
    at.radio(key="attention_prompt").set_value(1).run()
    assert at.query_params == {"pos": "4", "sample": "2"}
    at.slider(key="attention_query").set_value(6).run()
    at.query_params["pos"] = "4"  # Back: the address changes from outside
    at.run()
    assert shown(at, "attention") == (1, 4)
    del at.query_params["pos"]  # Back again, to the default
    at.run()
    assert shown(at, "attention") == (1, 15)  # the default (40) past this text's last position


@pytest.mark.slow
def test_the_attention_link_keeps_the_text(app_env):
    at = open_at("attention", sample="3")
    at = follow(at, "Switch heads off yourself: The whole kid")
    assert not at.exception, at.exception
    assert shown(at, "whole_kid")[0] == 2


@pytest.mark.slow
def test_a_quick_second_move_wins_over_an_address_the_browser_has_not_caught_up_with(app_env):
    """Two quick presses of an arrow key: the second run leaves the browser
    before the first run's ?pos= has reached it, so it carries the older
    address. That address is no news; the slider stays where the reader put it."""
    at = open_at("predictions")
    at.slider(key="predictions_pos").set_value(9).run()
    assert at.query_params["pos"] == "9"
    del at.query_params["pos"]  # the browser still holds the address from before the first move
    at.slider(key="predictions_pos").set_value(8).run()
    assert not at.exception
    assert shown(at, "predictions") == (0, 8) and at.query_params["pos"] == "8"
    at.radio(key="predictions_prompt").set_value(1).run()  # and a quick change of text, the same
    at.query_params["pos"] = "9"
    at.slider(key="predictions_pos").set_value(7).run()
    assert shown(at, "predictions") == (1, 7)
