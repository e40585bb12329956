"""A WSGI app for the operator tests: what the app sees of the client, and logging."""
import logging

log = logging.getLogger("opsapp")


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/log":
        log.info("request seen %s", environ.get("QUERY_STRING"))
        try:
            raise ValueError("logged on purpose")
        except ValueError:
            log.exception("with a traceback")
    body = f"{environ.get('REMOTE_ADDR')}|{environ['wsgi.url_scheme']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Out", "o1")])
    return [body]
