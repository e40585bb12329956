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
    """The target could not take the call, cast or message: a node serves as
    many calls and casts as its bounds allow (in flight, their bytes, or a batch
    queue), or a local process's mailbox is full (messages or bytes). Nothing
    ran and nothing was queued; try again later or elsewhere."""


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


# Processes (spawn, send, receive, ...).


class ReceiveTimeout(TimeoutError):
    """receive() found no (matching) message within its timeout."""


class ProcessExit(BaseException):
    """The calling process was ended by an exit signal: a linked process ended
    abnormally (and this one does not trap exits), exit(pid, reason) was sent
    to it, or the node is stopping (reason ``'shutdown'``). Raised at the next
    receive; like KeyboardInterrupt it is not an Exception, so that
    ``except Exception`` does not keep a dead process running.

    Attribute: ``reason``.
    """

    reason: str = ""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class ProcessLimit(RuntimeError):
    """The node runs its maximum of thread processes (--max-processes)."""


class NoProcess(LookupError):
    """No process has that pid or registered name on this node."""


__all__ += ["ReceiveTimeout", "ProcessExit", "ProcessLimit", "NoProcess"]
