import urllib.request

import pytest
import torch

from tinyllm import data
from tinyllm.data import Vocab, corpus_from_bytes, load_corpus, split
from tinyllm.errors import TinyLLMError


def test_vocab_is_sorted_and_round_trips(tiny_text):
    vocab = Vocab.from_text(tiny_text)
    assert vocab.chars == sorted(set(tiny_text))
    ids = vocab.encode(tiny_text[:200])
    assert vocab.decode(ids) == tiny_text[:200]
    assert vocab.encode(vocab.chars[3]) == [3]


def test_unknown_characters_are_named():
    vocab = Vocab.from_text("abc")
    with pytest.raises(TinyLLMError, match=r"'z'.*'\?'"):
        vocab.encode("abz?z")
    assert vocab.unknown("abz?z") == ["z", "?"]


def test_split_is_first_90_percent_then_last_10():
    ids = torch.arange(1000)
    train_ids, val_ids = split(ids)
    assert len(train_ids) == 900 and len(val_ids) == 100
    assert train_ids[-1] == 899 and val_ids[0] == 900


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "is empty"),
        (b"a", "holds a single character"),  # not "empty"
        (b"\x00\x01\x02binary", "binary"),
        (b"\xff\xfe caf\xe9", "not UTF-8"),
    ],
)
def test_bad_corpus_files_are_refused(raw, message):
    with pytest.raises(TinyLLMError, match=message):
        corpus_from_bytes(raw, "upload.bin")


def test_local_file_and_environment_variable(tmp_path, monkeypatch):
    path = tmp_path / "mine.txt"
    path.write_text("to be or not to be", encoding="utf-8")
    assert load_corpus(str(path)).text == "to be or not to be"
    monkeypatch.setenv("TINYLLM_DATA", str(path))
    corpus = load_corpus()
    assert corpus.name == "mine.txt" and len(corpus.md5) == 32
    with pytest.raises(TinyLLMError, match="No corpus file"):
        load_corpus(str(tmp_path / "missing.txt"))


def test_offline_without_a_local_file_explains_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYLLM_DATA", raising=False)
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path)

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(TinyLLMError) as excinfo:
        load_corpus()
    assert "--data" in str(excinfo.value) and "TINYLLM_DATA" in str(excinfo.value)


def test_download_is_verified_and_cached(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYLLM_DATA", raising=False)
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path)

    class FakeResponse:
        def __init__(self, body):
            self.body = body

        def read(self):
            return self.body

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: FakeResponse(b"not shakespeare"))
    with pytest.raises(TinyLLMError, match="not tinyshakespeare"):
        load_corpus()
    assert not (tmp_path / "tinyshakespeare.txt").exists()
