"""PEP 3333 for the host: one call per request on a pool thread.

The host calls ``handle(req, environ)``. A response whose body is a list or
tuple (the common case) comes back whole in that return value; any other
iterable, and ``write()``, stream through ``_hornbeam.call('http_write', ...)``
so that memory stays bounded.
"""

import io
import sys

import _hornbeam

from . import _apps, load as _load


def load(spec):
    """Import ``module:attribute`` (attribute defaults to ``application``)."""
    return _load(spec, "application")


class Input(io.RawIOBase):
    """wsgi.input: the body the host read ahead, then the rest as the app asks.

    It ends where the body ends (``wsgi.input_terminated``), chunked or not.
    """

    def __init__(self, req, head):
        self._req = req
        self._head = memoryview(head)
        self._more = True

    def readable(self):
        return True

    def readinto(self, b):
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        if not self._more:
            return 0
        data, self._more = _hornbeam.call("http_read", self._req, len(b))
        b[: len(data)] = data
        return len(data)


class FileWrapper:
    """wsgi.file_wrapper: iterates a file in blocks; close() closes it."""

    def __init__(self, f, blksize=65536):
        self.f, self.blksize = f, blksize
        if hasattr(f, "close"):
            self.close = f.close

    def __iter__(self):
        while True:
            b = self.f.read(self.blksize)
            if not b:
                return
            yield b


def _check_headers(headers):
    out = []
    for h in headers:
        if not (isinstance(h, tuple) and len(h) == 2 and isinstance(h[0], str) and isinstance(h[1], str)):
            raise TypeError(f"WSGI headers must be (str, str) tuples, not {h!r}")
        out.append([h[0], h[1]])
    return out


def handle(req, app_spec, environ):
    """Run the app for one request; returns [status, headers, body, streamed]."""
    app = _apps.get(app_spec)
    if app is None:
        app = load(app_spec)
    body = environ.pop("hornbeam.body", b"")
    if environ.pop("hornbeam.more", False):
        environ["wsgi.input"] = io.BufferedReader(Input(req, body), 65536)
    else:
        environ["wsgi.input"] = io.BytesIO(body)  # the whole body came with the request
    environ["wsgi.input_terminated"] = True
    environ["wsgi.errors"] = sys.stderr
    environ["wsgi.version"] = (1, 0)
    environ["wsgi.multithread"] = True
    environ["wsgi.run_once"] = False
    environ["wsgi.file_wrapper"] = FileWrapper
    state = {"status": None, "headers": None, "sent": False}

    def send_headers():
        if not state["sent"]:
            _hornbeam.call("http_start", req, state["status"], state["headers"])
            state["sent"] = True

    def write(data):
        if state["status"] is None:
            raise AssertionError("write() before start_response()")
        if not isinstance(data, bytes):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        send_headers()
        _hornbeam.call("http_write", req, data)

    def start_response(status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if state["sent"]:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif state["status"] is not None:
            raise AssertionError("start_response() called twice without exc_info")
        if not isinstance(status, str) or len(status) < 4 or not status[:3].isdigit() or status[3] != " ":
            raise ValueError(f"bad WSGI status {status!r}")
        state["status"], state["headers"] = status, _check_headers(headers)
        return write

    result = app(environ, start_response)
    try:
        if isinstance(result, (list, tuple)) and not state["sent"]:
            body = b"".join(result)
            if state["status"] is None:
                raise AssertionError("the app returned without calling start_response()")
            return [state["status"], state["headers"], body, False]
        for chunk in result:
            if not isinstance(chunk, bytes):
                raise TypeError(f"the app yielded {type(chunk).__name__}, not bytes")
            if chunk:
                write(chunk)
        if state["status"] is None:
            raise AssertionError("the app returned without calling start_response()")
        send_headers()
        return [state["status"], state["headers"], b"", True]
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
