"""Split the kernel tests between several lab VMs, whole modules at a time, balanced by rough cost.

Why: the lab is most of CI's time, and under TCG a guest with one vCPU runs these tests about as
fast as one with two (one Python process at a time, mostly), so two 1-vCPU guests side by side
on this 2-core machine finish in about half the time. A module never spans guests: its
module-scoped fixtures (the fleet) are built once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

#: Minutes each test module took in the lab run of 2026-12-01 22:00 (two guests side by side: the
#: fleet with two vCPUs, the rest with one), only to balance the guests: a module missing here
#: counts DEFAULT_TEST_MINUTES per test.
MODULE_MINUTES: dict[str, float] = {
    "tests/live/test_ansible.py": 60.7,      # 29 alone: beside the other guest about twice that
    "tests/live/test_try.py": 20.1,
    "tests/live/test_faults_live.py": 9.0,
    "tests/live/test_networkmanager.py": 6.9,
    "tests/live/test_networkd.py": 6.7,
    "tests/live/test_kernel_backend.py": 6.4,
    "tests/live/test_bond_mac.py": 6.3,
    "tests/live/test_metrics.py": 4.5,
    "tests/live/test_package.py": 2.8,
    "tests/live/test_ipv6_only.py": 2.6,
    "tests/live/test_lab_smoke.py": 1.4,
    "tests/live/test_check_paths.py": 1.4,
    "tests/live/test_verify.py": 1.4,
    "tests/live/test_unequal_paths.py": 6.0,  # 2026-12-02: 306 + 202 s with three guests running, about 6 with two
}
DEFAULT_TEST_MINUTES = 1.0

#: Modules that need a guest with two vCPUs beside another guest: the fleet's three routers install
#: the .deb with apt at once, and on one vCPU its first play outran its 15-minute limit.
MODULE_CPUS: dict[str, int] = {"tests/live/test_ansible.py": 2}


def cpus_for(ids: Sequence[str], alone: bool) -> int:
    """vCPUs for the guest that runs ``ids``: 2 alone; beside another guest 1 (under TCG a guest
    with one vCPU runs most tests as fast as with two, and two 2-vCPU guests each ran 2-3x
    slower), or 2 for a module in MODULE_CPUS."""
    if alone:
        return 2
    return max([1, *(MODULE_CPUS.get(module_of(i), 1) for i in ids)])


def default_vms() -> int:
    """Two guests where two fit (2 CPUs, 6 GiB: each guest has 2 GiB), else one; $GREBOND_LAB_VMS decides."""
    wanted = os.environ.get("GREBOND_LAB_VMS")
    if wanted:
        return max(1, int(wanted))
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = 0
    return 2 if (os.cpu_count() or 1) >= 2 and memory >= 6 << 30 else 1


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def split(ids: Sequence[str], vms: int) -> list[list[int]]:
    """Indexes into ``ids`` in at most ``vms`` groups of whole modules: the costliest module first,
    each to the least loaded group; each group keeps the collection order."""
    modules: dict[str, list[int]] = {}
    for i, node in enumerate(ids):
        modules.setdefault(module_of(node), []).append(i)

    def cost(module: str) -> float:
        return MODULE_MINUTES.get(module, DEFAULT_TEST_MINUTES * len(modules[module]))

    loads = [0.0] * max(1, min(vms, len(modules)))
    groups: list[list[int]] = [[] for _ in loads]
    for module in sorted(modules, key=lambda m: (-cost(m), m)):
        k = loads.index(min(loads))
        loads[k] += cost(module)
        groups[k] += modules[module]
    return [sorted(g) for g in groups if g]
