"""Moved to devtools/services.py (shared with the benchmarks); this name stays for the test
modules of branches still in flight. New code imports `from devtools import services`."""

from devtools.services import *  # noqa: F403
