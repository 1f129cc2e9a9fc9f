"""django-health-check (4.x) integration: ``CachekitHealthCheck(alias="default")``.

``HealthCheckView.as_view(checks=[..., ("cachekit_web.django.healthcheck.CachekitHealthCheck",
{"alias": "default"})])``. Importing this module requires django-health-check.
"""

from __future__ import annotations

import dataclasses

from django.core.cache import caches
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from .backend import CachekitCache


@dataclasses.dataclass
class CachekitHealthCheck(HealthCheck):  # type: ignore[misc]
    """Down -> ServiceUnavailable, degraded -> ServiceWarning, each with the error code."""

    alias: str = "default"

    def run(self) -> None:
        """Read the core HealthReport of the cache (ping, breaker, error rate)."""
        cache = caches[self.alias]
        if not isinstance(cache, CachekitCache):
            raise ServiceUnavailable(f"CACHES[{self.alias!r}] is not a CachekitCache")
        if cache.configuration_error is not None:
            exc = cache.configuration_error
            raise ServiceUnavailable(f"[{exc.code}] {exc.spec.title}")
        report = cache.health()
        if report.status == "down":
            code = (report.error or {}).get("code", "E030")
            raise ServiceUnavailable(f"[{code}] cache down ({report.backend})")
        if report.status == "degraded":
            codes = ", ".join(e["code"] for e in report.errors_explained()[:3]) or "-"
            raise ServiceWarning(f"cache degraded: breaker {report.breaker.get('state')}, "
                                 f"recent errors {codes}")
