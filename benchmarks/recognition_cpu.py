"""CPU a document spends in the recognition core, in-process: what a bulk worker pays per
document before the database, and what the sync path pays before the framework.

Counts process CPU time (`time.process_time`), not wall-clock, so a shared machine's load
changes it less (not nothing: two hyperthreads share a core). Single-threaded OpenCV, as the
workers and the API run it.

- `digits`: the bulk benchmark's documents (MNIST test digits as 56x56 scan PNGs,
  `devtools.scans.scan_png`): `segment_image`, then the model call in batches of 64;
- `fields`: cheque amounts scanned at 300 dpi (`training.synthetic_fields.scan_spec`, 1-7
  digits, half boxed, half JPEG), and `five`: 5-digit fields at 300 dpi; the same, plus the
  median wall-clock time of reading one field alone (segment + model), as the sync path does.

`--tree DIR` measures another checkout's recognition core (e.g. main's, for a before/after:
`--tree /work/main --json before.json`, then `--before before.json --write`). On a shared
machine whose speed drifts between runs, `--against DIR --rounds 6` is the fairer before/after:
one process per checkout, each loaded once, measuring in turn (the order swapped every round),
so both see the same spells of load; it reports each side's median and the ratio per round.

    .venv/bin/python benchmarks/recognition_cpu.py [--count 2000] [--fields 300] [--write]
"""

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BATCH = 64


def cpu_per_document(documents: list[bytes], core) -> dict:
    """Milliseconds of CPU a document: segmenting, and the model call in batches of BATCH."""
    segment = read = 0.0
    for start in range(0, len(documents), BATCH):
        began = time.process_time()
        segmentations = [core.segment_image(d) for d in documents[start : start + BATCH]]
        middle = time.process_time()
        core.read_segmentations(segmentations, core.recognizer)
        segment, read = segment + middle - began, read + time.process_time() - middle
    scale = 1000 / len(documents)
    return {"segment_ms": segment * scale, "read_ms": read * scale,
            "total_ms": (segment + read) * scale}  # fmt: skip


def one_at_a_time_p50(documents: list[bytes], core) -> float:
    """Median wall-clock ms to read one field alone (segment + one model call)."""
    times = []
    for data in documents:
        began = time.perf_counter()
        core.read_segmentations([core.segment_image(data)], core.recognizer)
        times.append((time.perf_counter() - began) * 1000)
    return float(np.median(times))


def documents(count: int, field_count: int) -> dict[str, list[bytes]]:
    from devtools.mnist import mnist_test_set
    from devtools.scans import scan_png
    from training.synthetic_fields import fields, render_field, scan_spec

    images, labels = mnist_test_set()
    rng = np.random.default_rng(5555)
    return {
        "digits": [scan_png(images[i]) for i in range(count)],
        "fields": [f.image for f in fields("scan300", field_count, images, labels, seed=3003)],
        "five": [render_field(scan_spec(rng, count=5), images, labels, rng).image
                 for _ in range(field_count)],
    }  # fmt: skip


def measure(sets: dict[str, list[bytes]], core) -> dict:
    results = {}
    for name, docs in sets.items():
        cpu_per_document(docs[:50], core)  # warm up
        result = cpu_per_document(docs, core)
        if name != "digits":
            result["p50_alone_ms"] = one_at_a_time_p50(docs[:100], core)
        results[name] = {"count": len(docs), **result}
        print(name, {k: round(v, 3) for k, v in results[name].items()}, flush=True)
    return results


def serve(sets: dict[str, list[bytes]], core) -> None:
    """Measure one round of every set each time a line arrives on stdin (for `--against`)."""
    for docs in sets.values():
        cpu_per_document(docs[:50], core)  # warm up
    print("ready", flush=True)
    for _ in sys.stdin:
        print(json.dumps({name: cpu_per_document(d, core) for name, d in sets.items()}), flush=True)


