"""Chapter 5: attention, the heart of the tour. The Head's code beside the
very numbers that flowed through it."""

import inspect

import altair as alt
import pandas as pd
import streamlit as st

from tinyllm.explain import NEAR_TIE, attention_steps, count, glyph, near_ties
from tinyllm.habits import HABITS, habit_sentence
from tinyllm.model import Head
from ui import in_frame
from ui.charts import attention_heatmap, axis_with_chars, small_heatmap
from ui.knockout_panel import cost_words, head_costs_view
from ui.live import choose_text
from ui.loaders import chapter
from ui.text import code
from ui.widgets import draw, index_slider

in_frame()  # drawn inside the frame, or not at all

att = chapter("attention")
knocked = chapter("knockout")  # the loss with each head alone switched off
card = chapter("model_card")
cfg = card["config"]
T, n_layer, n_head, hs = cfg["block_size"], cfg["n_layer"], cfg["n_head"], cfg["n_embd"] // cfg["n_head"]

st.title("Attention")
st.markdown(
    f"""
So far every character has its own vector, blind to its neighbours. **Attention** is how the
characters talk. At every position, each **head** computes three vectors of {hs} numbers from what is
there:
a **query** ("what am I looking for?"), a **key** ("what do I contain?") and a **value** ("what I
pass on if chosen"). Position *i* compares its query with the keys of positions 0 to *i*: the better
a key matches, the more of that position's value flows into *i*. The kid has {count(n_layer, "layer")} of
{count(n_head, "head")}{" each, every one with its own idea of what to look for" if n_layer * n_head > 1 else ""}.

Below is the kid's real `Head` code, and the numbers that went through it.
"""
)

prompt, sample = choose_text(
    "attention", att["prompts"], T, "ROMEO:\nBut soft, what light through yonder window breaks?", address=True
)
text, layers_data = prompt["text"], prompt["layers"]
chars = list(text)
head_code = inspect.getsource(Head)  # read once, not at every slider move


def habit_name(label: dict, name: str) -> str:
    return HABITS[name].format(offset=label["offset"])


def tie_words(label: dict) -> str:
    """A sentence when the head's strongest habit is only one of a near-tie, else nothing."""
    ties = near_ties(label)
    if not ties:
        return ""
    rivals = " and ".join(f"**{habit_name(label, k)}** ({label['scores'][k]:.0%})" for k in ties)
    return (
        f"That is a near-tie: {rivals} explain{'s' if len(ties) == 1 else ''} almost as much (within "
        f"{NEAR_TIE * 100:.0f} percentage points), so no habit clearly wins. "
    )


