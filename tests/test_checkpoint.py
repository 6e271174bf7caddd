import pytest
import torch
from forgeries import CHANGES, META, RESUME_CHANGES, forged, forged_resume, real_checkpoint

from tinyllm import checkpoint
from tinyllm.checkpoint import MAX_CHECKPOINT_BYTES, bytes_to_build, load_checkpoint, load_model, save_checkpoint
from tinyllm.data import Vocab
from tinyllm.errors import TinyLLMError
from tinyllm.model import GPT, GPTConfig, count_params


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


@pytest.mark.parametrize("change", CHANGES)
def test_a_forged_checkpoint_is_refused_before_anything_is_built(tmp_path, change):
    """A TinyLLMError, not a traceback; for the huge model, the long context
    and the stride-0 views, before allocating their gigabytes."""
    bad = tmp_path / "bad.pt"
    torch.save(forged(real_checkpoint(tmp_path / "model.pt"), change), bad)
    with pytest.raises(TinyLLMError, match="not a checkpoint this tinyllm can use"):
        load_model(bad)


def test_the_forgeries_are_forged_one_thing_at_a_time(tmp_path):
    """Unforged, the generator's checkpoint loads; with a resume state, it
    loads as resumable."""
    real_checkpoint(tmp_path / "model.pt")
    load_model(tmp_path / "model.pt")
    real_checkpoint(tmp_path / "latest.pt", resume=True)
    assert "resume" in load_checkpoint(tmp_path / "latest.pt", resumable=True)
    with pytest.raises(TinyLLMError, match="no state to resume from"):
        load_checkpoint(tmp_path / "model.pt", resumable=True)


@pytest.mark.parametrize("change", RESUME_CHANGES)
def test_a_forged_resume_state_is_refused(tmp_path, change):
    bad = tmp_path / "latest.pt"
    torch.save(forged_resume(real_checkpoint(tmp_path / "real.pt", resume=True), change), bad)
    with pytest.raises(TinyLLMError, match="not a checkpoint this tinyllm can use"):
        load_checkpoint(bad, resumable=True)


def test_the_bytes_a_model_makes_are_counted_before_it_is_made():
    """The kid's size is far inside the limit; a context of 12,000 with one
    head (a 576 MB mask) and 200 million parameters are far outside."""
    kid = GPTConfig()
    assert bytes_to_build(kid, 4 * count_params(kid)) < MAX_CHECKPOINT_BYTES / 10
    assert bytes_to_build(GPTConfig(vocab_size=6, block_size=12_000, n_embd=1, n_head=1, n_layer=1), 0) > 500 * 2**20
    wide = GPTConfig(vocab_size=6, block_size=8, n_embd=4096, n_head=1, n_layer=1)
    assert bytes_to_build(wide, 0) > 1.5e9


def test_a_file_or_metadata_too_large_is_refused_before_it_is_read(tmp_path, monkeypatch):
    _, _, path = saved(tmp_path)
    monkeypatch.setattr(checkpoint, "MAX_CHECKPOINT_BYTES", path.stat().st_size - 1)
    with pytest.raises(TinyLLMError, match="file is larger than"):
        load_checkpoint(path)
    monkeypatch.undo()
    monkeypatch.setattr(checkpoint, "MAX_METADATA_BYTES", 100)
    with pytest.raises(TinyLLMError, match="its metadata must be one record"):
        load_checkpoint(path)
