"""Atomic file writes: a crash leaves either the old file or the new one,
never half of one. Write to a temporary file beside the target, then rename
(os.replace is atomic on the same file system)."""

import io
import json
import os
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


def read_jsonl(path) -> list:
    """Rows of a JSON-lines file; raises ValueError naming a damaged line."""
    rows = []
    # split on "\n" only: splitlines() also splits on characters that JSON
    # leaves unescaped inside strings (U+0085, U+2028, U+2029), as a sample may hold
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise ValueError(f"{path} line {n} is not valid JSON (truncated?)") from None
    return rows


def write_jsonl(path, rows):
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
