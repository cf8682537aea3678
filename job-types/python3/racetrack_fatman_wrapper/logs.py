"""Logging: one JSON object per line on stdout (default) or the classic text format.

``LOG_FORMAT=text`` gives ``[YYYY-MM-DD HH:MM:SS] LEVEL message``; ``LOG_LEVEL`` sets the level
(default ``INFO``). Every record made while a request is handled carries that request's tracing id.
"""

import contextvars
import datetime
import json
import logging
import os
import sys

# Tracing id of the request handled by the current thread (each request runs in its own thread).
tracing_id_var: contextvars.ContextVar = contextvars.ContextVar("racetrack_tracing_id", default=None)

LOGGER_NAME = "racetrack"

_LEVEL_NAMES = {
    logging.CRITICAL: "CRIT ",
    logging.ERROR: "ERROR",
    logging.WARNING: "WARN ",
    logging.INFO: "INFO ",
    logging.DEBUG: "DEBUG",
}


class _TracingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "tracing_id"):
            record.tracing_id = tracing_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message, tracing_id, logger, exception, extras."""

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "tracing_id"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        tracing_id = getattr(record, "tracing_id", None)
        if tracing_id:
            entry["tracing_id"] = tracing_id
        for key, value in record.__dict__.items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``[YYYY-MM-DD HH:MM:SS] LEVEL [tracing id] message``."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")
        level = _LEVEL_NAMES.get(record.levelno, record.levelname[:5].ljust(5))
        tracing_id = getattr(record, "tracing_id", None)
        prefix = f"[{tracing_id}] " if tracing_id else ""
        text = f"[{when}] {level} {prefix}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(log_format: str = None, level: str = None) -> logging.Logger:
    """Sets up the wrapper's logger (and the root logger, so user code's logs look the same)."""
    log_format = (log_format or os.environ.get("LOG_FORMAT") or "json").lower()
    level_name = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(TextFormatter() if log_format == "text" else JsonFormatter())
    handler.addFilter(_TracingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_racetrack", False):
            root.removeHandler(old)
    handler._racetrack = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(getattr(logging, level_name, logging.INFO))
    return logging.getLogger(LOGGER_NAME)


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


# Records of the wrapper's own logger carry the tracing id for any handler (tests included);
# the stdout handler's filter covers records of user code logged elsewhere.
if not any(isinstance(f, _TracingFilter) for f in get_logger().filters):
    get_logger().addFilter(_TracingFilter())
