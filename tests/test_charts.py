"""Charts that a slider redraws in place: their description must not change
when only their numbers do (the browser then swaps rows instead of building
the chart again), and must change when their shape does."""

import base64
import io
import json
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image

from ui.charts import attention_heatmap, attention_picture, small_heatmap
from ui.widgets import named_tables


def bars(values):
    frame = pd.DataFrame({"position": range(len(values)), "weight": values})
    line = alt.Chart(pd.DataFrame({"y": [0.5]})).mark_rule().encode(y=alt.Y("y:Q"))
    return alt.Chart(frame).mark_bar().encode(x=alt.X("position:O"), y=alt.Y("weight:Q")) + line


def cell_labels(spec, query, key) -> dict:
    """What the browser shows on hover over cell (query, key), by table: each
    layer's label expression worked out for that cell. Python reads these
    expressions as the browser does: a list indexed by a number, strings
    joined with +."""
    spec = json.loads(spec)
    positions = next(p["value"] for p in spec["params"] if p["name"] == "positions")
    labels = {}
    for layer in spec["layer"]:
        for step in layer.get("transform", []):
            if step.get("as") == "cell":
                expression = step["calculate"].replace("datum.query", str(query)).replace("datum.key", str(key))
                labels[layer["data"]["name"]] = eval(expression, {"positions": positions})
    return labels


def test_new_numbers_keep_the_description_and_travel_as_rows():
    spec_a, tables_a = named_tables(bars([0.1, 0.9]))
    spec_b, tables_b = named_tables(bars([0.7, 0.2, 0.1]))
    assert json.dumps(spec_a, sort_keys=True) == json.dumps(spec_b, sort_keys=True)
    assert sorted(tables_a) == sorted(tables_b) == ["table_0", "table_1"]
    assert "values" not in json.dumps(spec_a)  # no rows inside the description
    assert tables_b["table_0"]["weight"].tolist() == [0.7, 0.2, 0.1]


def test_a_new_shape_is_a_new_description():
    spec_a, _ = named_tables(bars([0.1, 0.9]))
    spec_b, _ = named_tables(bars([0.1, 0.9]).properties(height=99))
    assert spec_a != spec_b


def test_the_heatmap_keeps_its_description_across_heads_and_queries():
    chars = list("To be, or")
    rng = np.random.default_rng(0)
    one = attention_heatmap(np.tril(rng.random((9, 9))), chars, clickable=True, marked_query=3)
    other = attention_heatmap(np.tril(rng.random((9, 9))), chars, clickable=True, marked_query=7)
    assert one.spec == other.spec
    assert one.tables["marked"]["query"].tolist() == [3]
    assert other.tables["marked"]["query"].tolist() == [7]
    seen, future = other.tables["cells"], other.tables["future"]
    assert len(seen) + len(future) == 81
    assert (seen["key"] <= seen["query"]).all() and (future["key"] > future["query"]).all()
    # the grey future does not change with the weights: the browser keeps it
    assert one.tables["future"].equals(future)
    # the rows carry numbers; the browser names the cells
    assert cell_labels(other.spec, query=3, key=1) == {"cells": "3 b ← 1 o", "future": "3 b ← 1 o (hidden: the future)"}
    # another text: other labels on the axes, another description
    assert attention_heatmap(np.eye(9), list("Not to be"), clickable=True, marked_query=3).spec != one.spec


def test_the_thumbnail_is_the_weights_coloured_with_the_future_grey():
    weights = np.tril(np.full((8, 8), 0.5))
    weights[3, 0], weights[5, 5] = 0.0, 1.0
    picture = small_heatmap(weights, size=40)
    assert picture.shape == (40, 40, 3) and picture.dtype == np.uint8
    cell = picture[::5, ::5]  # one pixel per cell
    grey = np.array([0xD4, 0xD4, 0xD4])
    hidden = np.triu(np.ones((8, 8), dtype=bool), k=1)
    assert (cell[hidden] == grey).all() and not (cell[~hidden] == grey).all(axis=1).any()
    assert cell[3, 0].tolist() == [0xCF, 0xE1, 0xF2]  # weight 0: the lightest blue
    assert cell[5, 5].tolist() == [0x0A, 0x4A, 0x90]  # weight 1: the darkest
    assert cell[4, 2].sum() < cell[3, 0].sum() and cell[4, 2].sum() > cell[5, 5].sum()  # 0.5 between


def test_the_training_heatmap_is_one_picture_under_the_same_axes_and_labels():
    chars = list("To be, or")
    rng = np.random.default_rng(1)
    weights = np.tril(rng.random((9, 9)))
    one, other = attention_picture(weights, chars), attention_picture(np.eye(9), chars)
    assert one.spec == other.spec  # a new step sends new rows only
    assert one.tables["cells"].equals(other.tables["cells"]) and one.tables["future"].equals(other.tables["future"])
    assert list(one.tables["cells"].columns) == ["query", "key"]  # positions only: the same at every step
    # the picture: a pixel per cell, coloured like the thumbnails
    url = one.tables["picture"]["url"].item()
    assert url.startswith("data:image/png;base64,")
    pixels = np.array(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))
    assert pixels.tolist() == small_heatmap(weights, size=9).tolist()
    assert cell_labels(one.spec, query=3, key=1) == {"cells": "3 b ← 1 o", "future": "3 b ← 1 o (hidden: the future)"}
    assert json.loads(one.spec)["usermeta"]["embedOptions"]["renderer"] == "canvas"


def test_every_chart_is_shown_one_way():
    """Pages and helpers show charts through ui.widgets.draw only (ui/__init__.py says why)."""
    root = Path(__file__).resolve().parent.parent
    shown_otherwise = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("pages", "ui")
        for path in sorted((root / folder).glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "altair_chart(" in line and not line.lstrip().startswith("#") and "st.altair_chart drops" not in line
    ]
    assert not shown_otherwise
