"""The corpus and the vocabulary: text in, integer ids out.

The kid reads characters, so its vocabulary is simply the sorted set of
characters in the corpus. tinyshakespeare is downloaded once and cached;
any UTF-8 text file can be used instead (`--data PATH` or TINYLLM_DATA).
"""

import hashlib
import os
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from tinyllm.errors import TinyLLMError
from tinyllm.io import atomic_write_bytes

TINYSHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TINYSHAKESPEARE_CHARS = 1_115_394
TINYSHAKESPEARE_MD5 = "6fb458f1232090904fb40fe944165e91"
# the download cache: $TINYLLM_CACHE, else .cache in the working folder (never beside the installed package)
CACHE_DIR = Path(os.environ.get("TINYLLM_CACHE", ".cache")).absolute()
TRAIN_FRACTION = 0.9  # first 90% train, last 10% validation: the standard split
SLICE_CHARS = 16_384  # a run keeps this many first characters of its validation split (corpus_facts)

DOWNLOAD_FAILED = "Could not download tinyshakespeare"  # how the message starts (the app recognises it)


class DownloadError(TinyLLMError):
    """tinyshakespeare could not be downloaded: the app offers an upload instead."""


@dataclass
class Corpus:
    text: str
    name: str  # "tinyshakespeare" or the file's name
    md5: str  # of the UTF-8 bytes, so a run records exactly what it read
    path: str


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def load_corpus(path=None) -> Corpus:
    """Read the corpus: `path`, else $TINYLLM_DATA, else the cached download."""
    path = path or os.environ.get("TINYLLM_DATA")
    if path:
        return read_text_file(Path(path))
    cached = CACHE_DIR / "tinyshakespeare.txt"
    if not cached.exists():
        download_tinyshakespeare(cached)
    return read_text_file(cached)


def read_text_file(path: Path) -> Corpus:
    if not path.is_file():
        raise TinyLLMError(f"No corpus file at {path}. Give an existing UTF-8 text file.")
    try:
        data = path.read_bytes()
    except OSError as e:  # a special file (/proc/self/mem), a vanished disk
        raise TinyLLMError(f"{path} cannot be read ({e.strerror}). Give a UTF-8 text file.") from None
    return corpus_from_bytes(data, path.name, str(path))


def corpus_from_bytes(data: bytes, name: str, path: str = "") -> Corpus:
    """Validate raw bytes as a training text (shared by the CLI and uploads)."""
    if b"\x00" in data:
        raise TinyLLMError(f"{name} looks like a binary file (it holds NUL bytes), not text.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TinyLLMError(f"{name} is not UTF-8 text (byte {e.start} cannot be decoded).") from None
    if not text:
        raise TinyLLMError(f"{name} is empty: the kid needs text to read.")
    if len(set(text)) < 2:
        # with one character there is nothing to choose: every loss is 0 and the pages have nothing to show
        what = "holds a single character" if len(text) == 1 else "holds only one distinct character"
        raise TinyLLMError(
            f"{name} {what}: there is nothing to guess, so nothing to learn. "
            "Give a text with at least two different characters."
        )
    md5 = md5_of(data)
    if md5 == TINYSHAKESPEARE_MD5:
        name = "tinyshakespeare"
    return Corpus(text=text, name=name, md5=md5, path=path)


def download_tinyshakespeare(dest: Path):
    try:
        with urllib.request.urlopen(TINYSHAKESPEARE_URL, timeout=30) as response:
            data = response.read()
    except OSError as e:
        raise DownloadError(
            f"{DOWNLOAD_FAILED} ({e}). Without a network connection, "
            "point tinyllm at a local copy: pass --data PATH/TO/input.txt or set "
            "TINYLLM_DATA=PATH/TO/input.txt (any UTF-8 text file works). "
            f"Or put the file at {dest} yourself."
        ) from None
    if len(data.decode("utf-8")) != TINYSHAKESPEARE_CHARS or md5_of(data) != TINYSHAKESPEARE_MD5:
        raise TinyLLMError(
            f"The download from {TINYSHAKESPEARE_URL} is not tinyshakespeare "
            f"(expected {TINYSHAKESPEARE_CHARS:,} characters, md5 {TINYSHAKESPEARE_MD5})."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dest, data)


class Vocab:
    """Characters <-> ids. The id of a character is its rank in sorted order."""

    def __init__(self, chars):
        self.chars = list(chars)
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        return cls(sorted(set(text)))

    def __len__(self):
        return len(self.chars)

    def unknown(self, text: str) -> list:
        """The characters of `text` the kid has never seen, in order of appearance."""
        return list(dict.fromkeys(ch for ch in text if ch not in self.stoi))

    def encode(self, text: str) -> list:
        missing = self.unknown(text)
        if missing:
            names = ", ".join(repr(ch) for ch in missing)
            raise TinyLLMError(f"These characters are not in the kid's vocabulary: {names}")
        return [self.stoi[ch] for ch in text]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def split_point(n: int) -> int:
    """Where validation starts in a corpus of n characters."""
    return int(TRAIN_FRACTION * n)


def split(ids: torch.Tensor):
    """First 90% for training, last 10% for validation."""
    n = split_point(len(ids))
    return ids[:n], ids[n:]


def printable(ch: str) -> str:
    """A name for a character that can be shown on screen."""
    return {"\n": "\\n", " ": "space", "\t": "\\t"}.get(ch, ch)


# --------------------------------------------------------------------------
# What a run keeps of its corpus (its corpus.json), so that reading the run needs no corpus


def prompt_starts(val_text: str, length: int, n: int = 3) -> list:
    """Where to cut n sample prompts from the validation text: just after a
    newline near 20%, 50% and 80% of it, so each starts at a line."""
    starts = []
    for fraction in [0.2, 0.5, 0.8][:n]:
        start = int(fraction * len(val_text))
        newline = val_text.find("\n", start, start + 500)
        start = newline + 1 if newline >= 0 else start
        starts.append(min(start, len(val_text) - length))
    return starts


def corpus_facts(corpus: Corpus, vocab: Vocab, block_size: int) -> dict:
    """What a run keeps of its corpus (corpus.json), so that whoever reads
    the run later (the export, the Head check) needs no corpus: its name
    and checksum, character counts, three validation passages
    of block_size + 1 characters (the model reads block_size of them; the
    last one is the answer to the final prediction), and the start of the
    validation split, where the feed-forward neurons' contexts are found."""
    counts = Counter(corpus.text)
    n_train = split_point(len(corpus.text))
    val_text = corpus.text[n_train:]
    prompts = [val_text[s : s + block_size + 1] for s in prompt_starts(val_text, block_size + 1)]
    return dict(
        name=corpus.name,
        md5=corpus.md5,
        chars=len(corpus.text),
        train_chars=n_train,
        val_chars=len(val_text),
        counts=[counts[ch] for ch in vocab.chars],
        prompts=prompts,
        val_slice=val_text[:SLICE_CHARS],
    )
