"""The host's Python side of serving web apps (internal: the CLI's `start APP`)."""
