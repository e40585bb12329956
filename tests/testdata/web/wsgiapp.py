"""WSGI apps for the web tests."""
import time
from wsgiref.validate import validator


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/echo":
        length = environ.get("CONTENT_LENGTH")
        body = environ["wsgi.input"].read(int(length)) if length else environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("X-Len", str(len(body)))])
        return [body]
    if path == "/environ":
        keys = ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL",
                "CONTENT_TYPE", "HTTP_X_TWICE", "wsgi.url_scheme"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["|".join(f"{k}={environ.get(k)}" for k in keys).encode("latin-1")]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"line {i}\n".encode() for i in range(3))
    if path == "/write":
        write = start_response("201 Created", [("Content-Type", "text/plain")])
        write(b"via write; ")
        return [b"then the iterable"]
    if path == "/boom":
        raise RuntimeError("boom")
    if path == "/slow":
        for _ in range(100):
            time.sleep(0.02)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


class Closing:
    """An iterable whose close() the server must call."""
    closed = 0

    def __init__(self):
        self.items = [b"a", b"b"]

    def __iter__(self):
        return iter(self.items)

    def close(self):
        Closing.closed += 1


def closing_app(environ, start_response):
    if environ["PATH_INFO"] == "/closed":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(Closing.closed).encode()]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Closing()


validated = validator(application)


LEFT = []


def leaving_client_app(environ, start_response):
    """/write writes 64 KiB pieces until write() fails, records what it
    raised, and lets it propagate; /yield yields pieces until the server
    closes the generator; /left reports what was recorded."""
    path = environ["PATH_INFO"]
    if path == "/left":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [" ".join(LEFT).encode()]
    if path == "/upload":  # reads until the client leaves
        try:
            while environ["wsgi.input"].read(65536):
                pass
        except Exception as e:
            LEFT.append(f"{type(e).__name__}:{isinstance(e, OSError)}")
            raise
        start_response("200 OK", [])
        return [b"whole"]
    write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
    if path == "/write":
        try:
            for _ in range(1 << 16):  # 4 GiB: the client leaves long before
                write(b"x" * 65536)
        except Exception as e:
            LEFT.append(f"{type(e).__name__}:{isinstance(e, OSError)}")
            raise
        return []

    def pieces():
        try:
            for _ in range(1 << 16):
                yield b"x" * 65536
        except GeneratorExit:
            LEFT.append("GeneratorExit")
            raise
    return pieces()
