"""The model's serving cost: LiteRT time per digit through `recognition.Recognizer`, one thread.

Two ways a digit reaches the model: alone (batch 1, the canvas page's single digit) and in a
batch of 256 (a bulk job's chunk, a field's digits). Each is timed as the median of several
rounds over real MNIST test digits, after a warm-up, so one slow round (the machine is shared)
does not decide the figure. Prints a Markdown table with the machine's load average.

    .venv/bin/python benchmarks/model_latency.py models/default [models/candidate ...]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ROUNDS = 7
SINGLE_CALLS = 500  # batch-1 calls per round
BATCH, BATCHES = 256, 8  # batched: this many images per call, calls per round


def per_digit_ms(recognizer, images, batch: int, calls: int) -> tuple[float, float]:
    """Median over ROUNDS of the wall time and of the process CPU time per digit, in ms. On a
    shared machine the CPU time is the steadier figure: waiting for a core does not count."""
    walls, cpus = [], []
    recognizer.raw_probabilities(images[:batch])  # warm-up: interpreters allocated
    for r in range(ROUNDS):
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(calls):
            start = ((r * calls + i) * batch) % (len(images) - batch)
            recognizer.raw_probabilities(images[start : start + batch])
        walls.append((time.perf_counter() - wall) * 1000 / (calls * batch))
        cpus.append((time.process_time() - cpu) * 1000 / (calls * batch))
    return statistics.median(walls), statistics.median(cpus)


def measure(model_dir: Path, images) -> dict:
    from recognition.inference import Recognizer

    recognizer = Recognizer(model_dir, backend="litert", num_threads=1)
    return {
        "model": f"{model_dir} ({recognizer.version})",
        "single": per_digit_ms(recognizer, images, 1, SINGLE_CALLS),
        "batched": per_digit_ms(recognizer, images, BATCH, BATCHES),
    }


def main(argv: list[str] | None = None) -> int:
    from training import data as mnist

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_dirs", type=Path, nargs="+")
    args = parser.parse_args(argv)
    images = mnist.model_inputs(mnist.load_mnist().x_test[:4096])[..., 0]
    load = os.getloadavg()
    print(f"LiteRT, 1 thread, {os.cpu_count()} cores, load average {load[0]:.2f} (1 min)\n")
    print(f"| model | alone (batch 1): wall / CPU ms a digit | batch of {BATCH}: wall / CPU |")
    print("| --- | --- | --- |")
    for model_dir in args.model_dirs:
        row = measure(model_dir, images)
        cells = [f"{wall:.3f} / {cpu:.3f}" for wall, cpu in (row["single"], row["batched"])]
        print(f"| {row['model']} | {cells[0]} | {cells[1]} |", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
