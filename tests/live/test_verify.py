"""`grebond verify` against states grebond did not build: the iproute2 script, a plaintext underlay."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .test_kernel_backend import BOND_IP, config_copy, grebond
from lab.topology import Lab, wait_for

pytestmark = pytest.mark.kernel


def run_rendered_script(lab: Lab, router: str, cfg: str, out: Path) -> None:
    cp = grebond(lab, router, "render", "--backend", "iproute2", "-c", cfg, "--node", router, "-o", str(out))
    assert cp.returncode == 0, cp.stderr
    lab.run(router, "sh", str(next(out.rglob(f"grebond-{router}.sh"))))


def test_iproute2_script_gives_a_state_verify_accepts(lab: Lab, tmp_path: Path) -> None:
    cfg = config_copy(tmp_path)
    for router in ("r2", "r1"):
        run_rendered_script(lab, router, cfg, tmp_path / router)
    assert wait_for(lambda: lab.ping("r2", BOND_IP["r1"], count=1, wait=1).ok, timeout=20)
    for router in ("r2", "r1"):
        cp = grebond(lab, router, "verify", "-c", cfg, "--node", router)
        assert cp.returncode == 0, cp.stdout + cp.stderr
    # and the kernel backend agrees there is nothing to do
    cp = grebond(lab, "r2", "apply", "--backend", "kernel", "-c", cfg, "--node", "r2")
    assert cp.returncode == 0 and cp.stdout.strip().splitlines()[-1] == "nothing to change", cp.stdout + cp.stderr


def test_plaintext_underlay_is_reported(lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    lab = lab_factory(wireguard=False)
    cfg = config_copy(tmp_path)
    run_rendered_script(lab, "r2", cfg, tmp_path / "r2")
    cp = grebond(lab, "r2", "verify", "-c", cfg)
    # the kernel matches the model (no drift), but the underlay is not what it must be: degraded, exit 4
    assert cp.returncode == 4, cp.stdout + cp.stderr
    assert "[PATH] gre1 underlay: expected wireguard, got veth1 (veth)" in cp.stdout
    assert "[PATH] gre2 underlay: expected wireguard, got veth2 (veth)" in cp.stdout
    lines = cp.stdout.splitlines()
    assert len([line for line in lines if line.startswith("[PATH]")]) == 2, cp.stdout
    assert not [line for line in lines if line.startswith("[FAIL]")], cp.stdout    # everything else matches
    assert "r2: matches the model, but the underlay is DEGRADED" in cp.stdout
    # apply refuses to build tunnels over a plaintext underlay, and changes nothing
    cp = grebond(lab, "r1", "apply", "--backend", "kernel", "-c", cfg, "--node", "r1")
    assert cp.returncode == 2, cp.stdout + cp.stderr
    assert "refusing to apply: bond0/gre1 to 10.65.0.2 leaves through veth1 (veth)" in cp.stderr
    assert "allow-plaintext-underlay: true" in cp.stderr and "Traceback" not in cp.stderr
    assert lab.run("r1", "ip", "link", "show", "bond0", check=False).returncode != 0


def test_verify_usage_and_unreadable_errors(lab: Lab, tmp_path: Path) -> None:
    cfg = config_copy(tmp_path)
    cp = grebond(lab, "r2", "verify", "-c", cfg, "--node", "r3")
    assert cp.returncode == 2 and "--node r3" in cp.stderr and "Traceback" not in cp.stderr
    cp = grebond(lab, "r2", "verify", "-c", str(tmp_path / "missing.yaml"))
    assert cp.returncode == 2 and "Traceback" not in cp.stderr
