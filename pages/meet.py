"""Chapter 1: who the kid is, on one screen."""

import streamlit as st

from tinyllm.compare import sibling_line
from tinyllm.data import TINYSHAKESPEARE_MD5
from tinyllm.explain import count, duration, perplexity
from ui import in_frame
from ui.charts import loss_curves
from ui.flow_charts import forward_diagram
from ui.loaders import chapter, kid_and_siblings
from ui.text import code_block, escaped
from ui.train_form import kept_note
from ui.widgets import draw

in_frame()  # drawn inside the frame, or not at all

card = chapter("model_card")
training = chapter("training")
cfg = card["config"]
loss = card["exact_val_loss"] or card["val_loss"]
uniform = card["uniform_loss"]

st.title("Meet the kid")
st.markdown(
    f"""
The kid is a tiny language model: a **GPT** with **{card["total_params"]:,} numbers** inside
(its *parameters*). It read **{escaped(card["corpus"]["name"])}**, {card["corpus"]["chars"]:,} characters of text,
one character at a time, for **{card["steps"]:,} training steps** ({duration(card["training_minutes"])}
on a {escaped(str(card["device"]).upper())}). All it ever learned is one skill: *given some text, guess the next
character.* Everything it writes comes from repeating that guess.

This tour opens it up. Every number you will see is read from the checkpoint that was actually
trained: nothing is made up, nothing is a toy example.
"""
)

kept = kept_note(card.get("best_step"), card["steps"])
if kept:  # the kid on these pages is the kept checkpoint, not the last step
    st.info(f"This run {kept}. Every page shows the kid of step {card['best_step']:,}.", icon=":material/history:")

c1, c2, c3, c4 = st.columns(4)
c1.metric("Parameters", f"{card['total_params']:,}")
c2.metric("Characters it knows", cfg["vocab_size"])
c3.metric("Context it can read", f"{cfg['block_size']} characters")
c4.metric("Validation loss", f"{loss:.3f}", delta=f"{loss - uniform:.2f} vs a uniform guess", delta_color="inverse")

st.subheader("The whole picture")
st.markdown(
    f"Every guess goes through the same path: characters become vectors, {count(cfg['n_layer'], 'block')} "
    f"each add what attention ({count(cfg['n_head'], 'head')}) and a feed-forward layer computed, and the result "
    f"becomes one score per character."
)
st.image(forward_diagram(cfg, compact=True))
st.page_link("pages/whole_kid.py", label="Follow one character through it", icon=":material/account_tree:")

st.subheader("How good is it?")
st.markdown(
    f"""
The **loss** is how surprised the kid is by the true next character, on text it never trained on
(the last 10% of the corpus). For each character, surprise is $-\\ln p$, where $p$ is the
probability the kid gave to the character that really came next; the loss is its average.

- A kid that knows nothing spreads its bets evenly over all {cfg["vocab_size"]} characters: loss
  $\\ln {cfg["vocab_size"]} = {uniform:.3f}$. As unsure as picking among **{cfg["vocab_size"]}** options.
- This kid's loss is **{loss:.3f}**: as unsure as picking among about
  **{perplexity(loss):.1f}** characters (that number, $e^{{\\text{{loss}}}}$, is the *perplexity*).
"""
)
if card["corpus"]["md5"] == TINYSHAKESPEARE_MD5:  # a figure about this corpus only
    st.markdown(
        "- For scale: nanoGPT's 10-million-parameter character model, trained on a GPU, reports a "
        "validation loss of about 1.47 on tinyshakespeare, split the same way (the last 10%)."
    )

draw(loss_curves(training["rows"], uniform, training["best_step"], height=240), width="stretch")
st.caption(
    "Its loss over training: from the uniform guess (dashed) down to where it is now. Chapter 8 tells the whole story."
)

kid_card, siblings = kid_and_siblings()
if siblings:
    st.subheader("Its siblings")
    st.markdown(
        f"The kid has {count(len(siblings), 'sibling')}: runs trained like it, on the same text, with what each "
        "line says changed (read from both runs' settings). Pick one in the sidebar to look inside it, or "
        "compare it with the kid."
    )
    lines = [sibling_line(name, card, kid_card).removeprefix(name) for name, card in siblings]
    st.markdown("\n".join(f"- **{escaped(name)}**{escaped(line)}" for (name, _), line in zip(siblings, lines)))
    for name, _ in siblings:
        st.page_link(
            "pages/compare.py",
            label=f"Compare the kid with {escaped(name)}",
            icon=":material/compare_arrows:",
            query_params={"a": "kid", "b": name},
        )

st.subheader("A sample of its writing")
final = training["samples"][-1]
st.caption(
    f"Written at step {final['step']:,}, starting from a newline, seed 0"
    + (f" (the kid kept is step {card['best_step']:,}'s: the Playground writes with it)" if kept else "")
    + ". Try your own in the Playground."
)
code_block(final["text"])

st.subheader("The tour")
chapters = [
    ("pages/vocab.py", "2. Vocabulary", "the characters the kid knows, as numbers"),
    ("pages/embeddings.py", "3. Embeddings", "each character becomes a vector; similar ones sit together"),
    ("pages/positions.py", "4. Positions", "how the kid knows where a character is"),
    ("pages/attention.py", "5. Attention", "how each position looks back at earlier ones: the heart of it"),
    ("pages/whole_kid.py", "6. The whole kid", "one character's trip through every stage, and why it guessed"),
    ("pages/predictions.py", "7. Predictions", "what it expects next, and how that forms layer by layer"),
    ("pages/training.py", "8. Training", "watch it learn, from random noise to Shakespeare-ish"),
    ("pages/behind.py", "9. Behind the scenes", "how all this was made, and how to do it yourself"),
]
for path, title, what in chapters:
    col1, col2 = st.columns([1, 3])
    with col1:
        st.page_link(path, label=title)
    col2.write(what)
