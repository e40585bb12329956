"""Python's ``logging`` routed into the node's log.

At start the node makes :class:`NodeHandler` logging's last resort (the
handler of records that no configured handler takes) and sets the root
logger to the node's level (``--log-level``), so ``logging.getLogger(__name__)
.info(...)`` in an app shows in the node's log with its level, logger name and
process id, in the node's format (``--log-format text|json``); a traceback
(``logger.exception``) is one field. An app that configures logging itself
(``logging.basicConfig``, dictConfig) keeps its own handlers.
"""
import logging

import _hornbeam


class NodeHandler(logging.Handler):
    """Hands each record to the node's logger (in Go, without the GIL)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            exc = None
            if record.exc_info:
                exc = logging.Formatter().formatException(record.exc_info)
            elif record.exc_text:
                exc = record.exc_text
            if record.stack_info:
                exc = (exc + "\n" if exc else "") + record.stack_info
            _hornbeam.call("log", record.levelno, record.name, msg, exc)
        except Exception:
            self.handleError(record)


def install(level: int) -> None:
    """Route records no handler takes into the node's log, from ``level`` up."""
    logging.lastResort = NodeHandler(logging.DEBUG)
    logging.getLogger().setLevel(level)
