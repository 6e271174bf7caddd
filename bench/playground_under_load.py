"""A visitor's playground while another visitor's run trains.

Writes 500 characters with the committed kid, as the Playground page does
(in this process, like the server, with the server's torch threads),
three times: with nothing else running,
while a quick run trains the way the app starts it (half the cores, lower
priority: tinyllm/jobs.py), and while it trains with every core at normal
priority (how the app started runs before). Prints characters per second.

    python -m bench.playground_under_load [--data ../shared/data/tinyshakespeare/input.txt]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def chars_per_second(kid, vocab, repeats=3) -> float:
    from tinyllm.sample import SampleSettings, generate

    speeds = []
    for seed in range(repeats):
        started = time.perf_counter()
        n = sum(1 for _ in generate(kid, vocab, "ROMEO:\n", SampleSettings(length=500, seed=seed), n_top=8))
        speeds.append(n / (time.perf_counter() - started))
    return statistics.median(speeds)


def while_training(kid, vocab, name: str) -> float:
    from tinyllm import jobs

    runner = jobs.TrainingJobs()
    runner.start(name, jobs.PRESETS["quick"])
    time.sleep(8)  # past start-up: torch imported, the corpus read, training steps running
    speed = chars_per_second(kid, vocab)
    runner.stop()
    runner.proc.wait(timeout=120)
    return speed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-threads", type=int, default=1, help="torch threads of the server (the app: 1)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"))
    args = parser.parse_args()
    os.environ["TINYLLM_DATA"] = str(Path(args.data).resolve())
    os.environ["PEEK_RUNS_DIR"] = tempfile.mkdtemp(prefix="peek-bench-runs-")
    import torch

    from tinyllm import jobs
    from tinyllm.checkpoint import load_model

    kid, vocab, _ = load_model(ROOT / "artifacts" / "kid" / "model.pt")
    torch.set_num_threads(args.server_threads)
    print(f"{os.cpu_count()} cores; the server process uses {torch.get_num_threads()} thread(s)")
    chars_per_second(kid, vocab, repeats=1)  # warm up
    idle = chars_per_second(kid, vocab)
    print(f"idle:                                   {idle:6.0f} chars/s")
    capped = while_training(kid, vocab, "capped")
    print(
        f"a quick run training, as the app runs it ({jobs.TRAINING_THREADS} thread(s), nice {jobs.NICENESS}): "
        f"{capped:6.0f} chars/s = {capped / idle:.0%} of idle"
    )
    jobs.TRAINING_THREADS, jobs.NICENESS = None, 0
    os.environ.pop("OMP_NUM_THREADS", None)
    uncapped = while_training(kid, vocab, "uncapped")
    print(f"a quick run training, every core, normal priority: {uncapped:6.0f} chars/s = {uncapped / idle:.0%} of idle")


if __name__ == "__main__":
    main()
