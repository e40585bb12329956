"""The host's Python side of serving web apps (internal: the CLI's `start APP`)."""

import importlib

_apps = {}


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
