"""Machine learning on hornbeam nodes: cached inference and embedding models.

This release provides the node's identity only; caching, models and batching
arrive with the distributed ML layer.
"""

from hornbeam_erlang import node

__all__ = ["node"]
