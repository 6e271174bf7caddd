import pytest
import torch

from tinyllm.checkpoint import load_checkpoint, load_model, save_checkpoint
from tinyllm.data import Vocab
from tinyllm.errors import TinyLLMError
from tinyllm.model import GPT, GPTConfig

META = dict(
    train={},
    step=7,
    losses={"train": 1.0, "val": 2.0},
    corpus={"name": "x", "md5": "0" * 32, "chars": 10},
    elapsed_s=1.0,
    device="cpu",
)


def saved(tmp_path, half=False):
    torch.manual_seed(0)
    vocab = Vocab(list("abcdef"))
    model = GPT(GPTConfig(vocab_size=6, block_size=8, n_embd=16, n_head=2, n_layer=1)).eval()
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, vocab, META, half=half)
    return model, vocab, path


def test_round_trip_gives_the_same_model(tmp_path):
    model, vocab, path = saved(tmp_path)
    loaded, loaded_vocab, ckpt = load_model(path)
    idx = torch.tensor([[0, 1, 2, 3, 4, 5]])
    assert torch.equal(loaded(idx)[0], model(idx)[0])
    assert loaded_vocab.chars == vocab.chars and ckpt["step"] == 7
    # plain metadata only: loads without unpickling arbitrary objects
    raw = torch.load(path, weights_only=True)
    assert raw["config"]["n_embd"] == 16 and raw["format"] == "tinyllm-checkpoint"


def test_half_precision_snapshot_is_close(tmp_path):
    model, _, path = saved(tmp_path, half=True)
    assert torch.load(path, weights_only=True)["model"]["lm_head.weight"].dtype == torch.float16
    loaded, _, _ = load_model(path)
    idx = torch.tensor([[0, 1, 2]])
    torch.testing.assert_close(loaded(idx)[0], model(idx)[0], atol=1e-3, rtol=1e-2)


def test_missing_truncated_and_foreign_files(tmp_path):
    with pytest.raises(TinyLLMError, match="No checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")
    _, _, path = saved(tmp_path)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(TinyLLMError, match="truncated, damaged"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"hello, I am not a checkpoint")
    with pytest.raises(TinyLLMError, match="cannot be read"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(TinyLLMError, match="not a tinyllm checkpoint"):
        load_checkpoint(foreign)


def forged(ckpt: dict, change: str) -> dict:
    """The checkpoint with one thing wrong, as an untrusted file might have it."""
    ckpt = {**ckpt, "config": dict(ckpt["config"]), "model": dict(ckpt["model"])}
    if change == "config not a dict":
        ckpt["config"] = [1, 2]
    elif change == "an unknown config key":
        ckpt["config"]["n_experts"] = 8
    elif change == "a huge model claimed":  # small weights, a config of about 10**12 parameters
        ckpt["config"].update(n_embd=100_000, n_layer=100)
    elif change == "a size that is a string":
        ckpt["config"]["n_layer"] = "1"
    elif change == "vocab too short":
        ckpt["vocab"] = ckpt["vocab"][:-1]
    elif change == "vocab of words":
        ckpt["vocab"] = ["ab"] * len(ckpt["vocab"])
    elif change == "a weight missing":
        ckpt["model"].pop("lm_head.bias")
    elif change == "a weight reshaped":
        ckpt["model"]["lm_head.weight"] = ckpt["model"]["lm_head.weight"].T.contiguous()
    elif change == "step not a count":
        ckpt["step"] = "7"
    elif change == "no losses":
        del ckpt["losses"]
    return ckpt


@pytest.mark.parametrize(
    "change",
    [
        "config not a dict",
        "an unknown config key",
        "a huge model claimed",
        "a size that is a string",
        "vocab too short",
        "vocab of words",
        "a weight missing",
        "a weight reshaped",
        "step not a count",
        "no losses",
    ],
)
def test_a_forged_checkpoint_is_refused_before_anything_is_built(tmp_path, change):
    """A TinyLLMError, not a traceback; for the huge model, before allocating
    its terabytes (which would fail with a RuntimeError, not this)."""
    _, _, path = saved(tmp_path)
    bad = tmp_path / "bad.pt"
    torch.save(forged(torch.load(path, weights_only=True), change), bad)
    with pytest.raises(TinyLLMError, match="not a checkpoint this tinyllm can use"):
        load_model(bad)
