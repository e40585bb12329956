"""The host's Python side of serving web apps (internal: the CLI's `start APP`)."""

import gc
import importlib
import inspect

_apps = {}


class ClientDisconnected(OSError):
    """The client closed its connection, so what the app sends can no longer
    reach it: raised by an ASGI ``send``, a websocket send, and a WSGI
    ``write`` or body read (a WSGI body the app yields is closed instead).
    It is an ``OSError``, as the ASGI
    specification asks of a send on a closed connection, so ``except
    OSError`` catches it. Left uncaught, the node logs it at debug level: a
    client that leaves is not the app's failure."""


def load(spec, default_attr):
    """Import ``module:attribute`` once (attribute defaults to ``default_attr``).

    A spec ending in ``()`` names a factory: it is called once, and what it
    returns is the app (``--factory``).
    """
    app = _apps.get(spec)
    if app is None:
        factory = spec.endswith("()")
        mod, _, attr = spec.removesuffix("()").partition(":")
        obj = importlib.import_module(mod)
        for part in (attr or default_attr).split("."):
            obj = getattr(obj, part)
        if factory:
            obj = obj()
        if not callable(obj):
            raise TypeError(f"{spec} is not callable")
        app = _apps[spec] = obj
    return app


def detect(spec):
    """Resolve a spec given without ``-k`` and tell which protocol the app speaks.

    Without an attribute, ``application`` is used if the module has one, else
    ``app``. The app is ASGI if calling it makes a coroutine (an ``async def``
    function, or an object whose ``__call__`` is one), else WSGI. Returns
    ``[resolved spec, "asgi" | "wsgi"]``.
    """
    factory = spec.endswith("()")
    mod, _, attr = spec.removesuffix("()").partition(":")
    if not attr:
        attr = "application" if hasattr(importlib.import_module(mod), "application") else "app"
    resolved = f"{mod}:{attr}" + ("()" if factory else "")
    app = load(resolved, attr)
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else getattr(type(app), "__call__", None)
    asgi = inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(getattr(call, "__func__", None))
    return [resolved, "asgi" if asgi else "wsgi"]


def check(spec, default_attr):
    """Import the app now (``-k`` given), so that a broken app stops the
    worker at start, before it replaces a good one, rather than failing
    every request."""
    load(spec, default_attr)


def freeze():
    """Collect what starting the app left behind, then move every object alive
    now (the app, its modules, the host's own) out of the cyclic garbage
    collector's reach (``gc.freeze``): they live as long as the process, and
    a full collection then scans only what requests allocate rather than the
    whole heap. ``gc.unfreeze()`` from the app undoes it."""
    gc.collect()
    gc.freeze()
