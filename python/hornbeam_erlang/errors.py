"""Exceptions raised by remote calls; all subclass RPCError (a RuntimeError)."""

from typing import Optional


class RPCError(RuntimeError):
    """A remote call failed."""


class RPCTimeout(RPCError, TimeoutError):
    """The call's timeout passed before its reply came."""


class NodeDown(RPCError, ConnectionError):
    """The node is unknown, unreachable, or went down during the call."""


class BadRPC(RPCError):
    """The module or function does not exist on the target node."""


class PayloadTooLarge(RPCError, ValueError):
    """The request or reply is over the cluster's payload limit (--max-payload)."""


class Busy(RPCError):
    """The target node could not take the call or cast: it serves as many as its
    bounds allow (calls and casts in flight, their bytes, or a batch queue).
    Nothing ran; try again later or elsewhere."""


class RemoteError(RPCError):
    """The called function raised on the remote node.

    Attributes: ``type`` (the exception's qualified class name), ``message``,
    ``traceback`` (formatted on the remote node) and ``node``.
    """

    type: str = ""
    message: str = ""
    traceback: str = ""
    node: Optional[str] = None


__all__ = ["RPCError", "RPCTimeout", "NodeDown", "BadRPC", "PayloadTooLarge", "Busy", "RemoteError"]
