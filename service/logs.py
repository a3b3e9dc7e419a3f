"""Structured logs: one JSON object per line on stderr, with whatever fields the caller gave.

The logging module writes the service's and uvicorn's lines. The line every request leaves is
written by RequestLog instead, in the same shape: in the server, the logging module's path for it
(a record, a handler and its lock, a formatter, a text stream and its flush) cost more CPU than
anything else a small request does besides the model.
"""

import asyncio
import logging
import os
import time

import orjson

STDERR = 2  # the file descriptor
# uvicorn adds color_message, the message with ANSI colour codes, for its own console formatter.
_LEFT_OUT = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class _Clock:
    """Times as logging's default format writes them, the date and time formatted once a second."""

    second = -1
    stamp = ""

    def format(self, created: float) -> str:
        second = int(created)
        if second != self.second:
            self.stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self.second = second
        return f"{self.stamp},{int((created - second) * 1000):03d}"


_clock = _Clock()


def json_line(created: float, level: str, logger: str, message: str, fields: dict) -> bytes:
    entry = {"time": _clock.format(created), "level": level, "logger": logger, "message": message, **fields}
    return orjson.dumps(entry, default=str)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {key: value for key, value in vars(record).items() if key not in _LEFT_OUT}
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json_line(record.created, record.levelname.lower(), record.name, record.getMessage(), fields).decode()


class RequestLog:
    """The "request" line of a logger, at INFO, written to stderr when the logger is enabled for
    INFO (VAE_LOG_LEVEL). The lines of one turn of the event loop are written together, in one
    os.write at the end of the turn: under load, the requests of a model batch finish in the same
    turn, and a write to a log file cost more kernel time than the rest of a request's system calls.
    No line waits longer than the turn it was made in."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self._lines: list[bytes] = []

    def write(self, fields: dict) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        if not self._lines:
            asyncio.get_running_loop().call_soon(self._flush)
        self._lines.append(json_line(time.time(), "info", self.logger.name, "request", fields) + b"\n")

    def _flush(self) -> None:
        lines, self._lines = self._lines, []  # a line added while this one writes starts the next list
        pending = memoryview(b"".join(lines))
        try:
            while pending:  # a pipe may take a long write in parts
                pending = pending[os.write(STDERR, pending) :]
        except OSError:  # stderr closed or full: as the logging module does, the requests go on
            pass


def configure(level: str) -> dict:
    """The logging configuration for uvicorn and the service: JSON lines on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JSONFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "service": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }
