"""In a real browser: the link from Predictions lands The whole kid on the
same sample and position, and Back returns to the guess (tests/test_address.py
checks the same in AppTest, and every bad value)."""

import pytest
from test_browser import SHOTS, Server, browser_page, no_exception, pytestmark, settle  # noqa: F401


@pytest.fixture(scope="module")
def app(tiny_run, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser_address")
    running = Server(tmp, PEEK_KID_DIR=str(tiny_run), PEEK_RUNS_DIR=str(tmp / "runs"))
    yield running.base
    running.stop()


def shown(page, prefix, slider_key):
    """(the address after the host, the chosen text's label, the position) on screen."""
    chosen = page.locator(f".st-key-{prefix}_prompt input:checked").evaluate("e => e.closest('label').innerText")
    position = page.locator(f".st-key-{slider_key} [data-testid='stSliderThumbValue']").inner_text()
    return page.url.split("/", 3)[3], chosen.split(":")[0], int(position)


def test_the_link_from_predictions_lands_on_the_same_guess(app):
    with browser_page(1400, 2200) as page:
        page.goto(f"{app}/predictions?sample=2&pos=7")
        settle(page)
        assert shown(page, "predictions", "predictions_pos") == ("predictions?sample=2&pos=7", "Sample 2", 7)
        page.get_by_role("slider", name="Position").focus()
        page.keyboard.press("ArrowRight")
        settle(page)
        assert shown(page, "predictions", "predictions_pos") == ("predictions?sample=2&pos=8", "Sample 2", 8)
        page.get_by_role("link", name="Which parts pushed this guess").click()
        settle(page)
        no_exception(page)
        assert shown(page, "whole", "whole_pos") == ("whole_kid?sample=2&pos=8", "Sample 2", 8)
        page.screenshot(path=SHOTS / "address_whole_kid.png", full_page=True)
        page.go_back()
        settle(page)
        assert shown(page, "predictions", "predictions_pos") == ("predictions?sample=2&pos=8", "Sample 2", 8)
        page.go_back()  # the step before the slider moved
        settle(page)
        assert shown(page, "predictions", "predictions_pos") == ("predictions?sample=2&pos=7", "Sample 2", 7)
        no_exception(page)
