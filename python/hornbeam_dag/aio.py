"""The awaitable form of execute_distributed, for code already on an event loop.

    from hornbeam_dag import aio
    results = await aio.execute_distributed(dag, outputs=["report"])
"""

from typing import Any, Dict, Hashable, Optional, Sequence

from . import _scheduler
from ._dag import DAG


async def execute_distributed(dag: DAG, max_retries: int = 3, allocation: str = "load_balanced",
                              outputs: Optional[Sequence[Hashable]] = None,
                              timeout_ms: Optional[float] = None) -> Dict[Hashable, Any]:
    """``await``-able execute_distributed; same arguments, result and exceptions."""
    return await _scheduler.execute_distributed(dag, max_retries, allocation, outputs, timeout_ms)


__all__ = ["execute_distributed"]
