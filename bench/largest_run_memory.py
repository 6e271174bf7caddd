"""The largest run the server's default limits accept: does it export, and
does every page show it, within 600 MB of memory?

It trains (a few steps: memory does not grow with steps) a model at the
limits: as many distinct characters as PEEK_MAX_VOCAB allows, the largest
context (the form's, within PEEK_MAX_CONTEXT), layers and heads, and as wide as PEEK_MAX_PARAMS allows.
Then, each in its own process so that each peak is its own: the export, and
every page rendered with Streamlit's AppTest. Prints the peak resident
memory of each and the exported files' sizes.

    python -m bench.largest_run_memory
"""

import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from tinyllm.data import corpus_from_bytes
from tinyllm.jobs import Limits, largest_accepted
from tinyllm.model import GPTConfig, count_params
from tinyllm.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
BUDGET_MB = 600

RENDER_EVERY_PAGE = """
from streamlit.testing.v1 import AppTest
from ui import page_names
for name in page_names():
    at = AppTest.from_file({app!r}, default_timeout=300)
    at.switch_page(f"pages/{{name}}.py").run()
    assert not at.exception, (name, at.exception)
"""


def peak_mb(code: str, env: dict) -> float:
    """Peak RSS of a child Python running code, as the child itself reports it."""
    report = "\nimport resource\nprint('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    result = subprocess.run(
        [sys.executable, "-c", code + report], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(result.stderr[-2000:])
    return int(result.stdout.split("peak")[-1]) / 1024


def main():
    limits = Limits()
    settings = largest_accepted(limits)
    rng = random.Random(0)
    alphabet = [chr(c) for c in range(0x21, 0x21 + limits.max_vocab)]
    text = "".join(rng.choice(alphabet) for _ in range(60_000)) + "".join(alphabet)
    corpus = corpus_from_bytes(text.encode(), "every-character.txt")
    model_config = GPTConfig(dropout=0.0, **settings)
    train_config = TrainConfig(steps=20, eval_interval=10, batch_size=8, device="cpu")
    run_dir = Path(tempfile.mkdtemp(prefix="largest-")) / "largest"
    train(model_config, train_config, corpus, run_dir)
    params = count_params(GPTConfig(vocab_size=len(set(text)), dropout=0.0, **settings))
    print(f"settings {settings}, vocabulary {len(set(text))}, {params:,} parameters (limit {limits.max_params:,})")

    export_mb = peak_mb(f"from tinyllm.export import export_run; export_run({str(run_dir)!r})", {})
    sizes = sorted((p.stat().st_size / 1e6, p.name) for p in (run_dir / "export").glob("*.json"))
    print(
        f"export: peak RSS {export_mb:.0f} MB; files {sum(s for s, _ in sizes):.1f} MB, largest "
        + ", ".join(f"{name} {size:.1f} MB" for size, name in sizes[::-1][:3])
    )
    render_mb = peak_mb(RENDER_EVERY_PAGE.format(app=str(ROOT / "streamlit_app.py")), {"PEEK_KID_DIR": str(run_dir)})
    print(f"every page (AppTest): peak RSS {render_mb:.0f} MB")
    worst = max(export_mb, render_mb)
    print(f"{'within' if worst <= BUDGET_MB else 'OVER'} the {BUDGET_MB} MB budget (worst {worst:.0f} MB)")


if __name__ == "__main__":
    main()
