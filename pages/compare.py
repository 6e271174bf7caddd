"""Tool: two runs side by side. What differs in their settings, which learned
better (by how much, from which step), and what each learned: their curves,
samples, heads, and the same prompt written by both."""

import pandas as pd
import streamlit as st

from tinyllm.compare import (
    card_side,
    curve_rows,
    head_rows,
    learning_rows,
    matching_steps,
    plain,
    settings_table,
    verdict,
)
from tinyllm.explain import count
from tinyllm.habits import LABEL_THRESHOLD
from tinyllm.runfolder import list_runs
from tinyllm.sample import SampleSettings
from ui import in_frame
from ui.charts import class_curves, compared_losses
from ui.loaders import compared_model, compared_run, kid_dir, written
from ui.text import code_block, escaped
from ui.widgets import draw

in_frame()  # drawn inside the frame, or not at all

st.title("Compare two runs")
st.markdown(
    "Pick two runs: the kid, one of its siblings (each differs from the kid in one setting), or a run you "
    "trained. Everything below is read from the two runs' own files: change one setting, and see what it did."
)

runs = [run for run in list_runs(kid_dir()) if run.exported or run.state or run.checkpoint or run.problem]
names = [run.name for run in runs]
by_name = {run.name: run for run in runs}
if len(names) < 2:
    st.info(
        "There is only the kid to look at: train a run of your own in the sidebar "
        "(**Train a sibling of this run** gives the form the kid's settings), then compare the two here.",
        icon=":material/compare_arrows:",
    )
    st.stop()

# the kid against its first sibling, unless the reader picked others (a run that has gone is forgotten)
siblings = [run.name for run in runs if run.kind == "sibling"]
defaults = ("kid", (siblings or [n for n in names if n != "kid"])[0])
for key, param, default in zip(("compare_a", "compare_b"), "ab", defaults):
    if key not in st.session_state and st.query_params.get(param) in by_name:  # a link (?b=one-block), untrusted
        st.session_state[key] = st.query_params[param]
    if st.session_state.get(key) not in by_name:
        st.session_state[key] = default
pick_a, pick_b = st.columns(2)
name_a = pick_a.selectbox("First run", names, key="compare_a")
name_b = pick_b.selectbox("Second run", names, key="compare_b")
st.query_params.update(a=name_a, b=name_b)  # the address keeps the pair: a reload or a link shows it again
if name_a == name_b:
    st.info("Pick two different runs.", icon=":material/compare_arrows:")
    st.stop()


def called(name: str) -> str:
    """How the sentences name a run: the kid, or its name in quotes."""
    return "the kid" if name == "kid" else f"'{name}'"


a, b = compared_run(by_name[name_a]), compared_run(by_name[name_b])
for side in (a, b):
    if side["problem"]:
        st.warning(f"**{escaped(called(side['name']))}**: {escaped(side['problem'])}", icon=":material/info:")
if not a["rows"] and not b["rows"] and not (a["card"] and b["card"]):
    st.stop()

# --- which is better, and what differs ----------------------------------------
st.subheader("Which learned better")
side_a = card_side(called(name_a), a["card"], a["rows"])
side_b = card_side(called(name_b), b["card"], b["rows"])
st.success(escaped(verdict(side_a, side_b)), icon=":material/trophy:")

if a["card"] and b["card"]:
    table = settings_table(a["card"], b["card"])
    differ = [d for d in table if d.a != d.b]
    if differ:
        st.markdown(
            f"**{count(len(differ), 'setting')} {'differs' if len(differ) == 1 else 'differ'}**: "
            + "; ".join(f"{escaped(d.label)}: {escaped(plain(d.a))} → **{escaped(plain(d.b))}**" for d in differ)
            + f" ({escaped(called(name_b))} against {escaped(called(name_a))})."
        )
    else:
        st.markdown("**Their settings are the same**: any difference comes from chance (the seed) or the machine.")
    frame = pd.DataFrame(
        [{"setting": d.label, name_a: plain(d.a), name_b: plain(d.b), "differs": d.a != d.b} for d in table]
    )
    with st.expander("Every setting, the differing ones highlighted"):
        st.dataframe(
            frame.style.apply(lambda row: ["background-color: #fde2c8" if row["differs"] else "" for _ in row], axis=1),
            hide_index=True,
            width="stretch",
            height=35 * (len(frame) + 1) + 3,
        )
else:
    st.caption("Their settings can only be compared when both runs have a model card (both finished and exported).")

# --- the validation loss of both --------------------------------------------------
st.subheader("Validation loss, side by side")
time_axis = st.toggle("Time instead of steps", key="compare_time", help="Minutes of training on its own machine.")
rows = curve_rows(name_a, a["rows"]) + curve_rows(name_b, b["rows"])
if time_axis:
    rows = [r for r in rows if r["minutes"] is not None]
if rows:
    x_field, x_title = ("minutes", "minutes of training") if time_axis else ("step", "training step")
    draw(compared_losses(rows, (name_a, name_b), x_field, x_title), width="stretch")
    st.caption(
        "The validation loss measured during training, at every evaluation (a few batches each time: the "
        "sentence above uses the exact loss of each kept checkpoint). On the time axis, each run on the machine "
        "that trained it."
    )

