"""How long the export takes to write learning.json (the passage read by
every snapshot), on a copy of a run folder, and whether it writes the same
bytes as the run's own file.

    python -m bench.learning_speed [--run artifacts/kid] [--threads N]
"""

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / "artifacts" / "kid"), help="run folder to copy and export")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    import torch

    from tinyllm.export import export_run
    from tinyllm.runfolder import RunFolder

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, torch threads: {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(args.run, run)
        wall, cpu = time.perf_counter(), time.process_time()
        export_run(run, ["learning"])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        written = RunFolder(run).chapter("learning").read_bytes()
        print(f"export of learning.json: {wall:.1f} s wall, {cpu:.1f} s CPU, {len(written) / 1000:.0f} kB")
        own = RunFolder(args.run).chapter("learning")
        if own.is_file():  # the export is deterministic: the same bytes as the run's own file
            print(f"the same bytes as the run's own learning.json: {own.read_bytes() == written}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {rss:.0f} MB; load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
