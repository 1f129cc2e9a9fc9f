"""cachekit-web: a safe-by-default Redis cache for Django and Flask."""

from .core.client import DEFAULT, DEFERRED, AsyncCacheClient, CacheClient, Deferred, Result
from .core.data.codec import Entry
from .core.errors import (
    BackendAuthError,
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    CachekitError,
    CircuitOpenError,
    ClientClosedError,
    ConfigurationError,
    DeserializationError,
    IntegrityError,
    InvalidKeyError,
    LockTimeoutError,
    NodeUnreachableError,
    PoolExhaustedError,
    SerializationError,
    UnsupportedOperationError,
    ValueTooLargeError,
)
from .core.observe.health import HealthReport
from .core.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "DEFAULT",
    "DEFERRED",
    "AsyncCacheClient",
    "BackendAuthError",
    "BackendConnectionError",
    "BackendError",
    "BackendTimeoutError",
    "CacheClient",
    "CachekitError",
    "CircuitOpenError",
    "ClientClosedError",
    "ConfigurationError",
    "Deferred",
    "DeserializationError",
    "Entry",
    "HealthReport",
    "IntegrityError",
    "InvalidKeyError",
    "LockTimeoutError",
    "NodeUnreachableError",
    "PoolExhaustedError",
    "Result",
    "SerializationError",
    "Settings",
    "UnsupportedOperationError",
    "ValueTooLargeError",
    "__version__",
]
