"""Every bundled example works with every backend it is documented for: on Debian 13's versions
(systemd 257, NetworkManager 1.52) with all of them, and where an example says at its top that a
backend needs a newer version, validate names that version for Debian 12's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from grebond.backends import registry
from grebond.backends.base import Context
from grebond.errors import ConfigError
from grebond.validation import load_config

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
BACKENDS = ("networkd", "networkmanager", "iproute2", "kernel")


def renders(example: Path, backend: str, systemd: int, nm: str) -> list[str]:
    config, _ = load_config(example)
    refused: list[str] = []
    for node in config.nodes:
        try:
            registry.get(backend).render(Context(config=config, node=node, target_systemd=systemd, target_nm=nm))
        except ConfigError as exc:
            refused += [p.message for p in exc.problems]
    return refused


def header(example: Path) -> str:
    return "".join(line for line in example.read_text().splitlines(keepends=True) if line.startswith("#"))


def refused_at_the_top(example: Path, backend: str) -> bool:
    """The example says at its top that grebond refuses it for ``backend`` (no release can express it)."""
    return f"grebond refuses to render this for {backend}" in " ".join(header(example).replace("#", " ").split())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_renders_for_debian_13(example: Path, backend: str) -> None:
    refused = renders(example, backend, 257, "1.52")
    if refused and refused_at_the_top(example, backend):
        return      # what no release of the backend can express, said where the user reads first
    assert refused == []


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_what_debian_12_cannot_express_is_said_at_the_top(example: Path, backend: str) -> None:
    refused = renders(example, backend, 252, "1.42")
    if refused and not refused_at_the_top(example, backend):
        names = {"networkmanager": "NetworkManager", "networkd": "networkd"}
        assert re.search(rf"{names.get(backend, backend)} from \d\.\d+", header(example)), \
            f"{example.name} does not say at its top that {backend} needs a newer version: {refused}"


def test_unequal_paths_example_says_what_the_model_does() -> None:
    """The comments of examples/unequal-paths.yaml: gre1 weight 2 is gre1 (no key) + gre1b (key 1),
    both 9.3 ms delayed, gre2 neither; bond MTU 1398; offloads off; balance-rr."""
    example = REPO / "examples" / "unequal-paths.yaml"
    text = example.read_text()
    config, warnings = load_config(example)
    assert warnings == []
    (link,) = config.links
    assert [(t.name, t.key, t.delay_us) for t in link.tunnels] == [
        ("gre1", None, 9300), ("gre1b", 1, 9300), ("gre2", None, None)]
    assert "gre1 (no key) + gre1b (key 1)" in text and "delay: 9.3ms" in text and "wait 9.3 ms on each end" in text
    # the figures are docs/performance.md's (topology A, the recommended configuration's row)
    performance = (REPO / "docs" / "performance.md").read_text()
    assert "| balance-rr, 2:1, equalized, offloads off | 24.4, 21.3, 20.4 | 21.3 | 0.81 |" in performance
    assert "this file (weights 2:1, delay, offloads off)          21.3         0.81x" in text
    assert link.mtu == 1398 and "bond MTU 1398" in text
    assert link.offloads is False and link.mode.value == "balance-rr"
    # the seed's two paths, with the same addresses
    seed, _ = load_config(REPO / "examples" / "seed.yaml")
    assert {t.path: t.underlay for t in link.tunnels} == {t.name: t.underlay for t in seed.links[0].tunnels}
    assert link.ends == seed.links[0].ends
