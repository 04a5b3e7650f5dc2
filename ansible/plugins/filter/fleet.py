# Copyright: grebond developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the rollout role needs: the model's nodes, each node's peers, and the fleet's verdict.

Why filters and not Jinja: the model is read once on the controller (``from_yaml``) and these
few lines of Python are testable and readable; the same loops in Jinja are neither.
"""

import time

from ansible.errors import AnsibleFilterError


def _links(model):
    if not isinstance(model, dict) or not isinstance(model.get("links"), dict):
        raise AnsibleFilterError("not a grebond model: it has no 'links' mapping")
    return model["links"]


def _ends(link_name, link):
    ends = link.get("ends") if isinstance(link, dict) else None
    if not isinstance(ends, dict):
        raise AnsibleFilterError(f"link {link_name} has no 'ends' mapping")
    return ends


def nodes(model):
    """Every node (end) named in the model, in order of first appearance."""
    out = []
    for name, link in _links(model).items():
        for node in _ends(name, link):
            if node not in out:
                out.append(node)
    return out


def peers(model, node):
    """For each link of ``node``: the bond, the peer node and each of the peer's bond addresses (no prefix)."""
    out = []
    for name, link in _links(model).items():
        ends = _ends(name, link)
        if node not in ends:
            continue
        for peer, end in ends.items():
            if peer == node:
                continue
            addresses = end.get("addresses") if isinstance(end, dict) else None
            if isinstance(addresses, str):
                addresses = [addresses]
            for address in addresses or []:
                out.append({"bond": name, "peer": peer, "address": str(address).partition("/")[0]})
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
        return {"nodes": nodes, "peers": peers, "verdict": verdict}
