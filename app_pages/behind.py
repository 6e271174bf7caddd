"""Chapter 9: how the kid and its data were made, and how to do it yourself."""

import pandas as pd
import streamlit as st

from tinyllm.runfolder import FILES
from tinyllm.runs import ROOT
from ui.data import chapter, current_run
from ui.text import code, escaped

card = chapter("model_card")
run_dir = current_run()
cfg, settings = card["config"], card["train_settings"]
shown_dir = run_dir.relative_to(ROOT) if run_dir.is_relative_to(ROOT) else run_dir

st.title("Behind the scenes")
st.markdown(
    f"""
Everything in this tour comes from one folder, `{shown_dir}`,
made by two commands of the `tinyllm` package (plain PyTorch, a few hundred readable lines).

**The model** is the classic decoder from Andrej Karpathy's "Let's build GPT": token and position
embeddings, {cfg["n_layer"]} blocks of {cfg["n_head"]}-head causal self-attention and a 4x ReLU feed-forward
layer (each behind a LayerNorm, each added to the residual stream), a final LayerNorm and a linear
layer to {cfg["vocab_size"]} logits. Width {cfg["n_embd"]}, context {cfg["block_size"]} characters,
dropout {cfg["dropout"]}.

**The data**: {escaped(card["corpus"]["name"])}, {card["corpus"]["chars"]:,} characters (md5
{code(str(card["corpus"]["md5"]))}). The first 90% is for training, the last 10% for validation.

**The training**: {card["steps"]:,} steps of AdamW (peak learning rate {settings["lr"]}, warm-up
{settings["warmup_steps"]} steps, cosine decay to {settings["min_lr"]}, weight decay
{settings["weight_decay"]}), batches of {settings["batch_size"]} x {cfg["block_size"]} characters, seed
{settings["seed"]}, on {escaped(card["device"])}: {card["training_minutes"]:.1f} minutes. The checkpoint kept is the
one with the best validation loss (step {card["best_step"]:,}).
"""
)

st.subheader("Do it yourself")
st.code(
    """# install, then start this app
pip install -r requirements.txt && streamlit run streamlit_app.py

# train a kid (downloads tinyshakespeare once; offline: --data path/to/input.txt)
python -m tinyllm train --out artifacts/runs/mine
python -m tinyllm train --out artifacts/runs/mine --resume   # after Ctrl-C or a STOP file

# look at it, let it write, measure it
python -m tinyllm show --checkpoint artifacts/runs/mine/model.pt
python -m tinyllm sample --checkpoint artifacts/runs/mine/model.pt --prompt "ROMEO:" --temperature 0.8
python -m tinyllm eval --checkpoint artifacts/runs/mine/model.pt

# write the JSON this app reads, then pick the run in the sidebar
python -m tinyllm export --run artifacts/runs/mine""",
    language="bash",
    wrap_lines=True,
)

st.subheader("Parameters, module by module")
params = pd.DataFrame(card["params"])
params["share"] = 100 * params["count"] / card["total_params"]
st.dataframe(
    params,
    hide_index=True,
    width="stretch",
    column_config={
        "count": st.column_config.NumberColumn("count", format="localized"),
        # one format for every row: 1.02%, 0.02%, 39.80%
        "share": st.column_config.ProgressColumn("share of all", min_value=0.0, max_value=100.0, format="%.2f%%"),
    },
)

# Which pages read each exported file, in the reader's words
EXPORT_READERS = {
    "model_card": "the sidebar and most chapters (the run's settings and sizes)",
    "vocab": "Vocabulary, Embeddings and Training",
    "embeddings": "Embeddings",
    "positions": "Positions",
    "attention": "Attention",
    "predictions": "Predictions and The whole kid (its sample texts)",
    "training": "Meet the kid and Training",
    "evolution": "Training (the model at every snapshot)",
    "flow": "The whole kid (each neuron's strongest contexts)",
}
st.subheader("What the run folder holds")
# A list, not a table: the descriptions wrap on a phone instead of scrolling sideways.
lines = []
for path in sorted(run_dir.iterdir()):
    if path.name.startswith(".") or not (path.is_file() or path.is_dir()):
        continue
    if path.is_file():
        lines.append(f"- {code(path.name)} · {path.stat().st_size / 1024:,.1f} KB · {FILES.get(path.name, '')}")
        continue
    inside = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    total = sum(p.stat().st_size for p in inside) / 1024
    lines.append(f"- {code(path.name + '/')} · {len(inside)} files, {total:,.1f} KB · {FILES.get(path.name, '')}")
    for inner in inside:
        what = (
            f" · read by {EXPORT_READERS[inner.stem]}" if path.name == "export" and inner.stem in EXPORT_READERS else ""
        )
        lines.append(f"    - {code(inner.relative_to(path).as_posix())} · {inner.stat().st_size / 1024:,.1f} KB{what}")
st.markdown("\n".join(lines))
st.caption("Checkpoints load with torch.load(path, weights_only=True): plain tensors and metadata, no code.")
