"""Export: turn a run folder into the JSON files the app's chapters read.

`export_run(run_dir)` writes run_dir/export/<chapter>.json. Every number in
them is computed here from the run's own checkpoints with the model code,
so the app shows what the kid really holds. docs/export.md documents each
file; tests/test_export.py re-derives numbers from the checkpoint to prove
the files cannot drift from the model.

Each file is {"format": "peek-export/<chapter>", "version": VERSION, ...}.
Floats keep 4 significant digits: plenty for pictures, and small files.
"""

import json
import math

import torch
from torch.nn import functional as F

from tinyllm import learning
from tinyllm.checkpoint import build_model, is_count, load_checkpoint
from tinyllm.data import printable
from tinyllm.errors import TinyLLMError
from tinyllm.flow import neuron_contexts
from tinyllm.habits import LABEL_THRESHOLD, habit_targets, head_labels, label_texts
from tinyllm.io import atomic_write_text, read_jsonl
from tinyllm.knockout import knockout_table
from tinyllm.model import param_table
from tinyllm.runfolder import RunFolder
from tinyllm.trace import trace

VERSION = 3  # 2: heads labelled by richer habits, on the validation slice; 3: no attention scores
TOP = 5  # candidates kept per prediction
NEIGHBOURS = 5  # nearest characters kept per character
# The character x character similarity matrix grows with the square of the
# vocabulary; above this many characters it is not exported (nor could a
# reader read it), and the nearest neighbours are found in row chunks, so
# export's memory grows linearly with the vocabulary.
SIMILARITY_MAX_VOCAB = 256
NEIGHBOUR_CHUNK = 1024  # rows of similarities computed at a time


# --------------------------------------------------------------------------
# Small numeric helpers


def rounded(x, digits=4):
    """A tensor (or number) as nested lists of floats with `digits` significant
    digits; exact zeros become the integer 0 (shorter in JSON)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().tolist()
    if isinstance(x, list):
        return [rounded(v, digits) for v in x]
    if isinstance(x, float):
        return float(f"{x:.{digits}g}") if x != 0 else 0
    return x


def rounded_weights(x, decimals=4):
    """Attention weights (0..1) to a few decimal places: enough for any
    picture, and a weight below half the last place is written as 0."""
    return rounded(torch.round(x, decimals=decimals))


def pca_2d(matrix: torch.Tensor):
    """Project rows onto the two directions of largest variance.

    Returns (coords (N, 2), explained variance ratio of the 2 components,
    components (2, C)). Signs are fixed so the largest loading of each
    component is positive: the same matrix always gives the same picture."""
    centered = matrix - matrix.mean(dim=0)
    _, S, Vh = torch.linalg.svd(centered, full_matrices=False)
    components = Vh[:2]
    flip = torch.sign(components.gather(1, components.abs().argmax(dim=1, keepdim=True)))
    components = components * flip
    explained = (S**2 / (S**2).sum())[:2]
    return centered @ components.T, explained, components


def procrustes(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Rotate (or reflect) 2-D points `source` to best match `target`
    (orthogonal Procrustes), so maps from different steps do not flip."""
    U, _, Vh = torch.linalg.svd(source.T @ target)
    return source @ (U @ Vh)


def cosine_matrix(matrix: torch.Tensor) -> torch.Tensor:
    unit = F.normalize(matrix, dim=1)
    return unit @ unit.T


def nearest_neighbours(vectors: torch.Tensor, k: int) -> tuple:
    """(cosines, ids), each (n, k): every row's k most similar other rows,
    computed NEIGHBOUR_CHUNK rows at a time (never the whole n x n matrix)."""
    unit = F.normalize(vectors, dim=1)
    k = min(k, len(unit) - 1)
    values, ids = [], []
    for start in range(0, len(unit), NEIGHBOUR_CHUNK):
        sims = unit[start : start + NEIGHBOUR_CHUNK] @ unit.T  # (chunk, n)
        rows = torch.arange(len(sims))
        sims[rows, rows + start] = -2.0  # never your own neighbour
        chunk_values, chunk_ids = torch.topk(sims, k, dim=1)
        values.append(chunk_values)
        ids.append(chunk_ids)
    return torch.cat(values), torch.cat(ids)


