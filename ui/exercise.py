"""The exercise page's Streamlit side: who may run code, and the check's report drawn."""

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
from ui.charts import labelled_axis


def code_policy() -> tuple:
    """(allowed, reason) for every visitor alike. Never from the connection
    (its address, its headers): behind a proxy on the server's own machine
    (nginx, ssh -L, kubectl port-forward) a stranger arrives over loopback,
    with whatever headers the proxy adds or leaves out."""
    setting = visitor_code_setting()
    missing = jail_missing() if setting != "off" else []
    allowed, reason = visitor_code_allowed(setting, missing, listens_locally(st.get_option("server.address")))
    return allowed, setting_problem() or reason


def draw_steps(report: dict):
    """One line per step, marked; the details wrap rather than being cut off."""
    marks = {
        "ok": ":green[:material/check_circle:]",
        "differs": ":red[:material/cancel:]",
        "not seen": ":gray[:material/remove_circle_outline:]",
    }
    st.markdown("\n".join(f"- {marks[s['status']]} **{s['name']}**: {s['detail']}" for s in report["steps"]))


def compare_chart(compare: dict):
    """The learner's numbers beside the kid's, one pair of bars per position."""
    n = len(compare["kid"])
    df = pd.DataFrame(
        {
            "position": list(range(n)) * 2,
            "value": compare["yours"] + compare["kid"],
            "whose": ["yours"] * n + ["the kid's"] * n,
            "char": compare["chars"] * 2,
        }
    )
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("position:O", axis=labelled_axis(compare["chars"], "position (its character)", labelAngle=0)),
            xOffset=alt.XOffset("whose:N", sort=["yours", "the kid's"]),
            y=alt.Y("value:Q", title=None),
            color=alt.Color(
                "whose:N",
                sort=["yours", "the kid's"],
                scale=alt.Scale(range=["#d1495b", "#1f4e79"]),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["position", "char", "whose", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(height=220)
    )


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
        title = f"**{report['title']}.** " if report.get("title") else ""
        st.error(
            f"**First difference: {report['first_failure']}.** {title}{report['diagnosis']}", icon=":material/error:"
        )
        problem = report.get("problem")
        if problem and problem.get("where"):
            st.markdown("Where, in your code:")
            st.code(problem["where"], language=None, wrap_lines=True)
    draw_steps(report)
    compare = report.get("compare")
    if compare and not report["ok"]:
        st.markdown(f"**{compare['title']}**")
        st.altair_chart(compare_chart(compare), width="stretch")
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
    st.caption(
        f"Checked {where} in {report.get('wall_s', report['seconds']):.1f} s "
        f"(the comparison itself: {report['seconds']:.2f} s; the rest is starting Python and PyTorch)."
    )
