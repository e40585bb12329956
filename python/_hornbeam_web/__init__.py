"""The host's Python side of serving web apps (internal: the CLI's `start APP`)."""

import importlib

_apps = {}


def load(spec, default_attr):
    """Import ``module:attribute`` once (attribute defaults to ``default_attr``)."""
    app = _apps.get(spec)
    if app is None:
        mod, _, attr = spec.partition(":")
        obj = importlib.import_module(mod)
        for part in (attr or default_attr).split("."):
            obj = getattr(obj, part)
        if not callable(obj):
            raise TypeError(f"{spec} is not callable")
        app = _apps[spec] = obj
    return app
