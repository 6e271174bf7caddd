"""peek's package installed the plain way (`pip install .`, not editable),
then used from another folder: what it writes goes there, never beside the
installed package."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ["--steps", "10", "--eval-interval", "5", "--eval-batches", "1", "--block-size", "8", "--n-embd", "16"]
TRAIN += ["--n-head", "2", "--n-layer", "1", "--batch-size", "4", "--sample-chars", "8", "--quiet"]


def files(folder: Path) -> set:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


@pytest.mark.slow
def test_an_installed_tinyllm_writes_only_in_its_working_folder(tmp_path, tiny_text):
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copytree(ROOT / "tinyllm", source / "tinyllm", ignore=shutil.ignore_patterns("__pycache__"))
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet"]
    installed = subprocess.run([*pip, "--target", str(site), str(source)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    work = tmp_path / "work"
    work.mkdir()
    (work / "rhymes.txt").write_text(tiny_text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PEEK_", "TINYLLM_"))}
    env.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    before = files(site)

    def tinyllm(*args):
        result = subprocess.run(
            [sys.executable, "-m", "tinyllm", *args], cwd=work, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    tinyllm("train", "--data", "rhymes.txt", "--out", "run", *TRAIN)
    tinyllm("train", "--data", "rhymes.txt", *TRAIN)  # no --out: a new run in the runs folder
    assert files(site) == before  # nothing written beside the package
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "source", "work"]
    assert sorted(p.name for p in work.iterdir()) == ["artifacts", "rhymes.txt", "run"]
    assert (work / "run" / "model.pt").is_file()
    (new_run,) = (work / "artifacts" / "runs").iterdir()
    assert (new_run / "model.pt").is_file()
    where = subprocess.run(
        [sys.executable, "-c", "import tinyllm, tinyllm.data, tinyllm.runfolder as r; "
         "print(tinyllm.__file__); print(tinyllm.data.CACHE_DIR); print(r.runs_dir())"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    ).stdout.split("\n")  # fmt: skip
    assert Path(where[0]).is_relative_to(site)  # the installed copy ran, not the checkout
    assert Path(where[1]) == work / ".cache" and Path(where[2]) == work / "artifacts" / "runs"
