"""Atomic file writes: a crash leaves either the old file or the new one,
never half of one. Write to a temporary file beside the target, then rename
(os.replace is atomic on the same file system). And reads that take regular
files only: a FIFO or a device in a run folder is refused, never waited on."""

import errno
import io
import json
import os
import stat
import tempfile
from pathlib import Path

import torch


def atomic_write_bytes(path, data: bytes):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; these are ordinary outputs
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text: str):
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj, indent=None):
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False))


def atomic_torch_save(obj, path):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def open_regular(path, flags: int) -> int:
    """os.open(path, flags), but only a regular file: anything else (a FIFO,
    a device, a folder) raises OSError. Opened non-blocking, so that opening
    a FIFO returns at once (reading one would wait for a writer for ever)."""
    fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0), 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return fd


def read_regular(path, tail: int | None = None) -> bytes:
    """The bytes of a regular file (its last `tail` bytes if given); OSError
    for a missing file or anything that is not a regular file."""
    with os.fdopen(open_regular(path, os.O_RDONLY), "rb") as f:
        if tail is not None:
            f.seek(max(0, os.fstat(f.fileno()).st_size - tail))
        return f.read()


def read_jsonl(path) -> list:
    """Rows of a JSON-lines file; raises ValueError naming a damaged line."""
    rows = []
    # split on "\n" only: splitlines() also splits on characters that JSON
    # leaves unescaped inside strings (U+0085, U+2028, U+2029), as a sample may hold
    for n, line in enumerate(read_regular(path).decode("utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise ValueError(f"{path} line {n} is not valid JSON (truncated?)") from None
    return rows


def write_jsonl(path, rows):
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
