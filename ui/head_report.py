"""The exercise page's Streamlit side: who may run code, and the check's report drawn."""

import re

import altair as alt
import pandas as pd
import streamlit as st

from tinyllm.sandbox import (
    jail_missing,
    listens_locally,
    setting_problem,
    visitor_code_allowed,
    visitor_code_setting,
)
from ui.widgets import draw


def code_policy() -> tuple:
    """(allowed, reason) for every visitor alike. Never from the connection
    (its address, its headers): behind a proxy on the server's own machine
    (nginx, ssh -L, kubectl port-forward) a stranger arrives over loopback,
    with whatever headers the proxy adds or leaves out."""
    setting = visitor_code_setting()
    missing = jail_missing() if setting != "off" else []
    allowed, reason = visitor_code_allowed(setting, missing, listens_locally(st.get_option("server.address")))
    return allowed, setting_problem() or reason


def plain(text: str) -> str:
    """Text for st.markdown shown as itself, on one line: the reports quote
    the visitor's error messages and the corpus's characters, so the marks
    that start emphasis, code, links, HTML, math or a colour directive are
    escaped, and a bare address is not linked."""
    text = " ".join(text.split()).replace("://", ":\u200b//")
    text = re.sub(r"([\\`*_\[\]<>$~|#{}])", r"\\\1", text)
    return re.sub(r":(?=[\w/+-]+(:|\\\[))", r"\\:", text)  # :red[...], :material/icon:, :smile:


def draw_steps(report: dict):
    """One line per step, marked; the details wrap rather than being cut off."""
    marks = {
        "ok": ":green[:material/check_circle:]",
        "differs": ":red[:material/cancel:]",
        "not seen": ":gray[:material/remove_circle_outline:]",
    }
    st.markdown("\n".join(f"- {marks[s['status']]} **{s['name']}**: {plain(s['detail'])}" for s in report["steps"]))


def compare_chart(compare: dict):
    """The learner's numbers beside the kid's: one row per position, a bar
    for each, its number printed beside it (a phone has no hover), and the
    positions after the row, the future, shaded and named."""
    n = len(compare["kid"])
    labels = [f"{i} {c}" for i, c in enumerate(compare["chars"])]
    whose = ["yours", "the kid's"]
    df = pd.DataFrame(
        {
            "position": labels * 2,
            "value": compare["yours"] + compare["kid"],
            "whose": [whose[0]] * n + [whose[1]] * n,
        }
    )
    df["shown"] = ["NaN" if v is None or v != v else f"{v:.3f}" for v in df["value"]]
    df["value"] = df["value"].fillna(0.0)
    y = alt.Y("position:N", sort=labels, title="position (its character)", axis=alt.Axis(labelFontSize=11))
    base = alt.Chart(df).encode(y=y, yOffset=alt.YOffset("whose:N", sort=whose))
    bars = base.mark_bar().encode(
        x=alt.X("value:Q", title=None),
        color=alt.Color(
            "whose:N",
            sort=whose,
            scale=alt.Scale(range=["#d1495b", "#1f4e79"]),
            legend=alt.Legend(orient="top", title=None),
        ),
        tooltip=["position:N", "whose:N", alt.Tooltip("shown:N", title="value")],
    )
    numbers = base.mark_text(align="left", dx=3, fontSize=11).encode(
        x=alt.X("value:Q"), text="shown:N", color=alt.Color("whose:N", sort=whose, legend=None)
    )
    layers = [bars, numbers]
    future = compare.get("future")
    if future is not None:
        shade = pd.DataFrame({"position": labels[future:], "what": ["the future"] + [""] * (n - future - 1)})
        layers.insert(
            0,
            alt.Chart(shade)
            .mark_rect(color="#eeeeee")
            .encode(y=alt.Y("position:N", sort=labels), x=alt.value(0), x2=alt.value("width")),
        )
        layers.append(
            alt.Chart(shade)
            .mark_text(align="right", baseline="top", dx=-4, dy=-6, fontStyle="italic", color="#666666")
            .encode(y=alt.Y("position:N", sort=labels), x=alt.value("width"), text="what:N")
        )
    return alt.layer(*layers).properties(height=34 * n)


def draw_report(report: dict):
    if report["ok"]:
        loss = report["loss"]
        st.success(
            f"**You wrote attention.** Every step matches the kid's own Head to within 0.00001. "
            f"With your Head in all of the kid's heads, its loss on {loss['characters']} validation "
            f"characters is **{loss['yours']:.4f}**; with its own, {loss['kid']:.4f}.",
            icon=":material/celebration:",
        )
    else:
        title = f"**{plain(report['title'])}.** " if report.get("title") else ""
        st.error(
            f"**First difference: {report['first_failure']}.** {title}{plain(report['diagnosis'])}",
            icon=":material/error:",
        )
        problem = report.get("problem")
        if problem and problem.get("where"):
            st.markdown("Where, in your code:")
            st.code(problem["where"], language=None, wrap_lines=True)
    if report.get("note"):
        st.info(plain(report["note"]), icon=":material/info:")
    draw_steps(report)
    compare = report.get("compare")
    if compare and not report["ok"]:
        st.markdown(f"**{plain(compare['title'])}**")
        if compare.get("future") is not None:
            st.caption(f"Shaded: positions {compare['future']} and after, the future, which the kid gives weight 0.")
        draw(compare_chart(compare), width="stretch")
    if report.get("loss") and not report["ok"]:
        loss = report["loss"]
        st.caption(
            f"With your Head in all its heads the kid's loss on {loss['characters']} validation characters "
            f"would be {loss['yours']:.4f}; with its own, {loss['kid']:.4f}."
        )
    if report.get("printed"):
        with st.expander("What your code printed"):
            st.code(report["printed"][-4000:], language=None)
    where = "in a jail" if report.get("jail", {}).get("how") == "jail" else "in a separate process"
    wall = report.get("wall_s", report["seconds"])
    if report["seconds"]:
        st.caption(f"Checked {where} in {wall:.1f} s, of which the check itself: {report['seconds']:.2f} s.")
    else:  # stopped, or it ended before the comparison could time itself
        st.caption(f"The check ran {where} for {wall:.1f} s.")