def top_candidates(probs: torch.Tensor, k=TOP) -> list:
    """probs (..., vocab) -> [[id, prob], ...] of the k likeliest (all of
    them when the vocabulary is smaller), for the last dim."""
    values, ids = torch.topk(probs, min(k, probs.shape[-1]))
    return [[[i, p] for i, p in zip(row_ids, rounded(row_p))] for row_ids, row_p in zip(ids.tolist(), values.tolist())]


# --------------------------------------------------------------------------
# Reading the run folder


def facts_problem(facts: dict, vocab_size: int) -> str | None:
    """What is wrong with corpus.json's fields, in words, or None: like every
    file in a run folder, it may have been written by anyone."""
    if not all(isinstance(facts.get(k), str) for k in ("name", "md5")):
        return "its name and md5 must be text"
    if not all(is_count(facts.get(k)) for k in ("chars", "train_chars", "val_chars")):
        return "its character counts must be whole numbers"
    counts = facts.get("counts")
    if not isinstance(counts, list) or len(counts) != vocab_size or not all(is_count(c) for c in counts):
        return "its counts must be one whole number per character of the vocabulary"
    prompts = facts.get("prompts")
    if not isinstance(prompts, list) or not all(isinstance(prompt, str) for prompt in prompts):
        return "its prompts must be a list of texts"
    if not isinstance(facts.get("val_slice", ""), str):
        return "its val_slice must be text"
    return None


class Run:
    """Everything the export reads, checked up front with clear errors."""

    def __init__(self, run_dir):
        self.folder = RunFolder(run_dir)
        self.dir = self.folder.path
        if not self.dir.is_dir():
            raise TinyLLMError(f"No run folder at {self.dir}.")
        self.ckpt = load_checkpoint(self.folder.model)
        self.model, self.vocab = build_model(self.ckpt)
        log_path = self.folder.log
        if not log_path.is_file():
            raise TinyLLMError(f"{self.dir} has no {log_path.name}: it is not a complete run folder.")
        try:
            self.log = read_jsonl(log_path)
        except ValueError as e:
            raise TinyLLMError(f"{log_path} is damaged: {e}.") from None
        if not self.log:
            raise TinyLLMError(f"{log_path} is empty: the run logged no evaluation.")
        facts_path = self.folder.corpus
        self.facts = self.folder.read_object(facts_path)
        if self.facts is None:
            raise TinyLLMError(f"{facts_path} is missing or damaged (it is written when training starts).")
        problem = facts_problem(self.facts, len(self.vocab))
        if problem:
            raise TinyLLMError(f"{facts_path} is damaged: {problem}.")
        self.summary = self.folder.read_object(self.folder.summary) or {}
        self.snapshots = self.folder.snapshot_files()
        T = self.model.config.block_size
        self.prompts = [p for p in self.facts["prompts"] if len(p) == T + 1]
        if not self.prompts:
            raise TinyLLMError(f"{facts_path} holds no prompts of block_size + 1 characters.")
        # x: what the kid reads; y: the character that really came next
        ids = torch.tensor([self.vocab.encode(p) for p in self.prompts])
        self.x, self.y = ids[:, :-1], ids[:, 1:]
        # the heads' habits are measured on the validation slice (older runs: the prompts)
        val_slice = self.facts.get("val_slice")
        usable = isinstance(val_slice, str) and len(val_slice) >= T and not self.vocab.unknown(val_slice)
        self.label_ids = label_texts(self.model, self.vocab, val_slice) if usable else self.x
        self.label_targets = habit_targets(self.label_ids, self.vocab.chars)
        self.traced = trace(self.model, self.x)  # the sample prompts: every intermediate, read by two chapters


# --------------------------------------------------------------------------
# One function per chapter: each returns the dict written to <chapter>.json.
# CHAPTERS is their one list: the writer (export_run), the reader
# (read_chapter), the tests and the Behind-the-scenes page all read it.

