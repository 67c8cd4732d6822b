"""Prometheus metrics shared by the API and the workers (prometheus-client).

Both run several processes (uvicorn/gunicorn workers, Celery's prefork children), so when
PROMETHEUS_MULTIPROC_DIR is set, every process writes its samples to files there and a scrape
adds them up (prometheus-client's multiprocess mode). `digitflow run` sets it for its children;
in Kubernetes each pod sets its own (an emptyDir). Without it, each process reports its own.
"""

import os
import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The model a process serves, as a label (1 per process that loaded it).
MODEL_VERSION = Gauge(
    "digitflow_model_info",
    "The model version a process serves (value 1)",
    ["component", "version"],
    multiprocess_mode="max",
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def scrape_registry() -> CollectorRegistry | None:
    """A registry that adds up every process's samples; None outside multiprocess mode (then
    the default registry holds this process's own)."""
    folder = multiprocess_dir()
    if folder is None:
        return None
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)
    return registry


def reset_multiprocess_dir(folder: Path) -> None:
    """An empty folder for a fresh set of processes: stale files would add old counts."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def process_exited(pid: int) -> None:
    """Drop a dead process's live gauges (counters and histograms keep their totals)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)
