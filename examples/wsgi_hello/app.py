"""The smallest WSGI app: `hornbeam start app --pythonpath examples/wsgi_hello`.

Without an attribute hornbeam looks for `application`, and serves it as WSGI
(PEP 3333) because it is a plain function.
"""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, world!"]
