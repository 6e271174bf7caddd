"""Chapter 9: how the kid and its data were made, and how to do it yourself."""

import shlex

import pandas as pd
import streamlit as st

from tinyllm.data import TINYSHAKESPEARE_MD5
from tinyllm.exercise import DEFAULT_PATH
from tinyllm.explain import count
from tinyllm.export import CHAPTERS
from tinyllm.model import GPTConfig
from tinyllm.runfolder import FILES, RunFolder
from tinyllm.sandbox import HEAD_FILE
from tinyllm.settings import described, flag
from tinyllm.train import TrainConfig
from ui import APP_DIR, in_frame
from ui.loaders import chapter, current_run, kid_dir
from ui.text import code, escaped

in_frame()  # drawn inside the frame, or not at all

card = chapter("model_card")
run_dir = current_run()
cfg, settings = card["config"], card["train_settings"]
# the run folder as the project knows it; a folder moved out of the project by the
# server's settings is named by the setting, never by where it is on the server
if run_dir.is_relative_to(APP_DIR):
    shown_dir = run_dir.relative_to(APP_DIR).as_posix()
elif run_dir == kid_dir():
    shown_dir = "$PEEK_KID_DIR"
else:
    shown_dir = f"$PEEK_RUNS_DIR/{run_dir.name}"

st.title("Behind the scenes")
st.markdown(
    f"""
Everything in this tour comes from one folder, `{shown_dir}`,
made by two commands of the `tinyllm` package (plain PyTorch, a few hundred readable lines).

**The model** is the classic decoder from Andrej Karpathy's "Let's build GPT": token and position
embeddings, {count(cfg["n_layer"], "block")} of {cfg["n_head"]}-head causal self-attention and a 4x ReLU feed-forward
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


def quoted(path: str) -> str:
    """A path for the shell; a $SETTING at its start stays expandable."""
    if path.startswith("$"):
        setting, _, rest = path.partition("/")
        return setting + ("/" + shlex.quote(rest) if rest else "")
    return shlex.quote(path)


def run_commands() -> str:
    """The commands that made this run and look at it, with its own folder and settings."""
    folder = RunFolder(run_dir)
    out = quoted(shown_dir)
    values = {**cfg, **settings}
    names = [f.name for f in described(GPTConfig) + described(TrainConfig) if f.name in values]
    flags = [f"{flag(name)} {shlex.quote(str(values[name]))}" for name in names]
    data, note = "", "downloads tinyshakespeare once"
    if card["corpus"]["md5"] != TINYSHAKESPEARE_MD5:
        uploads = sorted(p.name for p in folder.upload.glob("*")) if folder.upload.is_dir() else []
        if uploads:
            data, note = f" --data {quoted(f'{shown_dir}/upload/{uploads[0]}')}", "the text it was given"
        else:
            data, note = f" --data {shlex.quote(card['corpus']['name'])}", "its text: give its path"
    head = f" --head {quoted(f'{shown_dir}/head/{HEAD_FILE}')}" if (folder.head / HEAD_FILE).is_file() else ""
    checkpoint = quoted(f"{shown_dir}/model.pt")
    lines = [
        "# install, then start this app",
        "pip install -r requirements.txt && streamlit run streamlit_app.py",
        "",
        f"# the command that made it ({note}); to train it again, give another --out: the same seed",
        "# on the same CPU repeats it number for number",
        f"python -m tinyllm train --out {out}{data}{head} \\",
        *[f"    {f} \\" for f in flags[:-1]],
        f"    {flags[-1]}",
        *(
            [f"python -m tinyllm train --out {out}{data}{head} --resume   # after Ctrl-C or a STOP file"]
            if folder.latest.is_file()  # the state to resume from: committed runs do not ship it
            else []
        ),
        "",
        "# look at it, let it write, measure it",
        f"python -m tinyllm show --checkpoint {checkpoint}",
        f'python -m tinyllm sample --checkpoint {checkpoint} --prompt "ROMEO:" --temperature 0.8',
        f"python -m tinyllm eval --checkpoint {checkpoint}{data}",
        "",
        "# write the JSON this app reads, then pick the run in the sidebar",
        f"python -m tinyllm export --run {out}",
    ]
    return "\n".join(lines)


st.subheader("Do it yourself")
st.markdown("The commands that made this very run, and that look inside it, run from the project's folder:")
st.code(run_commands(), language="bash", wrap_lines=True)
st.markdown(
    "Write attention yourself on your own machine: the first command writes the template (the kid's Head with "
    "`forward` left to you), the second checks your file against the kid, step by step:"
)
st.code(
    f"python -m tinyllm exercise {DEFAULT_PATH}\npython -m tinyllm check-head {DEFAULT_PATH}",
    language="bash",
    wrap_lines=True,
)

st.subheader("Parameters, module by module")
params = pd.DataFrame(card["params"] + [{"module": "total", "count": card["total_params"]}])
params["share"] = 100 * params["count"] / card["total_params"]
st.dataframe(
    params,
    hide_index=True,
    width="stretch",
    height=35 * (len(params) + 1) + 3,  # every row, the total included: no scrolling inside the table
    column_config={
        "count": st.column_config.NumberColumn("count", format="localized"),
        # one format for every row: 1.02%, 0.02%, 39.80%
        "share": st.column_config.ProgressColumn("share of all", min_value=0.0, max_value=100.0, format="%.2f%%"),
    },
)

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
        what = f" · read by {CHAPTERS[inner.stem].read_by}" if path.name == "export" and inner.stem in CHAPTERS else ""
        lines.append(f"    - {code(inner.relative_to(path).as_posix())} · {inner.stat().st_size / 1024:,.1f} KB{what}")
st.markdown("\n".join(lines))
st.caption("Checkpoints load with torch.load(path, weights_only=True): plain tensors and metadata, no code.")