CHAPTERS = {}  # name -> function(run) -> the dict written to export/<name>.json, in the tour's order


def exported(name: str, read_by: str, version: int = VERSION):
    """Register the function that makes export/<name>.json. read_by: the
    app's pages that read the file, in a reader's words (Behind the scenes
    shows them). version: the file's own, for a file newer than the format's
    (docs/export.md). A function that returns None writes no file."""

    def register(function):
        function.read_by = read_by
        function.version = version
        CHAPTERS[name] = function
        return function

    return register


@exported("model_card", read_by="the sidebar and most chapters (the run's settings and sizes)")
def model_card(run: Run) -> dict:
    ckpt, model = run.ckpt, run.model
    last = run.log[-1]
    return dict(
        config=ckpt["config"],
        params=[{"module": name, "count": count} for name, count in param_table(model)],
        total_params=model.num_params(),
        steps=last["step"],
        best_step=ckpt["step"],
        train_settings=ckpt["train"],
        training_minutes=round(last["elapsed_s"] / 60, 2),
        device=ckpt["device"],
        train_loss=ckpt["losses"]["train"],
        val_loss=ckpt["losses"]["val"],
        exact_val_loss=run.summary.get("exact_val_loss"),
        uniform_loss=round(math.log(len(run.vocab)), 4),
        corpus={k: run.facts[k] for k in ("name", "md5", "chars", "train_chars", "val_chars")},
        # whose attention Head trained it: only written for a learner's (the kid's own is the default)
        **({"head": ckpt["head"]} if ckpt.get("head") else {}),
    )


@exported("vocab", read_by="Vocabulary, Embeddings and Training")
def vocab_chapter(run: Run) -> dict:
    return dict(
        chars=[
            {"id": i, "char": ch, "name": printable(ch), "count": count}
            for i, (ch, count) in enumerate(zip(run.vocab.chars, run.facts["counts"]))
        ]
    )


@exported("embeddings", read_by="Embeddings")
def embeddings_chapter(run: Run) -> dict:
    emb = run.model.token_embedding.weight.detach()  # (vocab, n_embd)
    coords, explained, _ = pca_2d(emb)
    values, ids = nearest_neighbours(emb, NEIGHBOURS)
    return dict(
        matrix=rounded(emb),
        pca=dict(coords=rounded(coords), explained=rounded(explained)),
        # None above SIMILARITY_MAX_VOCAB characters (the page says why)
        similarity=rounded(cosine_matrix(emb), 3) if len(emb) <= SIMILARITY_MAX_VOCAB else None,
        neighbours=[
            [[j, s] for j, s in zip(row_ids, rounded(row_s))] for row_ids, row_s in zip(ids.tolist(), values.tolist())
        ],
    )


@exported("positions", read_by="Positions")
def positions_chapter(run: Run) -> dict:
    pos = run.model.position_embedding.weight.detach()  # (block_size, n_embd)
    coords, explained, _ = pca_2d(pos)
    return dict(
        matrix=rounded(pos),
        similarity=rounded(cosine_matrix(pos), 3),
        pca=dict(coords=rounded(coords), explained=rounded(explained)),
    )


def prompt_attention(traced, b: int) -> list:
    """[layer][head] -> the Head's intermediates for prompt b of a trace."""
    return [
        [
            dict(
                # no scores: a page recomputes them from q and k (explain.attention_steps)
                weights=rounded_weights(h["weights"][b]),
                q=rounded(h["q"][b], 3),
                k=rounded(h["k"][b], 3),
                v=rounded(h["v"][b], 3),
            )
            for h in block["heads"]
        ]
        for block in traced["blocks"]
    ]


