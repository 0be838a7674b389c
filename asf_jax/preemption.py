"""When to stop for a preemption: one decision, at the same step, on every process.

Orbax saves are collective, so a multi-process job (a TPU pod, several GPU hosts) must stop at the
same step on every process or it deadlocks. With several processes, JAX's preemption sync manager
(through `CheckpointManager.reached_preemption`) handles SIGTERM: a notice to any process is
shared with all of them, and every process reaches the same sync step (one past the furthest step
any of them had reported). A single process has no such service; it uses its own SIGTERM handler.
Installing a Python handler in the multi-process case would hide the signal from JAX's, so it is
not installed there.
"""

from __future__ import annotations

import logging
import signal

import jax
import orbax.checkpoint as ocp


class Preemption:
    """`reached(step)`: True once a preemption notice means this step is the one to save at."""

    def __init__(self, manager: ocp.CheckpointManager):
        self._manager = manager
        self._signalled = False
        self._local = jax.process_count() == 1
        if self._local:
            self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        logging.warning("SIGTERM received: saving a checkpoint and stopping.")
        self._signalled = True

    def reached(self, step: int) -> bool:
        """Call once per step with the same step numbers on every process."""
        return self._signalled if self._local else self._manager.reached_preemption(step)

    def close(self) -> None:
        if self._local:
            signal.signal(signal.SIGTERM, self._previous or signal.SIG_DFL)
            self._local = False
