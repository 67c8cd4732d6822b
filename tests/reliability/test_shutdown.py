"""Graceful API shutdown: on SIGTERM readiness turns false at once while the server still
answers, and the process exits by itself after the drain."""

import signal
import time

import httpx
import pytest

from devtools.chaos import ApiServer

pytestmark = pytest.mark.slow


def test_sigterm_turns_readiness_false_before_the_server_stops(tmp_path):
    api = ApiServer(tmp_path, {"data_dir": tmp_path, "embedded_broker": "filesystem",
                               "shutdown_drain_seconds": 5})  # fmt: skip
    api.start()
    try:
        assert "shutdown" in httpx.get(f"{api.url}/ready").json()["checks"]
        api.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        ready = httpx.get(f"{api.url}/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["shutdown"].startswith("shutting down")
        assert httpx.get(f"{api.url}/health").status_code == 200  # still serving meanwhile
        # Then it stops on its own (uvicorn exits by re-raising the SIGTERM it handled).
        assert api.proc.wait(30) in (0, -signal.SIGTERM)
    finally:
        api.stop()
