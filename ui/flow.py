"""Pictures for "The whole kid": the forward pass as a diagram, a vector as a
strip of coloured cells, the pushes behind a logit, a neuron's contexts."""

import html
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from tinyllm.explain import glyph
from tinyllm.flow import full_flow
from ui.charts import DIVERGING, FIT_WIDTH
from ui.data import current_run, model, mtime_ns

SELECTED = "#1f4e79"
PLAIN = "#f1efe6"


@st.cache_data(max_entries=32, show_spinner=False)
def _flow(run_dir: str, mtime: int, text: str) -> dict:
    kid, vocab, _ = model(Path(run_dir))
    return full_flow(kid, vocab, text)


def flow_of(text: str) -> dict:
    """The selected run's full trace of `text`, computed once per run and text."""
    run_dir = current_run()
    return _flow(str(run_dir), mtime_ns(run_dir / "model.pt"), text)


def node(name, label, selected=False, shape="box"):
    style = f'style="filled,rounded", fillcolor="{SELECTED if selected else PLAIN}"'
    font = 'fontcolor="white"' if selected else 'fontcolor="#1d1d1f"'
    return f'"{name}" [label="{label}", shape={shape}, {style}, {font}];'


def forward_diagram(cfg: dict, selected: dict | None = None, compact=False) -> str:
    """Graphviz DOT of the forward pass, drawn from the run's own config. The
    selected stage's block is opened up (the heads side by side, the
    feed-forward layer's widths); the other blocks stay one box each."""
    C, n_head, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    key = (selected or {}).get("key")
    open_block = None if compact or selected is None else selected["block"]
    lines = ['digraph { rankdir=TB; nodesep=0.15; ranksep=0.22; bgcolor="transparent";',
             'node [fontname="sans-serif", fontsize=11, height=0.3, margin="0.08,0.04"];',
             'edge [color="#888888", arrowsize=0.6];',
             node("chars", f"up to {cfg['block_size']} characters", shape="plaintext"),
             node("embedding", f"token + position embedding ({C} numbers)", key == "embedding")]
    previous = "embedding"
    lines.append('"chars" -> "embedding";')
    for b in range(L):
        if b != open_block:
            lines.append(node(f"b{b}", f"block {b}: attention ({n_head} heads) + feed-forward"))
            lines.append(f'"{previous}" -> "b{b}";')
            previous = f"b{b}"
            continue
        lines.append(f'subgraph cluster_{b} {{ label="block {b}"; fontsize=11; style="rounded"; color="#aaaaaa";')
        lines.append(node(f"b{b}ln1", "LayerNorm 1", key == "ln1"))
        heads = " ".join(f"<td>h{h}</td>" for h in range(n_head))
        fill = SELECTED if key == "heads" else PLAIN
        colour = "white" if key == "heads" else "#1d1d1f"
        lines.append(f'"b{b}heads" [shape=plaintext, fontcolor="{colour}", label=<<table border="0" cellborder="1" '
                     f'cellspacing="2" bgcolor="{fill}"><tr>{heads}</tr></table>>];')
        lines.append(node(f"b{b}attn", f"concat, projection: {C} numbers", key == "attn"))
        lines.append(node(f"b{b}add1", "+", shape="circle"))
        lines.append(node(f"b{b}ln2", "LayerNorm 2", key == "ln2"))
        lines.append(node(f"b{b}hidden", f"{C} → {4 * C}, ReLU (the neurons)", key == "hidden"))
        lines.append(node(f"b{b}ffwd", f"{4 * C} → {C}", key == "ffwd"))
        lines.append(node(f"b{b}add2", "+", shape="circle"))
        lines.append("}")
        chain = ["ln1", "heads", "attn", "add1"]
        lines.append(f'"{previous}" -> "b{b}ln1"; "{previous}" -> "b{b}add1" [style=dashed, label=" stream"];')
        lines += [f'"b{b}{a}" -> "b{b}{c}";' for a, c in zip(chain, chain[1:])]
        chain = ["add1", "ln2", "hidden", "ffwd", "add2"]
        lines += [f'"b{b}{a}" -> "b{b}{c}";' for a, c in zip(chain, chain[1:])]
        lines.append(f'"b{b}add1" -> "b{b}add2" [style=dashed];')
        previous = f"b{b}add2"
    vocab = cfg["vocab_size"]
    lines += [node("ln_f", "final LayerNorm", key == "ln_f"), node("logits", f"head: {vocab} logits", key == "logits"),
              node("probs", "softmax → the next character", key == "probs"),
              f'"{previous}" -> "ln_f"; "ln_f" -> "logits"; "logits" -> "probs";', "}"]
    return "\n".join(lines)


