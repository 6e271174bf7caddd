"""Knock it out: how long one live knock-out and the exported table take.

    python -m bench.knockout_speed [--run artifacts/kid] [--repeats 20]

Prints the server-side time of one knock-out (tinyllm.knockout.knock_out:
the kid on a text of block_size characters with everything on and with
parts off, the top 5 at a position and both losses), what The whole kid
computes when a reader changes what is switched off, and the time of the
export's table (knockout_table on the validation slice).
"""

import argparse
import json
import statistics
import time

import torch

from tinyllm.checkpoint import load_model
from tinyllm.knockout import Off, knock_out, knockout_table
from tinyllm.runfolder import RunFolder


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="artifacts/kid", help="the run folder")
    parser.add_argument("--repeats", type=int, default=20, help="live knock-outs timed")
    args = parser.parse_args()

    folder = RunFolder(args.run)
    model, vocab, _ = load_model(folder.model)
    facts = json.loads(folder.corpus.read_text(encoding="utf-8"))
    T = model.config.block_size
    text = facts["prompts"][0][:T]
    off = Off(heads=((0, 0),), ffwd=(model.config.n_layer - 1,), positions=True)
    print(f"{model.num_params():,} parameters, {torch.get_num_threads()} threads, a text of {len(text)} characters")
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        knock_out(model, vocab, text, T // 2, off)
        times.append(time.perf_counter() - t0)
    print(f"one live knock-out: median {statistics.median(times) * 1000:.1f} ms, fastest {min(times) * 1000:.1f} ms")
    t0 = time.perf_counter()
    table = knockout_table(model, vocab, facts["val_slice"])
    runs = 2 + model.config.n_layer * (model.config.n_head + 1)
    print(
        f"the exported table: {time.perf_counter() - t0:.1f} s for {runs} losses on {table['slice_chars']:,} characters"
    )


if __name__ == "__main__":
    main()