def prompt_predictions(model, traced, b: int, targets: list) -> dict:
    """What the kid expects after each position of prompt b: its top
    candidates, the same read from every layer (logit lens), and, where the
    next character is known (targets[i] is not None), its probability and
    the loss -ln p there."""
    probs = F.softmax(traced["logits"][b], dim=-1)  # (T, vocab)
    with torch.no_grad():
        lens = [F.softmax(model.logit_lens(block["after"][b]), dim=-1) for block in traced["blocks"]]
    target_probs = [None if t is None else float(probs[i, t]) for i, t in enumerate(targets)]
    return dict(
        targets=targets,
        target_probs=[None if p is None else rounded(p) for p in target_probs],
        losses=[None if p is None else rounded(-math.log(max(p, 1e-30))) for p in target_probs],
        top=top_candidates(probs),
        lens=[top_candidates(layer_probs) for layer_probs in lens],
    )


def analyze_text(model, vocab, text: str) -> dict:
    """The attention and predictions of any text, live, as the export writes
    them for its sample prompts. Keeps the last block_size characters."""
    text = text[-model.config.block_size :]
    ids = vocab.encode(text)
    traced = trace(model, torch.tensor([ids]))
    targets = ids[1:] + [None]  # the character after the text is not known
    return dict(text=text, layers=prompt_attention(traced, 0), **prompt_predictions(model, traced, 0, targets))


@exported("attention", read_by="Attention")
def attention_chapter(run: Run) -> dict:
    prompts = [
        dict(text=text[:-1], next_char=text[-1], layers=prompt_attention(run.traced, b))
        for b, text in enumerate(run.prompts)
    ]
    labels = head_labels(run.model, run.label_ids, run.label_targets)
    return dict(prompts=prompts, labels=labels, label_threshold=LABEL_THRESHOLD, label_chars=run.label_ids.numel())


@exported("predictions", read_by="Predictions and The whole kid (its sample texts)")
def predictions_chapter(run: Run) -> dict:
    prompts = [
        dict(text=text[:-1], **prompt_predictions(run.model, run.traced, b, run.y[b].tolist()))
        for b, text in enumerate(run.prompts)
    ]
    mean = sum(sum(p["losses"]) for p in prompts) / sum(len(p["losses"]) for p in prompts)
    return dict(prompts=prompts, mean_loss=round(mean, 4))


@exported("training", read_by="Meet the kid and Training")
def training_chapter(run: Run) -> dict:
    keys = ("step", "train_loss", "val_loss", "lr", "tokens_per_s", "elapsed_s", "best", "snapshot")
    return dict(
        rows=[{k: row.get(k) for k in keys} for row in run.log],
        samples=[{"step": row["step"], "text": row["sample"]} for row in run.log],
        uniform_loss=round(math.log(len(run.vocab)), 4),
        best_step=run.ckpt["step"],
    )


@exported("evolution", read_by="Training (the model at every snapshot)")
def evolution_chapter(run: Run) -> dict:
    final_coords, _, _ = pca_2d(run.model.token_embedding.weight.detach())
    by_step = {row["step"]: row for row in run.log}
    x, y = run.x[:1], run.y[0]
    snapshots = []
    for path in run.snapshots:
        ckpt = load_checkpoint(path)
        model, _ = build_model(ckpt)
        coords, _, _ = pca_2d(model.token_embedding.weight.detach())
        traced = trace(model, x)
        probs = F.softmax(traced["logits"][0], dim=-1)
        row = by_step.get(ckpt["step"], {})
        weights = [[h["weights"] for h in block["heads"]] for block in traced["blocks"]]
        snapshots.append(
            dict(
                step=ckpt["step"],
                val_loss=row.get("val_loss", ckpt["losses"].get("val")),
                train_loss=row.get("train_loss", ckpt["losses"].get("train")),
                sample=row.get("sample", ""),
                embedding_pca=rounded(procrustes(coords, final_coords)),
                attention=[[rounded_weights(w[0], 3) for w in layer] for layer in weights],
                labels=head_labels(model, run.label_ids, run.label_targets),
                top=top_candidates(probs),
                target_probs=rounded(probs.gather(1, y[:, None])[:, 0]),
                losses=rounded(F.cross_entropy(traced["logits"][0], y, reduction="none")),
            )
        )
    return dict(prompt=run.prompts[0][:-1], targets=y.tolist(), snapshots=snapshots)


