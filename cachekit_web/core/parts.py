"""The parts a client shares with its background helpers (fleet publisher, Prometheus)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .data.codec import Codec
from .observe.metrics import Metrics
from .resilience.breaker import CircuitBreaker
from .resilience.pending import PendingDeletes
from .settings import Settings


@dataclass(frozen=True)
class Parts:
    """What a client's helpers read of it: they are handed these, never the client."""

    settings: Settings
    codec: Codec
    breaker: CircuitBreaker
    metrics: Metrics
    pending: PendingDeletes
    clock: Callable[[], float]  # wall clock, as the client reads it

    @property
    def namespace(self) -> str:
        """The client's NAMESPACE."""
        return self.settings.NAMESPACE
