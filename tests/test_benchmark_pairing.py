"""How benchmarks.local pairs what a reader process saw with the writes (no timing: the
reads and writes are given)."""

from __future__ import annotations

import pytest

from benchmarks.local import pair

# The key starts absent; 1 and 2 are set, 3 deletes, 4 is set, 5 deletes, 6 is set.
WRITES: list[tuple[object, float]] = [(None, 0.0), (1, 1.0), (2, 2.0), (None, 3.0), (4, 4.0),
                                      (None, 5.0), (6, 6.0)]


def test_a_value_read_after_its_replacement_returned_is_stale() -> None:
    runs = [[None, 0.1, 0.5], [1, 1.1, 2.3], [2, 2.4, 2.9], [None, 3.1, 3.9], [4, 4.1, 4.9],
            [None, 5.1, 5.9], [6, 6.1, 6.2]]
    stale, _ = pair(runs, WRITES)
    assert stale == pytest.approx([0.0] * 5 + [0.3])  # 1 was read 0.3 after 2 returned


def test_two_deletes_read_as_one_run_are_not_stale() -> None:
    # The reader saw the delete of write 3, was descheduled through write 4, and next read
    # the delete of write 5: one run of None from 3.1 to 5.2. Nothing it read was replaced
    # when it read it.
    runs = [[None, 0.1, 0.5], [1, 1.1, 1.9], [2, 2.1, 2.9], [None, 3.1, 5.2], [6, 6.1, 6.2]]
    stale, to_new = pair(runs, WRITES)
    assert stale == [0.0] * 4
    assert max(to_new) < 0.2


def test_a_delete_seen_after_missing_everything_since_the_previous_one() -> None:
    # The reader last saw 2, missed 3 and 4, and read the delete of write 5.
    runs = [[None, 0.1, 0.5], [1, 1.1, 1.9], [2, 2.1, 2.9], [None, 5.1, 5.5], [6, 6.1, 6.2]]
    stale, to_new = pair(runs, WRITES)
    assert stale == [0.0] * 4
    assert max(to_new) < 0.2
