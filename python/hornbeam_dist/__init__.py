"""Erlang-style distribution: connecting to nodes and pinging them.

This release provides the node's identity only; connect, ping and monitoring
arrive with the cluster layer.
"""

from hornbeam_erlang import node

__all__ = ["node"]
