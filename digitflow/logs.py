"""Logging for every process: one JSON object per line (python-json-logger), so an operator can
search by `job_id`, `document_ids`, `tenant_id`; or plain text (LOG_FORMAT=text).

Ids travel as `extra={"job_id": ...}` on the log call; nothing is parsed out of messages.
"""

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"


def configure_logging(log_format: str = "json", level: str = "INFO") -> None:
    """Replace the root logger's handlers with one on stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                JSON_FIELDS,
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery"):
        # Their own handlers would print a second, differently formatted line.
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
