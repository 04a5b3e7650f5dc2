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


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_renders_for_debian_13(example: Path, backend: str) -> None:
    assert renders(example, backend, 257, "1.52") == []


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_what_debian_12_cannot_express_is_said_at_the_top(example: Path, backend: str) -> None:
    refused = renders(example, backend, 252, "1.42")
    header = "".join(line for line in example.read_text().splitlines(keepends=True) if line.startswith("#"))
    if refused:
        names = {"networkmanager": "NetworkManager", "networkd": "networkd"}
        assert re.search(rf"{names.get(backend, backend)} from \d\.\d+", header), \
            f"{example.name} does not say at its top that {backend} needs a newer version: {refused}"
