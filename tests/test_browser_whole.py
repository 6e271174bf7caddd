"""The whole kid in a real browser: the overview picks a stage with a click,
the stage shows before / change / after, a heads stage shows where each head
looked, and the contrast opens into its parts; at a desktop's width and a
phone's. (The shared server, browser and helpers are tests/test_browser.py's.)"""

from test_browser import SHOTS, no_exception, page, pytestmark, runs_root, server, settle  # noqa: F401

ROW = 17  # the overview's pixels per stage (ui.flow_charts.stream_overview_spec)
# where the overview's plot starts inside its SVG: Vega translates the plot's group by the room its axis and legend take
PLOT_CORNER = """(svg) => {
  const m = svg.querySelector("g[transform]").transform.baseVal[0].matrix;
  return [m.e, m.f];
}"""


def test_whole_kid_overview_stages_and_contrast(server, page):  # noqa: F811
    from playwright.sync_api import expect  # here: test_browser skips the module when it is missing

    for width in (1400, 390):
        page.set_viewport_size({"width": width, "height": 3000 if width > 800 else 7000})
        page.goto(f"{server}/whole_kid")
        settle(page)
        stage = page.get_by_role("slider", name="Stage")
        assert stage.get_attribute("aria-valuetext") == "token + position embedding"  # the start
        expect(page.get_by_text("is where the stream starts").first).to_be_visible()
        # a click on a row of the overview selects that row's stage: the fourth row, block 0's attention
        chart = page.locator(".st-key-whole_overview [data-testid='stVegaLiteChart'] svg").first
        chart.wait_for()
        box = chart.bounding_box()
        left, top = chart.evaluate(PLOT_CORNER)
        page.mouse.click(box["x"] + left + 40, box["y"] + top + ROW * 3.5)
        expect(stage).to_have_attribute(
            "aria-valuetext", "block 0: attention adds (concat, projection)", timeout=30_000
        )
        settle(page)
        expect(page.get_by_text("a vector of length").first).to_be_visible()
        # the slider still steps: to block 0's heads
        for _ in range(40):
            now = int(stage.get_attribute("value"))
            if now == 2:
                break
            stage.focus()
            page.keyboard.press("ArrowLeft" if now > 2 else "ArrowRight")
            settle(page)
        assert stage.get_attribute("aria-valuetext") == "block 0: the heads, side by side"
        expect(page.get_by_text("Where each head looked").first).to_be_visible()
        expect(page.get_by_text("habit:").first).to_be_visible()
        page.get_by_text("Open each group into its parts").click()
        settle(page)
        expect(page.get_by_text("The pushes sum to").first).to_be_visible()
        no_exception(page)
        page.screenshot(path=SHOTS / f"whole_kid_stages_{width}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.set_viewport_size({"width": 1400, "height": 2200})
