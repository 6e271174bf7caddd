"""The export is a contract: documented shapes, and numbers that are the model's own."""

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import tiny_configs
from torch.nn import functional as F

from tinyllm.checkpoint import load_model
from tinyllm.errors import TinyLLMError
from tinyllm.export import CHAPTERS, VERSION, export_run, read_chapter
from tinyllm.habits import HABITS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def chapters(tiny_run):
    return {name: read_chapter(tiny_run, name) for name in CHAPTERS}


@pytest.fixture(scope="module")
def kid(tiny_run):
    return load_model(tiny_run / "model.pt")


def shape(nested):
    dims = []
    while isinstance(nested, list):
        dims.append(len(nested))
        nested = nested[0] if nested else None
    return tuple(dims)


def flat(nested):
    if isinstance(nested, list):
        for item in nested:
            yield from flat(item)
    else:
        yield nested


def test_every_file_matches_its_schema(chapters, kid):
    model, vocab, ckpt = kid
    c = model.config
    V, T, C, hs = c.vocab_size, c.block_size, c.n_embd, c.head_size
    for name, doc in chapters.items():
        assert doc["format"] == f"peek-export/{name}" and doc["version"] == CHAPTERS[name].version

    card = chapters["model_card"]
    assert card["total_params"] == sum(p["count"] for p in card["params"]) == model.num_params()
    assert card["uniform_loss"] == pytest.approx(math.log(V), abs=1e-4)
    assert card["val_loss"] < card["uniform_loss"] and len(card["corpus"]["md5"]) == 32
    assert 0 < card["exact_val_loss"] < card["uniform_loss"]

    chars = chapters["vocab"]["chars"]
    assert [ch["id"] for ch in chars] == list(range(V))
    assert all(ch["count"] > 0 for ch in chars) and all(ch["name"] for ch in chars)

    emb = chapters["embeddings"]
    assert shape(emb["matrix"]) == (V, C) and shape(emb["pca"]["coords"]) == (V, 2)
    assert shape(emb["similarity"]) == (V, V) and shape(emb["neighbours"]) == (V, 5, 2)
    assert 0 < sum(emb["pca"]["explained"]) <= 1

    pos = chapters["positions"]
    assert shape(pos["matrix"]) == (T, C) and shape(pos["similarity"]) == (T, T)
    assert shape(pos["pca"]["coords"]) == (T, 2)

    att = chapters["attention"]
    assert len(att["prompts"]) >= 3
    for prompt in att["prompts"]:
        assert len(prompt["text"]) == T and len(prompt["next_char"]) == 1
        assert shape(prompt["layers"]) == (c.n_layer, c.n_head)
        for head in flat(prompt["layers"]):
            assert shape(head["weights"]) == (T, T) and "scores" not in head  # recomputed from q and k
            assert shape(head["q"]) == shape(head["k"]) == shape(head["v"]) == (T, hs)
            for i, row in enumerate(head["weights"]):
                assert sum(row) == pytest.approx(1, abs=2e-3)
                assert all(w == 0 for w in row[i + 1 :])  # nothing from the future
                assert all(0 <= w <= 1 for w in row)
    assert shape(att["labels"]) == (c.n_layer, c.n_head)
    habits = {name: words.format(offset="{offset}") for name, words in HABITS.items()}
    for label in flat(att["labels"]):
        assert label["label"] == habits[label["habit"]].format(offset=label["offset"])
        assert label["score"] == max(label["scores"].values()) == label["scores"][label["habit"]]
        assert label["clear"] == (label["score"] >= att["label_threshold"])
        assert 2 <= label["offset"] <= 8
        assert all(0 <= s <= 1.001 for s in label["scores"].values())

    pred = chapters["predictions"]
    for prompt in pred["prompts"]:
        assert shape(prompt["top"]) == (T, 5, 2)
        assert shape(prompt["lens"]) == (c.n_layer, T, 5, 2)
        assert len(prompt["losses"]) == len(prompt["targets"]) == T
        for _, p in flat_pairs(prompt["top"]) + flat_pairs(prompt["lens"]):
            assert 0 <= p <= 1
        assert all(0 <= p <= 1 for p in prompt["target_probs"])

    training = chapters["training"]
    assert [r["step"] for r in training["rows"]] == [s["step"] for s in training["samples"]]
    evo = chapters["evolution"]
    assert [s["step"] for s in evo["snapshots"]] == [0, 50, 100, 120]
    for snap in evo["snapshots"]:
        assert shape(snap["embedding_pca"]) == (V, 2)
        assert shape(snap["attention"]) == (c.n_layer, c.n_head, T, T)
        assert shape(snap["top"]) == (T, 5, 2)

    flow = chapters["flow"]
    assert flow["window"] == T and len(flow["slice"]) > T
    assert shape(flow["neurons"]) == (c.n_layer, 4 * C, 5, 2)
    for offset, activation in flat_pairs(flow["neurons"]):
        assert 0 <= offset < len(flow["slice"]) and activation >= 0


