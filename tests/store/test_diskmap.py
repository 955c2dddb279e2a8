"""The on-disk map a survey keeps its per-domain and per-name state in, on hand-built keys."""

from __future__ import annotations

import pytest

from research.store.diskmap import DiskMap


def test_a_map_keeps_the_latest_value_of_each_key() -> None:
    with DiskMap[int](str, str) as m:
        m["mx.a.example", "192.0.2.1"] = 1
        m["mx.a.example", ""] = 2
        m["mx.a.example", "192.0.2.1"] = 3
        assert len(m) == 2
        assert m["mx.a.example", "192.0.2.1"] == 3
        assert m.get(("mx.a.example", "")) == 2
        assert m.get(("mx.b.example", "")) is None
        assert m.get(("mx.b.example", ""), 7) == 7
        assert ("mx.a.example", "") in m and ("mx.b.example", "") not in m
        with pytest.raises(KeyError):
            m["mx.b.example", "192.0.2.1"]


def test_iteration_is_in_python_key_order() -> None:
    # Python orders str by code point: upper case before lower, 'é' (U+00E9) after 'z', an
    # astral character after both; ints by value, negatives first.
    keys = [(10, "b"), (2, "z"), (2, "é"), (2, "Z"), (2, "\U0001f4e7"), (-1, "a"), (2, "ab")]
    with DiskMap[str](int, str) as m:
        for key in keys:
            m[key] = f"{key[0]}:{key[1]}"
        assert [k for k, _ in m.items()] == sorted(keys)
        assert list(m.values()) == [f"{r}:{t}" for r, t in sorted(keys)]
        assert [k for k, _ in m.items()][:2] == [(-1, "a"), (2, "Z")]


def test_a_single_column_key_may_be_given_bare() -> None:
    with DiskMap[None](str) as seen:
        assert seen.add("mx.a.example") is True
        assert seen.add("mx.a.example") is False
        assert seen.add(("mx.b.example",)) is True
        assert "mx.a.example" in seen and ("mx.b.example",) in seen and "mx.c" not in seen
        assert len(seen) == 2


def test_add_with_a_value_keeps_the_first() -> None:
    with DiskMap[int](str) as first_rank:
        assert first_rank.add("a.example", 3) is True
        assert first_rank.add("a.example", 3) is False  # the same value again is still a repeat
        assert first_rank.add("a.example", 9) is False
        assert first_rank["a.example"] == 3


def test_values_are_copies() -> None:
    with DiskMap[dict[str, list[int]]](str, int) as m:
        record = {"ciphers": [1, 2]}
        m["192.0.2.1", 25] = record
        record["ciphers"].append(3)
        got = m["192.0.2.1", 25]
        assert got == {"ciphers": [1, 2]}
        got["ciphers"].clear()
        assert m["192.0.2.1", 25] == {"ciphers": [1, 2]}


def test_many_writes_in_one_transaction_and_outside_one() -> None:
    with DiskMap[int](int) as m:
        with m.bulk():
            for i in range(5000):
                m[i % 1000] = i
        m[1000] = -1
        assert len(m) == 1001
        assert m[999] == 4999 and m[0] == 4000 and m[1000] == -1


def test_keys_of_the_wrong_shape_or_type_are_refused() -> None:
    with pytest.raises(TypeError):
        DiskMap(float)
    with pytest.raises(TypeError):
        DiskMap()
    with DiskMap[int](str, int) as m:
        with pytest.raises(KeyError):
            m["only-one-part"] = 1
        with pytest.raises(KeyError):
            m.get(("a", 1, "extra"))
