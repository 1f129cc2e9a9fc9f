"""On-demand benchmarks for cachekit-web: run ``python -m benchmarks`` (never part of the tests).

Every section compares cachekit-web with its alternatives in the same run and
prints medians over several repeats and ratios, because the machines are small
and noisy. A private redis-server is started on a free loopback port for the
network sections; nothing else is contacted.
"""
