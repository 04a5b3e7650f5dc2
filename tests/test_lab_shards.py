"""tests/lab/shards.py: the lab's tests split between guests by whole modules, balanced, in order."""

from __future__ import annotations

from pathlib import Path

from lab.shards import MODULE_MINUTES, split

REPO = Path(__file__).resolve().parents[1]


def test_modules_stay_whole_balanced_and_in_collection_order() -> None:
    ids = ([f"tests/live/test_ansible.py::t{i}" for i in range(5)] + ["tests/live/test_try.py::a", "tests/live/test_try.py::b"]
           + ["tests/live/test_networkd.py::x", "tests/live/test_new.py::n1", "tests/live/test_new.py::n2"]
           + ["tests/live/test_faults_live.py::f"])
    groups = split(ids, 2)
    assert sorted(i for g in groups for i in g) == list(range(len(ids)))       # each test once
    assert all(g == sorted(g) for g in groups)                                  # collection order kept
    by_module = {ids[i].split("::")[0]: k for k, g in enumerate(groups) for i in g}
    for k, g in enumerate(groups):
        assert all(by_module[ids[i].split("::")[0]] == k for i in g)           # a module in one guest only
    assert by_module["tests/live/test_ansible.py"] != by_module["tests/live/test_try.py"]   # the two costliest apart


def test_one_guest_or_one_module_is_one_group() -> None:
    ids = ["tests/live/test_try.py::a", "tests/live/test_verify.py::b"]
    assert split(ids, 1) == [[0, 1]]
    assert split(ids[:1], 4) == [[0]]


def test_every_weighted_module_exists() -> None:
    """A renamed module would silently fall back to the per-test default and unbalance the guests."""
    assert [m for m in MODULE_MINUTES if not (REPO / m).is_file()] == []


def test_vcpus_two_alone_one_beside_another_guest_two_for_the_fleet() -> None:
    from lab.shards import cpus_for

    assert cpus_for(["tests/live/test_try.py::a"], alone=True) == 2
    assert cpus_for(["tests/live/test_try.py::a"], alone=False) == 1
    assert cpus_for(["tests/live/test_try.py::a", "tests/live/test_ansible.py::b"], alone=False) == 2