def vector_strip(vector, height=28):
    """A vector as one row of cells, coloured by value (red negative, blue
    positive)."""
    values = np.asarray(vector, dtype=np.float32)
    limit = float(np.abs(values).max()) or 1.0
    df = pd.DataFrame({"dimension": np.arange(len(values)), "value": values})
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("dimension:O", axis=alt.Axis(values=list(range(0, len(values), 16)), labelAngle=0,
                                             title="dimension")),
        color=alt.Color("value:Q", scale=alt.Scale(scheme=DIVERGING, domain=[-limit, limit], reverse=True),
                        legend=alt.Legend(orient="bottom", title=None, gradientLength=160, offset=4)),
        tooltip=["dimension", alt.Tooltip("value:Q", format=".3f")],
    ).properties(height=height, autosize=FIT_WIDTH)


def pushes_chart(pushes: list):
    """Direct logit attribution: one bar per part, biggest pushes first."""
    df = pd.DataFrame(pushes, columns=["part", "push"])
    df["direction"] = np.where(df["push"] >= 0, "for", "against")
    order = df.reindex(df["push"].abs().sort_values(ascending=False).index)["part"].tolist()
    return alt.Chart(df).mark_bar().encode(
        y=alt.Y("part:N", sort=order, title=None, axis=alt.Axis(labelOverlap=False, labelLimit=220)),
        x=alt.X("push:Q", title="push on the logit"),
        color=alt.Color("direction:N", scale=alt.Scale(domain=["for", "against"], range=["#1f4e79", "#d1495b"]),
                        legend=alt.Legend(orient="top", title=None)),
        tooltip=["part", alt.Tooltip("push:Q", format=".3f")],
    ).properties(height=16 * len(df), autosize=FIT_WIDTH)


def top_bars(values, labels, x_title, top=12):
    """The `top` largest values as bars, largest first, each with its label
    (a neuron's number, a character)."""
    values = np.asarray(values)
    order = np.argsort(-values)[:top]
    df = pd.DataFrame({"which": [labels[i] for i in order], "value": values[order]})
    return alt.Chart(df).mark_bar(color=SELECTED).encode(
        y=alt.Y("which:N", sort=None, title=None, axis=alt.Axis(labelOverlap=False, labelFontSize=13)),
        x=alt.X("value:Q", title=x_title),
        tooltip=[alt.Tooltip("which:N", title="which"), alt.Tooltip("value:Q", format=".3f")],
    ).properties(height=20 * len(df), autosize=FIT_WIDTH)


def context_html(text: str, offset: int, window: int, before: int = 24) -> str:
    """The characters a neuron read before firing, the firing character marked;
    the line starts where the kid's window started (it saw nothing earlier)."""
    start = max(offset - offset % window, offset - before)
    seen = "".join(html.escape(glyph(c) if c == "\n" else c) for c in text[start:offset])
    fired = html.escape(glyph(text[offset]))
    return (f'<span style="color:#666">{seen}</span><span style="background:{SELECTED};color:white;'
            f'padding:0 3px;border-radius:3px">{fired}</span>')
