"""The error rollouts raise when asked for something the deployment's state does not allow."""

from __future__ import annotations

from conveyor.errors import ConveyorError

__all__ = ["RolloutError"]


class RolloutError(ConveyorError):
    """A rollout cannot do what was asked: none in progress, wrong state, unknown policy, ...

    The message names the deployment and its state, and the command that would help.
    """