# --- how each class of character was learned ----------------------------------------
st.subheader("What each learned first")
learned = {side["name"]: learning_rows(side["learning"]) for side in (a, b)}
have = [name for name, got in learned.items() if got]
if not have:
    st.info(
        "Neither run holds its learning record (learning.json: the loss on one validation passage, character "
        "by character, at every snapshot), so which kinds of characters each learned first cannot be shown here.",
        icon=":material/info:",
    )
else:
    every = [r for name in have for r in learned[name]]
    classes = sorted({r["class"] for r in every})
    domain = (min(r["loss"] for r in every), max(r["loss"] for r in every))
    st.markdown(
        "The mean loss on each class of character in one validation passage, at every snapshot: the lower a "
        "line, the better that run guesses that kind of character. The same colours and scale on both sides."
    )
    for column, side in zip(st.columns(2), (a, b)):
        column.markdown(f"**{escaped(called(side['name']))}**")
        if learned[side["name"]]:
            draw(class_curves(learned[side["name"]], classes, domain), column, width="stretch")
        else:
            column.caption("This run holds no learning record (learning.json): its curves cannot be drawn.")

# --- samples at the same steps ---------------------------------------------------------
st.subheader("What they wrote at the same step")
steps = matching_steps(a["samples"], b["samples"])
if len(steps) > 1:
    step = st.select_slider("Training step", steps, value=steps[-1], key="compare_step", format_func=lambda s: f"{s:,}")
    st.caption("The sample each logged at that step, starting from a newline, seed 0.")
elif steps:
    step = steps[0]
    st.caption(f"The sample each logged at step {step:,}, the only step both logged one at: from a newline, seed 0.")
if steps:
    for column, side in zip(st.columns(2), (a, b)):
        column.markdown(f"**{escaped(called(side['name']))}**")
        with column:
            code_block(next(s["text"] for s in side["samples"] if s["step"] == step and isinstance(s["text"], str)))
else:
    st.caption("The two runs logged no sample at the same step.")

# --- the heads ----------------------------------------------------------------------
st.subheader("Their heads")
st.markdown(
    "Each head's habit (where it looks most, measured on validation text) and what knocking it out costs: how "
    "much the loss rises when that head alone is switched off. A head that costs much is one the run relies on. "
    "L0 H1: layer 0, head 1 (counted from 0, as on every page). "
    f"*(weak)*: its habit holds less than {LABEL_THRESHOLD:.0%} of its attention."
)
for column, side in zip(st.columns(2), (a, b)):
    column.markdown(f"**{escaped(called(side['name']))}**")
    heads = head_rows(side["attention"], side["knockout"])
    if not heads:
        column.caption("This run has no exported heads to show.")
        continue
    # the cost before the habit, and layer and head in one column: on a phone the numbers stay in view
    frame = pd.DataFrame(
        {
            "head": [f"L{h['layer']} H{h['head']}" for h in heads],
            "cost": [h["cost"] for h in heads],
            "habit": [(h["habit"] or "none") + ("" if h["clear"] else " (weak)") for h in heads],
        }
    )
    column.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        height=35 * (len(heads) + 1) + 3,
        column_config={
            "head": st.column_config.TextColumn("head", width=60),
            "cost": st.column_config.NumberColumn("knock-out", format="%+.3f", width=90),
            "habit": st.column_config.TextColumn("habit"),
        },
    )
    costed = [h for h in heads if h["cost"] is not None]
    if costed:
        top = max(costed, key=lambda h: h["cost"])
        column.caption(
            f"It relies most on layer {top['layer']} head {top['head']} (habit: {escaped(top['habit'] or 'none')}): "
            f"the loss rises {top['cost']:+.3f} without it."
        )

# --- both write ---------------------------------------------------------------------------
st.subheader("The same prompt, both writing")
prompt = st.text_input("Prompt", "ROMEO:", key="compare_prompt", max_chars=200)
c1, c2, c3 = st.columns(3)
length = c1.slider("Length", 20, 400, 200, step=20, key="compare_length")
temperature = c2.slider("Temperature", 0.1, 2.0, 0.8, step=0.05, key="compare_temperature")
seed = c3.number_input("Seed", 0, 2**31 - 1, 0, key="compare_seed")
settings = SampleSettings(length=length, temperature=temperature, seed=int(seed))
if not (a["card"] and b["card"]):
    st.caption("Both runs need a kept checkpoint to write.")
else:
    for column, side in zip(st.columns(2), (a, b)):
        column.markdown(f"**{escaped(called(side['name']))}**")
        loaded = compared_model(side["path"])
        if loaded is None:
            column.caption("Its checkpoint cannot be loaded: it cannot write.")
            continue
        unknown = loaded[1].unknown(prompt)
        text = "".join(c for c in prompt if c not in unknown)
        if unknown:
            column.caption(f"It has never seen {count(len(unknown), 'character')} of the prompt: they are left out.")
        with column:
            code_block(text + written(side["path"], text, settings))
    st.caption("The same prompt, seed and knobs for both: only the runs differ.")
