"""Python-side tests run inside a node: `hornbeam run -m pytest tests/python`."""
