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
    # Plain stream handlers (a second format on the same terminal) go; others, such as a test
    # runner's capture handlers, stay.
    root.handlers[:] = [h for h in root.handlers if type(h) is not logging.StreamHandler]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery"):
        logger = logging.getLogger(name)
        if logger.handlers:  # its own handler would print a second, differently formatted line
            logger.handlers[:] = []
            logger.propagate = True
        # A logger without handlers that does not propagate was switched off on purpose
        # (uvicorn --no-access-log): it stays off.