def alternate(args: argparse.Namespace) -> dict:
    """`--against`: this checkout's core and another's, in turn, `--rounds` times each."""
    trees = {"before": args.against, "after": args.tree}
    command = [sys.executable, __file__, "--serve", "--count", str(args.count),
               "--fields", str(args.fields), "--sets", *args.sets]  # fmt: skip
    procs = {side: subprocess.Popen([*command, "--tree", str(tree)], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
             for side, tree in trees.items()}  # fmt: skip
    for proc in procs.values():
        assert proc.stdout.readline().strip() == "ready"
    rounds = {side: [] for side in procs}
    for k in range(args.rounds):
        for side in ("before", "after") if k % 2 == 0 else ("after", "before"):
            procs[side].stdin.write("go\n")
            procs[side].stdin.flush()
            rounds[side].append(json.loads(procs[side].stdout.readline()))
    for proc in procs.values():
        proc.stdin.close()
        proc.wait()
    return rounds


def alternate_report(rounds: dict, load: tuple[float, float]) -> str:
    lines = [f"1-minute load average before / after: {load[0]:.2f} / {load[1]:.2f}"]
    for name in rounds["after"][0]:
        for key in ("segment_ms", "read_ms", "total_ms"):
            before = [r[name][key] for r in rounds["before"]]
            after = [r[name][key] for r in rounds["after"]]
            ratios = [a / b for a, b in zip(after, before, strict=True)]
            lines.append(
                f"{name} {key}: before median {statistics.median(before):.3f}, after median "
                f"{statistics.median(after):.3f}; after/before per round "
                f"{' '.join(f'{r:.3f}' for r in ratios)} (median {statistics.median(ratios):.3f})"
            )
    return "\n".join(lines)


def cell(after: dict, before: dict | None, key: str) -> str:
    if key not in after:
        return ""
    if before and key in before:
        return f"{before[key]:.2f} → **{after[key]:.2f}**"
    return f"**{after[key]:.2f}**"


def report(after: dict, before: dict | None, load: tuple[float, float]) -> str:
    rows = []
    what = {"digits": "single digit, 56x56 scan PNG (the bulk benchmark's)",
            "fields": "cheque amount scanned at 300 dpi (1-7 digits, half JPEG)",
            "five": "5-digit field scanned at 300 dpi"}  # fmt: skip
    for name, r in after.items():
        was = (before or {}).get(name)
        cells = [cell(r, was, k) for k in ("segment_ms", "read_ms", "total_ms", "p50_alone_ms")]
        rows.append(f"| {what[name]} | {r['count']:,} | {' | '.join(cells)} |")
    return f"""`benchmarks/recognition_cpu.py`: process CPU a document in the recognition core,
in-process (decode + `segment_image`, then `read_segmentations` in batches of {BATCH}), OpenCV
single-threaded; p50 alone = median wall-clock ms to read one field by itself (segment + one
model call). {
        "Before → after: main's core, then this tree's, measured back to back. " if before else ""
    }1-minute load average before / after: {load[0]:.2f} / {load[1]:.2f} (a shared 2-core
machine: CPU times rise with the load, as hyperthreads share a core).

| documents | count | segment CPU ms | read CPU ms | total CPU ms | p50 alone (ms) |
| --- | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="single-digit documents")
    parser.add_argument("--fields", type=int, default=300, help="300 dpi fields of each kind")
    parser.add_argument("--tree", type=Path, default=REPO, help="the checkout to measure")
    parser.add_argument("--profile", choices=("digits", "fields", "five"), default=None)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--before", type=Path, help="figures of an earlier run, to compare")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--against", type=Path, help="checkout to alternate with (before)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds each, with --against")
    parser.add_argument("--sets", nargs="+", default=["digits", "fields", "five"],
                        choices=["digits", "fields", "five"])  # fmt: skip
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.against:
        load = os.getloadavg()[0]
        rounds = alternate(args)
        print(alternate_report(rounds, (load, os.getloadavg()[0])))
        if args.json:
            args.json.write_text(json.dumps(rounds, indent=2))
        return 0
    sys.path.insert(0, str(args.tree.resolve()))
    sys.path.insert(1, str(REPO))
    import cv2

    import recognition as core

    cv2.setNumThreads(1)
    core.recognizer = core.Recognizer(args.tree / "models" / "default")
    sets = {k: v for k, v in documents(args.count, args.fields).items() if k in args.sets}
    if args.serve:
        serve(sets, core)
        return 0
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [core.segment_image(d) for d in sets[args.profile]])
        pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime")).print_stats(30)
        return 0
    load = os.getloadavg()[0]
    results = measure(sets, core)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.write:
        from devtools.report import write_section

        before = json.loads(args.before.read_text()) if args.before else None
        body = report(results, before, (load, os.getloadavg()[0]))
        write_section("recognition-cpu", "Recognition core: CPU a document", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
