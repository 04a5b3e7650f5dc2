# Copyright: grebond developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the rollout role needs: what each node pings, and the fleet's verdict.

Why filters and not Jinja: these few lines of Python are testable and readable; the same loops in
Jinja are neither. The model is read by grebond itself (``grebond validate --json`` on the
controller), never a second time here: its ``bonds`` name each node's bonds and their peers.
"""

import time

from ansible.errors import AnsibleFilterError


def peers(validated, node):
    """One ``{bond, peer, address}`` per bond address of each peer of ``node``, from ``grebond validate --json``."""
    bonds = validated.get("bonds") if isinstance(validated, dict) else None
    if not isinstance(bonds, dict):
        raise AnsibleFilterError("not the output of 'grebond validate --json' (no 'bonds'); is the controller's "
                                 "grebond older than the collection?")
    out = []
    for bond in bonds.get(node) or []:
        for address in bond.get("peer_addresses") or []:
            out.append({"bond": bond["bond"], "peer": bond["peer"], "address": str(address)})
    return out


def _get(hostvars, host, name):
    try:
        values = hostvars[host]
        return values.get(name, None)
    except (KeyError, TypeError):
        return None


def verdict(hostvars, hosts, deadline, margin=10):
    """Whether every try succeeded and every ping passed, with time left to confirm before ``deadline``.

    Returns ``{"ok": bool, "problems": [one line each], "pending": [hosts with a pending try],
    "staged": [hosts where the new model waits to be moved into place]}``.
    """
    problems, pending, staged = [], [], []
    for host in hosts:
        tried = _get(hostvars, host, "grebond_fleet_try")
        if not isinstance(tried, dict):
            problems.append(f"{host}: no result from the try (host unreachable?)")
            continue
        if tried.get("unreachable"):
            problems.append("{}: unreachable during the try: {}".format(host, tried.get("msg", "")))
            continue
        if tried.get("failed"):
            problems.append("{}: the try failed: {}".format(host, tried.get("msg", "")))
            continue
        if tried.get("pending"):
            pending.append(host)
        if tried.get("staged"):
            staged.append(host)
        pinged = _get(hostvars, host, "grebond_fleet_ping")
        for item in (pinged or {}).get("results", []) if isinstance(pinged, dict) else []:
            what = item.get("item") or {}
            if item.get("unreachable"):
                problems.append("{}: unreachable while pinging across {}".format(host, what.get("bond")))
            elif item.get("skipped"):
                problems.append("{}: did not ping {} across {}".format(host, what.get("peer"), what.get("bond")))
            elif item.get("rc") != 0:
                problems.append("{}: no answer from {} ({}) across {}".format(
                    host, what.get("peer"), what.get("address"), what.get("bond")))
    left = float(deadline) - time.time()
    if left < float(margin):
        problems.append(f"only {left:.0f} s left before the deadline (grebond_confirm_margin is {margin} s): too late to "
                        "confirm everywhere")
    return {"ok": not problems, "problems": problems, "pending": pending, "staged": staged}


class FilterModule:

    def filters(self):
        return {"peers": peers, "verdict": verdict}