@st.fragment
def head_explorer():
    c1, c2, c3 = st.columns(3)
    layer = index_slider("Layer", n_layer, "attention_layer", where=c1)
    head = index_slider("Head", n_head, "attention_head", where=c2)
    # A click on the heatmap picks the query position. Every click toggles
    # its cell in the chart's selection, so the selection changes (and the
    # page hears of it) even when the cell clicked is the one clicked before;
    # the cell that came or went since the last run is the one clicked.
    picked = st.session_state.get("attention_heatmap")
    cells = {(c["query"], c["key"]) for c in picked.selection.get("cell", [])} if picked else set()
    clicked = cells ^ st.session_state.get("attention_cells_seen", set())
    st.session_state["attention_cells_seen"] = cells
    if clicked:
        st.session_state["attention_query"] = int(max(clicked)[0])
    i = index_slider(
        "Query position",
        len(chars),
        "attention_query",
        default=40,
        where=c3,
        address="pos",
        help="Or click a row of the heatmap.",
    )
    data = layers_data[layer][head]
    if sample is not None:
        label = att["labels"][layer][head]
        cost = knocked["heads"][layer][head] - knocked["base_loss"]
        st.caption(
            f"Layer {layer}, head {head}: {habit_sentence(label)}; {cost_words(cost)}. {tie_words(label)}"
            "Each share is measured alone: one earlier character can be several habits' at once (the previous "
            "character may also be the last vowel), so the shares overlap and need not add up to 100%."
        )

    # The numbers first: on a phone the columns stack, and the numbers then sit
    # right under the sliders that change them, with the code after them.
    numbers_col, code_col = st.columns([4, 7])
    with code_col:
        st.markdown("**The code that ran** (`tinyllm/model.py`)")
        st.code(head_code, language="python", line_numbers=True, wrap_lines=True)
    with numbers_col:
        steps = attention_steps(data, i)
        st.markdown(
            f"**Position {i}, the character {code(chars[i])}, asks the earlier positions:**\n\n"
            f"1. `q = self.query(x)`: its query, {hs} numbers (first 8: "
            f"{', '.join(f'{v:.2f}' for v in data['q'][i][:8])}, ...)\n"
            f"2. `q @ k.transpose / sqrt({hs})`: the dot product of q with every key, divided by "
            f"√{hs} = {steps['sqrt_head_size']:.2f}\n"
            f"3. `masked_fill(tril == 0, -inf)`: positions after {i} are hidden (the future)\n"
            f"4. `softmax`: scores become weights that sum to 1\n"
            f"5. `weights @ v`: the output is the weighted sum of the values"
        )
        rows = []
        for j in range(len(chars)):
            rows.append(
                {
                    "pos": j,
                    "char": glyph(chars[j]),
                    "q·k": round(steps["dots"][j], 3),
                    # after the mask: a hidden position's score is -inf, not a number to round
                    "score": f"{steps['scaled'][j]:.3f}" if steps["visible"][j] else "−∞",
                    "weight": round(steps["weights"][j], 4),
                }
            )
        df = pd.DataFrame(rows)
        st.dataframe(
            df.iloc[max(0, i - 11) : i + 3].iloc[::-1],
            hide_index=True,
            width="stretch",
            column_config={
                "pos": st.column_config.NumberColumn("pos", width=40),
                "char": st.column_config.TextColumn("char", width=40),
                "q·k": st.column_config.NumberColumn("q·k", width=60),
                "score": st.column_config.TextColumn("score", width=60),
                "weight": st.column_config.ProgressColumn(
                    "weight", min_value=0.0, max_value=1.0, format="%.3f", width=100
                ),
            },
        )
        st.caption(f"Rows near position {i}, newest first (−∞: hidden, the future); the chart shows all of them.")
        top = sorted(range(i + 1), key=lambda j: -steps["weights"][j])[:3]
        drift = max(abs(a - b) for a, b in zip(steps["weights"], data["weights"][i]))
        st.markdown(
            "Most attention goes to "
            + ", ".join(f"{code(chars[j])} at {j} ({steps['weights'][j]:.0%})" for j in top)
            + ". The output, the weighted sum of the values, begins "
            + ", ".join(f"{v:.2f}" for v in steps["out"][:6])
            + f", ... Recomputing steps 2-4 here from the exported q and k gives the weights the Head "
            f"computed to within {drift:.1e} (the exported numbers are rounded)."
        )
        bars = pd.DataFrame(
            {
                "position": list(range(i + 1)),
                "weight": steps["weights"][: i + 1],
                "char": [glyph(c) for c in chars[: i + 1]],
            }
        )
        draw(
            alt.Chart(bars)
            .mark_bar()
            .encode(
                x=alt.X("position:O", axis=axis_with_chars(chars, "attended position")),
                y=alt.Y("weight:Q", scale=alt.Scale(domain=[0, 1])),
                tooltip=[alt.Tooltip("position:O"), alt.Tooltip("char:N"), alt.Tooltip("weight:Q", format=".3f")],
            )
            .properties(height=170),
            width="stretch",
        )

    st.markdown(
        f"### All the weights of layer {layer}, head {head}\n\n"
        f"Row = the position looking (query), column = the position looked at (key). The grey "
        f"upper right is hidden by the mask: nobody sees the future. The outlined row is position {i}, "
        "explained above. **Click a cell** to explain its row."
    )
    draw(
        attention_heatmap(data["weights"], chars, height=520, clickable=True, marked_query=i),
        on_select="rerun",
        key="attention_heatmap",
        width="stretch",
    )
    st.caption(
        f"Outlined: row {i}, {code(chars[i])}; its largest weights go to "
        + ", ".join(f"{code(chars[j])} at {j} ({steps['weights'][j]:.0%})" for j in top)
        + ". Its steps are explained above the chart."
    )


head_explorer()

st.subheader("Every head at once")
st.markdown(
    "Each small square is one head's weights for this text (like the big heatmap). Each label is "
    f"the habit that explains most of the head's attention, measured on {att['label_chars']:,} "
    "characters of validation text: the share of its attention that goes to that habit's "
    "characters (the previous one, one a fixed distance back, earlier copies of its own, what "
    "followed its own character before, the last space or newline, the start of its word, the last "
    "vowel or consonant, the first position, itself). Each share is measured alone, and one character "
    "can be several habits' at once, so the shares of one head overlap. Below "
    f"{att['label_threshold']:.0%} it is only the strongest of weak habits, marked *weak*; a habit "
    f"within {NEAR_TIE:.2f} of the strongest is a *near-tie* with it."
)
for layer in range(n_layer):  # one row of columns per layer; a phone stacks them
    for head, column in enumerate(st.columns(n_head)):
        label = att["labels"][layer][head]
        weak = "" if label["clear"] else ", *weak*"
        ties = near_ties(label)
        tie = f"; near-tie with {' and '.join(habit_name(label, k) for k in ties)}" if ties else ""
        cost = knocked["heads"][layer][head] - knocked["base_loss"]
        # the picture first, then its caption, in one box: the pictures of a row stay aligned
        # whatever the captions' lengths, and on a phone each caption stays with its picture
        box = column.container(border=True)
        # PNG: JPEG (Streamlit's choice for an array) smears the cells' edges and tints the grey
        box.image(small_heatmap(layers_data[layer][head]["weights"]), width="stretch", output_format="PNG")
        box.caption(f"**L{layer} H{head}**: {label['label']} ({label['score']:.2f}{weak}{tie}); off: loss {cost:+.3f}")
sinks = sum(label["habit"] == "start" and label["clear"] for layer in att["labels"] for label in layer)
if sinks:
    st.info(
        f"{sinks} head(s) pour most of their attention onto the first position. This is common "
        "(an *attention sink*): softmax must put its weight somewhere, and a head with nothing "
        "useful to find parks it on a position that is always there."
    )

head_costs_view(knocked, att["labels"], att["label_threshold"])
# the same run and text; not the position, which the fragment above may have moved since this line ran
st.page_link(
    "pages/whole_kid.py",
    label="Switch heads off yourself: The whole kid",
    icon=":material/toggle_off:",
    query_params={k: v for k, v in st.query_params.to_dict().items() if k in ("run", "sample", "text")},
)
st.page_link("pages/write_head.py", label="Now write attention yourself", icon=":material/code:")
