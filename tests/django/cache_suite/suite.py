"""Django's BaseCacheTests, bound to CachekitCache (imported from Django's source at test time)."""

import os

from cache.tests import BaseCacheTests, caches_setting_for_tests  # Django's tests/cache
from django.test import TestCase, override_settings

MODE = os.environ["DJSUITE_MODE"]
OPTIONS = {"NAMESPACE": f"django-suite-{MODE}", "SOCKET_TIMEOUT": 2.0}
if MODE == "encrypted":
    OPTIONS["MASTER_KEY"] = bytes(range(0xab - 32, 0xab)).hex()
BASE = {
    "BACKEND": "cachekit_web.django.CachekitCache",
    "LOCATION": os.environ["DJSUITE_REDIS_URL"],
    "OPTIONS": OPTIONS,
}


# Redis has no MAX_ENTRIES culling: like Django's Redis tests, the cull aliases are left out.
@override_settings(CACHES=caches_setting_for_tests(base=BASE, exclude={"cull", "zero_cull"}))
class CachekitCacheTests(BaseCacheTests, TestCase):
    """Every BaseCacheTests test, run against CachekitCache."""

    def test_encryption_mode(self) -> None:
        from django.core.cache import cache

        self.assertEqual(cache.client.codec.keyring.encrypted, MODE == "encrypted")
        self.assertTrue(cache.client.codec.keyring.authenticated)


class HarnessSelfTest(TestCase):
    """Run alone (mode "selftest") to prove a failing test makes the runner exit non-zero."""

    def test_deliberate_failure(self) -> None:
        if MODE == "selftest":
            self.fail("deliberate failure: the harness must report it")
