"""The daemon's log lines: logfmt (the default) or JSON, one record a line."""

from __future__ import annotations

import json
import logging
import sys
from typing import IO

from bridge.core import times


class LogfmtFormatter(logging.Formatter):
    """One line per record, key=value, for people and for log shippers alike."""

    def format(self, record: logging.LogRecord) -> str:
        ts = times.format_ms(int(record.created * 1000))  # the one time formatter
        msg = record.getMessage()
        line = (f"ts={ts} level={record.levelname.lower()} "
                f"logger={record.name} msg={json.dumps(msg)}")
        if record.exc_info:
            line += f" exc={json.dumps(self.formatException(record.exc_info))}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line (for a journal or a log shipper that wants fields)."""

    def format(self, record: logging.LogRecord) -> str:
        ts = times.format_ms(int(record.created * 1000))
        out = {"ts": ts, "level": record.levelname.lower(),
               "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


LOG_FORMATS: dict[str, type[logging.Formatter]] = {"logfmt": LogfmtFormatter,
                                                   "json": JsonFormatter}


def setup_logging(level: str = "info", stream: IO[str] | None = None,
                  fmt: str = "logfmt") -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LOG_FORMATS[fmt]())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
