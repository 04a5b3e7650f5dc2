"""The monitoring pieces of the package: alert rules (promtool), the metrics timer and service, the .deb.

The rules are checked by Prometheus' own tools: `promtool check rules` for syntax and templates,
`promtool test rules` (grebond-alerts.test.yml here) for when each alert fires and what it says.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from needs import need

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
DEBIAN = REPO / "debian"
RULES = PACKAGING / "prometheus" / "grebond-alerts.yml"
RULE_TESTS = Path(__file__).resolve().parent / "grebond-alerts.test.yml"
UNITS = ("grebond-metrics.service", "grebond-metrics.timer")
ALERTS = {"GrebondTunnelDown", "GrebondBondDegraded", "GrebondTunnelsSharePath", "GrebondDrift",
          "GrebondWireGuardHandshakeStale", "GrebondMetricsFailed", "GrebondMetricsStale"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    need(shutil.which("promtool"), "promtool is not installed (./setup --test installs Debian's prometheus)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True)


def test_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0 and f"SUCCESS: {len(ALERTS)} rules found" in done.stdout, done.stdout + done.stderr


def test_rules_fire_when_and_as_expected() -> None:
    done = promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


def test_every_alert_is_tested() -> None:
    import yaml

    rules = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert rules == ALERTS
    tested = {t["alertname"] for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert tested == ALERTS


def unit(name: str) -> str:
    return (PACKAGING / "systemd" / name).read_text()


def exec_start() -> list[str]:
    line = next(x for x in unit("grebond-metrics.service").splitlines() if x.startswith("ExecStart="))
    return shlex.split(line.split("=", 1)[1])


def test_timer_every_15_s_and_service_writes_the_textfile() -> None:
    timer = unit("grebond-metrics.timer")
    assert "OnUnitActiveSec=15s" in timer and "WantedBy=timers.target" in timer
    argv = exec_start()
    assert argv[:4] == ["/usr/bin/grebond", "status", "--format", "prometheus"]
    assert argv[argv.index("--output") + 1] == "/var/lib/prometheus/node-exporter/grebond.prom"
    service = unit("grebond-metrics.service")
    assert "ReadWritePaths=/var/lib/prometheus/node-exporter" in service and "ProtectSystem=strict" in service
    assert "[Install]" not in service             # started by the timer only


def test_units_pass_systemd_analyze() -> None:
    need(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
    done = subprocess.run(["systemd-analyze", "verify", "--man=no",
                           *(str(PACKAGING / "systemd" / u) for u in UNITS)], capture_output=True, text=True)
    complaints = [line for line in done.stderr.splitlines()
                  # offline, before the package is installed, the binary is not there yet
                  if not (line.endswith("Command /usr/bin/grebond is not executable: No such file or directory")
                          and not Path("/usr/bin/grebond").exists())]
    assert not complaints, done.stderr


@pytest.mark.parametrize("name", UNITS)
def test_debian_ships_the_same_units(name: str) -> None:
    if not DEBIAN.is_dir():
        pytest.skip("no debian/ here (the package build copies only tests, examples, packaging)")
    assert (DEBIAN / f"grebond.{name}").read_text() == unit(name)


# ------------------------------------------------------------------------------- the built .deb

def dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], capture_output=True, text=True, check=True).stdout


@pytest.mark.deb
def test_deb_ships_the_timer_off_and_the_rules_as_an_example(deb: Path, tmp_path: Path) -> None:
    files = {line.split()[5].lstrip(".") for line in dpkg_deb("-c", str(deb)).splitlines()}
    for path in ("/lib/systemd/system/grebond-metrics.service", "/lib/systemd/system/grebond-metrics.timer",
                 "/usr/share/doc/grebond/examples/grebond-alerts.yml"):
        assert path in files, path
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path / "root")], check=True)
    assert (tmp_path / "root/lib/systemd/system/grebond-metrics.timer").read_text() == unit("grebond-metrics.timer")
    subprocess.run(["dpkg-deb", "-e", str(deb), str(tmp_path / "control")], check=True)
    postinst = (tmp_path / "control/postinst").read_text()
    # dh enables grebond-verify.service on a new installation; the timer only where an earlier
    # version was installed and the administrator had enabled it (dh_installsystemd --no-enable),
    # and nothing starts it (--no-start)
    block = next(b for b in postinst.split("# Automatically added by dh_installsystemd")[1:] if "grebond-metrics" in b)
    guard = "if deb-systemd-helper debian-installed 'grebond-metrics.timer'; then"
    assert guard in block and "deb-systemd-helper --quiet was-enabled 'grebond-metrics.timer'" in block
    assert block.index(guard) < block.index("deb-systemd-helper enable 'grebond-metrics.timer'")
    for script in ("postinst", "preinst", "prerm", "postrm"):
        path = tmp_path / "control" / script
        text = path.read_text() if path.exists() else ""
        assert not re.search(r"deb-systemd-invoke (start|restart|try-restart) .*grebond-metrics", text), script
