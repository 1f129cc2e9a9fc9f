"""Run Django's cache test suite against CachekitCache; exit status 0 only if all ran and passed.

Usage: python -m tests.django.cache_suite.run DJANGO_TESTS_DIR REDIS_URL MODE [LABEL]
(MODE: encrypted | signed | selftest). Prints one summary line starting with SUITE-RESULT.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    tests_dir, url, mode = argv[:3]
    label = argv[3] if len(argv) > 3 else "tests.django.cache_suite.suite.CachekitCacheTests"
    sys.path.insert(0, tests_dir)
    os.environ["DJSUITE_REDIS_URL"] = url
    os.environ["DJSUITE_MODE"] = mode
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.django.cache_suite.settings"
    import django
    from django.test.runner import DiscoverRunner

    django.setup()
    runner = DiscoverRunner(verbosity=1, interactive=False)
    runner.setup_test_environment()
    suite = runner.build_suite([label])
    old = runner.setup_databases()
    try:
        result = runner.run_suite(suite)
    finally:
        runner.teardown_databases(old)
        runner.teardown_test_environment()
    print(f"SUITE-RESULT mode={mode} ran={result.testsRun} failures={len(result.failures)} "
          f"errors={len(result.errors)} skipped={len(result.skipped)} "
          f"unexpected_successes={len(result.unexpectedSuccesses)}", flush=True)
    return 0 if result.wasSuccessful() and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