@exported("learning", read_by="Training (the passage coloured by surprise at every snapshot)", version=1)
def learning_chapter(run: Run) -> dict | None:
    """The loss of every character of one validation passage at every
    snapshot (tinyllm.learning). None (no file) for a run without snapshots
    or without a validation passage to read."""
    passage = validation_slice(run)[: learning.PASSAGE_CHARS]
    if not run.snapshots or len(passage) < 2:
        return None
    ids = run.vocab.encode(passage)
    classes = learning.class_of(passage)
    measured = {}  # step -> the losses of its snapshot
    for path in run.snapshots:
        ckpt = load_checkpoint(path)
        measured[ckpt["step"]] = learning.passage_losses(build_model(ckpt)[0], ids)
    steps = sorted(measured)  # ascending, whatever the file names say
    return dict(
        passage=passage,
        steps=steps,
        losses=[rounded(measured[step]) for step in steps],
        classes=[{"name": name, "count": classes.count(c)} for c, (name, *_) in enumerate(learning.CLASSES)],
        class_of=classes,
        class_means=[[rounded(m) for m in learning.class_means(measured[step], classes)] for step in steps],
        # added for the page: the mean over every predicted character, and the context each was read with
        means=[rounded(float(measured[step].mean())) for step in steps],
        block_size=run.model.config.block_size,
    )


def validation_slice(run: Run) -> str:
    """corpus.json's validation slice ("" when missing or holding characters the vocabulary lacks)."""
    text = run.facts.get("val_slice") or ""
    return text if isinstance(text, str) and not run.vocab.unknown(text) else ""


@exported("flow", read_by="The whole kid (each neuron's strongest contexts)")
def flow_chapter(run: Run) -> dict:
    """The feed-forward neurons' strongest contexts in the fixed validation
    slice (the traces themselves are computed live: a few milliseconds)."""
    text = validation_slice(run)
    return dict(slice=text, window=run.model.config.block_size, neurons=neuron_contexts(run.model, run.vocab, text))


@exported("knockout", read_by="Attention (what each head costs) and The whole kid (knock it out)")
def knockout_chapter(run: Run) -> dict:
    """The loss on flow.json's validation slice with each part alone switched off."""
    table = knockout_table(run.model, run.vocab, validation_slice(run))
    return {key: rounded(value) for key, value in table.items()}


def export_run(run_dir, names=None) -> list:
    """Write every chapter's JSON (or only those in `names`) into run_dir/export/. Returns the paths."""
    run = Run(run_dir)
    # all computed before any is written
    chapters = {name: make(run) for name, make in CHAPTERS.items() if names is None or name in names}
    run.folder.export.mkdir(exist_ok=True)
    written = []
    for name, body in chapters.items():
        path = run.folder.chapter(name)
        if body is None:  # nothing to write for this run: no stale file either
            path.unlink(missing_ok=True)
            continue
        doc = {"format": f"peek-export/{name}", "version": CHAPTERS[name].version, **body}
        # allow_nan=False: a NaN is an error here, not a surprise in the browser
        atomic_write_text(path, json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
        written.append(path)
    return written


def read_chapter(run_dir, name: str) -> dict:
    """Load one exported chapter, with a clear error if it is missing or stale."""
    if name not in CHAPTERS:
        raise ValueError(f"no chapter {name!r}: the export writes {', '.join(CHAPTERS)}")
    path = RunFolder(run_dir).chapter(name)
    if not path.is_file():
        raise TinyLLMError(f"{path} is missing. Create it with: python -m tinyllm export --run {run_dir}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))  # not UTF-8 is a ValueError too
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise TinyLLMError(f"{path} is damaged. Rebuild it with: python -m tinyllm export --run {run_dir}")
    if doc.get("format") != f"peek-export/{name}" or doc.get("version") != CHAPTERS[name].version:
        raise TinyLLMError(f"{path} is from another version. Rebuild it with: python -m tinyllm export --run {run_dir}")
    return doc