def flat_pairs(nested):
    if isinstance(nested[0], list) and isinstance(nested[0][0], list):
        return [pair for item in nested for pair in flat_pairs(item)]
    return nested


def test_exported_numbers_are_the_models_own(chapters, kid):
    model, vocab, _ = kid
    att = chapters["attention"]
    prompt = att["prompts"][1]
    idx = torch.tensor([vocab.encode(prompt["text"])])

    # attention weights, recomputed with the fast path (not the trace the export used)
    layer, head = 1, 2
    with torch.no_grad():
        x = model.token_embedding(idx) + model.position_embedding(torch.arange(idx.shape[1]))
        for block in model.blocks[:layer]:
            x = block(x)
        h = model.blocks[layer].attn.heads[head]
        xn = model.blocks[layer].ln1(x)
        q, k = h.query(xn), h.key(xn)
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.shape[-1])
        weights = F.softmax(scores.masked_fill(torch.ones_like(scores).triu(1).bool(), -math.inf), -1)
    exported = torch.tensor(prompt["layers"][layer][head]["weights"])
    torch.testing.assert_close(exported, weights[0], atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(torch.tensor(prompt["layers"][layer][head]["q"]), q[0], atol=1e-3, rtol=5e-3)

    # a prediction: the top candidate and its probability at position 10
    with torch.no_grad():
        probs = F.softmax(model(idx)[0][0], dim=-1)
    top_id, top_p = chapters["predictions"]["prompts"][1]["top"][10][0]
    assert top_id == int(probs[10].argmax()) and top_p == pytest.approx(float(probs[10].max()), rel=1e-3)

    # a similarity and a PCA coordinate, by other means than the export's
    emb = model.token_embedding.weight.detach()
    a, b = vocab.stoi["o"], vocab.stoi["e"]
    sim = F.cosine_similarity(emb[a], emb[b], dim=0)
    assert chapters["embeddings"]["similarity"][a][b] == pytest.approx(float(sim), abs=1e-3)
    centered = emb - emb.mean(0)
    _, eigvecs = torch.linalg.eigh(centered.T @ centered)
    first = centered @ eigvecs[:, -1]  # the top principal direction, up to sign
    coords = torch.tensor(chapters["embeddings"]["pca"]["coords"])[:, 0]
    sign = torch.sign((coords * first).sum())
    torch.testing.assert_close(coords, sign * first, atol=2e-3, rtol=1e-3)


def test_export_is_deterministic(tiny_run):
    before = {p.name: p.read_bytes() for p in (tiny_run / "export").glob("*.json")}
    export_run(tiny_run)
    after = {p.name: p.read_bytes() for p in (tiny_run / "export").glob("*.json")}
    assert before == after and len(before) == len(CHAPTERS)


def test_the_registry_is_the_one_list_of_chapters(tiny_run):
    """export_run writes one file per registered chapter and nothing else;
    read_chapter knows no other; each says which pages read it."""
    written = export_run(tiny_run)
    assert [p.stem for p in written] == list(CHAPTERS)
    assert sorted(p.name for p in (tiny_run / "export").iterdir()) == sorted(f"{name}.json" for name in CHAPTERS)
    assert all(CHAPTERS[name].read_by for name in CHAPTERS)
    with pytest.raises(ValueError, match="no chapter 'scores'"):
        read_chapter(tiny_run, "scores")


def test_the_docs_describe_this_version_and_every_chapter():
    docs = (ROOT / "docs" / "export.md").read_text(encoding="utf-8")
    assert docs.startswith(f"# The export format (version {VERSION})")
    assert f'"version": {VERSION}' in docs
    rows = [line.split("`")[1] for line in docs.splitlines() if line.startswith("| `")]
    assert rows == [f"{name}.json" for name in CHAPTERS]


def test_bad_run_folders_get_clear_errors(tiny_run, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    log = broken / "log.jsonl"
    log.write_text(log.read_text()[:-40])  # a truncated last line
    with pytest.raises(TinyLLMError, match="log.jsonl.*damaged"):
        export_run(broken)
    log.unlink()
    with pytest.raises(TinyLLMError, match="no log.jsonl"):
        export_run(broken)
    (broken / "model.pt").unlink()
    with pytest.raises(TinyLLMError, match="No checkpoint"):
        export_run(broken)
    with pytest.raises(TinyLLMError, match="No run folder"):
        export_run(tmp_path / "nothing")
    (tiny_run / "export" / "vocab.json").rename(tmp_path / "vocab.json")
    try:
        with pytest.raises(TinyLLMError, match="tinyllm export --run"):
            read_chapter(tiny_run, "vocab")
    finally:
        (tmp_path / "vocab.json").rename(tiny_run / "export" / "vocab.json")


def strict_json(text: str):
    """json.loads, minus what browsers refuse: NaN, Infinity, -Infinity."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_files_are_plain_json(tiny_run, tmp_path):
    for path in (tiny_run / "export").glob("*.json"):
        strict_json(path.read_text(encoding="utf-8"))  # valid UTF-8, no NaN or Infinity
    with pytest.raises(ValueError, match="NaN"):  # the check itself can fail
        strict_json('{"loss": NaN}')
    from tinyllm.io import atomic_write_json

    with pytest.raises(ValueError):  # and the writers refuse to write one
        atomic_write_json(tmp_path / "x.json", {"loss": float("nan")})


def test_live_analysis_matches_the_export(chapters, kid):
    from tinyllm.export import analyze_text

    model, vocab, _ = kid
    prompt = chapters["attention"]["prompts"][0]
    live = analyze_text(model, vocab, prompt["text"])
    assert live["layers"][1][3]["weights"] == prompt["layers"][1][3]["weights"]
    exported = chapters["predictions"]["prompts"][0]
    assert live["top"] == exported["top"] and live["lens"] == exported["lens"]
    assert live["losses"][:-1] == exported["losses"][:-1] and live["losses"][-1] is None
    long_text = prompt["text"] * 3
    assert analyze_text(model, vocab, long_text)["text"] == long_text[-model.config.block_size :]


def test_similarity_by_distance_reads_the_diagonals():
    from tinyllm.explain import similarity_by_distance

    sim = [[1.0, 0.5, 0.1], [0.5, 1.0, 0.3], [0.1, 0.3, 1.0]]
    assert similarity_by_distance(sim) == pytest.approx([1.0, 0.4, 0.1])


def test_attention_steps_reproduce_the_exported_weights(chapters):
    from tinyllm.explain import attention_steps

    head = chapters["attention"]["prompts"][0]["layers"][1][0]
    for i in (0, 5, len(head["q"]) - 1):
        steps = attention_steps(head, i)
        assert steps["weights"] == pytest.approx(head["weights"][i], abs=5e-3)
        assert sum(steps["weights"]) == pytest.approx(1.0)
        assert all(w == 0 for w in steps["weights"][i + 1 :])


def test_each_habit_is_recognised_in_a_head_that_has_it():
    """A made-up head that does exactly one thing gets that habit's label
    with a score of 1, on a text where every habit has targets."""
    from tinyllm.habits import habit_targets, head_scores, label_head

    text = "ROMEO sees the moon and\nJULIET sees the sun at noon "
    chars = sorted(set(text))
    ids = torch.tensor([[chars.index(c) for c in text]])
    targets = habit_targets(ids, chars)
    T = len(text)
    for habit, keys in [
        ("previous", lambda i: [i - 1] if i >= 1 else []),
        (
            "space",
            lambda i: [max(k for k in range(i) if text[k] in " \n")] if any(c in " \n" for c in text[:i]) else [],
        ),
        (
            "vowel",
            lambda i: (
                [max(k for k in range(i) if text[k] in "aeiouAEIOU")]
                if any(c in "aeiouAEIOU" for c in text[:i])
                else []
            ),
        ),
        ("start", lambda i: [0] if i >= 1 else []),
    ]:
        weights = torch.zeros(1, T, T)
        for i in range(T):
            for j in keys(i) or [i]:  # where the habit has no target, the head looks at itself
                weights[0, i, j] = 1 / len(keys(i) or [i])
        scores, offset = head_scores(weights, targets)
        label = label_head(scores, offset)
        assert (label["habit"], label["clear"]) == (habit, True) and label["score"] == pytest.approx(1.0)
    weights = torch.zeros(1, T, T)
    for i in range(T):
        weights[0, i, max(0, i - 3)] = 1.0  # exactly 3 back (or the first position early on)
    assert label_head(*head_scores(weights, targets))["label"] == "3 characters back"
    uniform = torch.ones(1, T, T).tril() / torch.arange(1, T + 1)[:, None]
    label = label_head(*head_scores(uniform, targets))
    assert not label["clear"] and label["score"] < 0.4  # only its strongest habit, marked weak


def test_position_facts_say_what_the_numbers_show():
    from tinyllm.explain import describe_distances, duration

    smooth = describe_distances([1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1])
    assert smooth["steady"] and smooth["neighbours_most_alike"] and smooth["peaks"] == []
    # the committed kid's shape: alike at 1, unlike at 2 and 3, alike again at 5
    kid = describe_distances([1.0, 0.52, -0.14, -0.15, 0.29, 0.50, 0.1, 0.0])
    assert not kid["steady"] and kid["neighbours_most_alike"] and kid["peaks"] == [5]
    assert kid["near"] == [0.52, -0.14, -0.15, 0.29, 0.50]
    assert not describe_distances([1.0, 0.1, 0.6, 0.2])["neighbours_most_alike"]
    # a plateau with a rounding-sized bump is no peak (a 2-layer run: 0.67, 0.60, 0.55, 0.549, 0.551)
    assert describe_distances([1.0, 0.67, 0.60, 0.55, 0.549, 0.551, 0.5])["peaks"] == []
    assert duration(12.0) == "12 minutes" and duration(0.2) == "12 seconds"


def test_neighbours_found_in_chunks_are_those_of_the_whole_matrix(monkeypatch):
    from tinyllm import export

    torch.manual_seed(0)
    vectors = torch.randn(23, 8)
    unit = F.normalize(vectors, dim=1)
    whole = unit @ unit.T - 2 * torch.eye(23)
    expected_values, expected_ids = torch.topk(whole, 5, dim=1)
    monkeypatch.setattr(export, "NEIGHBOUR_CHUNK", 4)  # 6 chunks, the last one short
    values, ids = export.nearest_neighbours(vectors, 5)
    assert torch.equal(ids, expected_ids)
    torch.testing.assert_close(values, expected_values)


def test_a_large_vocabulary_exports_without_its_square(tmp_path, monkeypatch):
    """Above SIMILARITY_MAX_VOCAB characters the V x V matrix is left out
    (null), the neighbours are still there, and the file grows linearly."""
    from tinyllm.data import corpus_from_bytes
    from tinyllm.export import SIMILARITY_MAX_VOCAB, export_run
    from tinyllm.train import train

    sizes = {}
    for vocab_size in (SIMILARITY_MAX_VOCAB + 44, 2 * (SIMILARITY_MAX_VOCAB + 44)):
        text = "".join(chr(0x4E00 + i) for i in range(vocab_size)) * 3
        run_dir = tmp_path / str(vocab_size)
        corpus = corpus_from_bytes(text.encode(), "han.txt")
        train(*tiny_configs(steps=2, eval_interval=2, block_size=8), corpus, run_dir)
        export_run(run_dir)
        emb = json.loads((run_dir / "export" / "embeddings.json").read_text())
        assert emb["similarity"] is None
        assert len(emb["neighbours"]) == vocab_size and len(emb["neighbours"][0]) == 5
        sizes[vocab_size] = (run_dir / "export" / "embeddings.json").stat().st_size
    small, large = sizes.values()
    assert large < 2.2 * small  # twice the characters: about twice the bytes, not four times

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("PEEK_KID_DIR", str(run_dir))  # the page, for this run
    monkeypatch.setenv("PEEK_RUNS_DIR", str(tmp_path / "no-runs"))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.switch_page("pages/embeddings.py").run()
    assert not at.exception
    assert any("too many to read" in info.value for info in at.info)


def test_log_rows_keep_characters_that_split_lines_elsewhere(tmp_path):
    """A sample may hold any character of the corpus: JSON leaves U+0085,
    U+2028 and U+2029 unescaped, and str.splitlines() would cut a row there."""
    from tinyllm.io import read_jsonl, write_jsonl

    rows = [dict(step=0, sample="a\x85b\u2028c\u2029d\re\x1cf\x0bg"), dict(step=1, sample="plain")]
    write_jsonl(tmp_path / "log.jsonl", rows)
    assert read_jsonl(tmp_path / "log.jsonl") == rows
