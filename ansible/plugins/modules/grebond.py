#!/usr/bin/python
# Copyright: grebond developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: grebond
short_description: Make this router's end of every grebond link match the model
version_added: 0.1.0
description:
  - Drives the grebond installed on the target. With O(state=present) it runs C(grebond apply),
    or C(grebond try --no-wait) when O(confirm_timeout), O(confirm_deadline) or O(ping) is given,
    which leaves the change pending until M(grebond.fleet.grebond_pending) confirms it or it is rolled
    back at its deadline by a guardian that does not depend on this connection.
  - With O(state=absent) it runs C(grebond remove), which deletes what grebond created for this
    end (files, profiles, devices) and nothing else.
  - In check mode it runs grebond's dry run, which changes nothing and fails where the real run
    would be refused; in diff mode it returns grebond's diff of every file, profile setting or
    kernel attribute it changes (or would change).
  - C(changed) is grebond's own answer (nothing to change gives C(changed=false)), or the model
    file at O(path) being rewritten.
  - Errors come back as a failed task with grebond's one-line message and its exit status.
  - The model can be a file already on the target (O(path)), the text of the model (O(content)),
    or a file on the controller (O(src)), which is copied to O(path).
author:
  - grebond developers (@grebond)
requirements:
  - grebond on the target, with C(--json) and C(try) (the grebond.fleet.rollout role installs it)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  state:
    description:
      - V(present) makes this end match the model; V(absent) removes what grebond created for it.
    type: str
    choices: [present, absent]
    default: present
  path:
    description:
      - The model (grebond's YAML) on the target.
      - With O(src) or O(content) the module writes the model here (mode 0600) and grebond reads it here
        (the files grebond writes name it). After a try the previous model is kept in V(PATH.previous)
        (even where nothing changed on this host; the rest of the fleet may still reject the change)
        until M(grebond.fleet.grebond_pending) drops it (confirmed) or puts it back (rolled back).
      - With O(state=absent) and O(src) or O(content), the file is removed after grebond's configuration.
    type: path
    default: /etc/grebond/grebond.yaml
  src:
    description:
      - A model file on the controller, copied to O(path). Looked up like the copy module's C(src)
        (the role's or playbook's C(files/) directory, then the path as given).
      - Mutually exclusive with O(content).
    type: path
  content:
    description:
      - The model's text, written to O(path). Mutually exclusive with O(src).
    type: str
  node:
    description:
      - The end of the links this host is (a node name in the model).
      - Default, set on the controller, the host variable C(grebond_nodes[inventory_hostname]) when the
        mapping C(grebond_nodes) is defined, else the host variable C(grebond_node), else
        C(inventory_hostname).
    type: str
  backend:
    description:
      - The grebond backend, V(auto) for the service that manages this host's network
        (systemd-networkd or NetworkManager), or V(networkd), V(networkmanager), V(kernel) or a plugin.
    type: str
    default: auto
  confirm_timeout:
    description:
      - Seconds until a pending change is rolled back unless confirmed. Runs C(grebond try --no-wait).
      - Mutually exclusive with O(confirm_deadline).
    type: float
  confirm_deadline:
    description:
      - The same as O(confirm_timeout), as an absolute time (seconds since the epoch), so that many
        hosts share one deadline (C(grebond try --deadline)), whatever each host's apply takes; the clocks of
        the controller and the hosts must agree.
    type: float
  ping:
    description:
      - Addresses that must answer across the bond for the guardian to confirm the change by itself
        (C(grebond try --ping)); without an answer before the deadline it rolls back.
      - Needs O(confirm_timeout) or O(confirm_deadline). The previous model is not kept, since the module
        cannot know the outcome.
    type: list
    elements: str
  executable:
    description:
      - The grebond command on the target.
    type: str
    default: grebond
notes:
  - The phased fleet change (try everywhere, ping across every bond, confirm everywhere or nowhere) is
    the grebond.fleet.rollout role.
seealso:
  - module: grebond.fleet.grebond_pending
"""

EXAMPLES = r"""
- name: Apply the model at once, verified (no rollback window)
  grebond.fleet.grebond:
    src: hub-spokes.yaml

- name: Try it with 120 s to confirm; a guardian on the host rolls it back otherwise
  grebond.fleet.grebond:
    src: hub-spokes.yaml
    backend: networkd
    confirm_timeout: 120
  register: tried

- name: Keep it
  grebond.fleet.grebond_pending:
    state: confirmed
  when: tried.pending

- name: Let the guardian confirm by itself once the peer answers across the bond
  grebond.fleet.grebond:
    path: /etc/grebond/grebond.yaml
    node: spoke1
    confirm_timeout: 90
    ping: [10.67.1.1]

- name: Remove grebond's configuration from this host
  grebond.fleet.grebond:
    src: hub-spokes.yaml
    state: absent
"""

RETURN = r"""
changes:
  description: What grebond changed (or, in check mode, would change), one line each.
  returned: success
  type: list
  elements: str
  sample: ["wrote /etc/systemd/network/40-grebond-bond1.netdev", "bond1: mode balance-rr -> active-backup"]
verify:
  description: >-
    grebond's verify report after the change: C(node), C(ok) and C(checks), each with C(subject),
    C(field), C(expected), C(actual), C(ok) and C(severity). Null in check mode and with O(state=absent).
  returned: success
  type: dict
  sample: {"node": "hub", "ok": true, "checks": [{"subject": "bond1", "field": "mode", "expected": "balance-rr",
           "actual": "balance-rr", "ok": true, "severity": "error"}]}
pending:
  description: >-
    The pending try (C(id), C(deadline) in seconds since the epoch, C(node), C(backend)), or null when
    nothing is pending (nothing changed, or no confirmation was asked for).
  returned: success
  type: dict
  sample: {"id": "3f2a9c", "deadline": 1796212345.0, "node": "hub", "backend": "networkd"}
model:
  description: The model file grebond was run with on the target.
  returned: success
  type: str
  sample: /etc/grebond/grebond.yaml
model_changed:
  description: Whether the model file at O(path) is (or, once confirmed, will be) rewritten.
  returned: success
  type: bool
  sample: true
staged:
  description: >-
    Whether the previous model is kept in V(PATH.previous) for M(grebond.fleet.grebond_pending) to settle
    (after a try that changed the model and was given no O(ping)).
  returned: always
  type: bool
  sample: true
node:
  description: The node this host acted as.
  returned: always
  type: str
  sample: hub
exit_status:
  description: grebond's exit status when it failed (1 did not verify and rolled back, 2 bad model or usage,
    3 the system could not be read or changed).
  returned: failure
  type: int
  sample: 2
"""

# imports after DOCUMENTATION, EXAMPLES and RETURN, as ansible-test validate-modules requires
import os  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.grebond.fleet.plugins.module_utils.grebond_cli import (  # noqa: E402
    grebond_path,
    previous_path,
    read_text,
    run,
    write_private,
)


def file_diff(path, before, after):
    return {"before_header": path, "after_header": path, "before": before or "", "after": after or ""}


def remaining(module):
    """Seconds to give ``grebond try --timeout``, or None for a plain apply."""
    params = module.params
    if params["confirm_deadline"] is not None:
        left = int(params["confirm_deadline"] - time.time())
        if left < 5:
            module.fail_json(msg=f"confirm_deadline is {left} s away on this host: too late to start a try "
                                 "(are the clocks of the controller and this host in step?)")
        return left
    if params["confirm_timeout"] is not None:
        if params["confirm_timeout"] <= 0:
            module.fail_json(msg="confirm_timeout must be more than 0 seconds")
        return params["confirm_timeout"]
    if params["ping"]:
        module.fail_json(msg="ping needs confirm_timeout or confirm_deadline: it is what confirms a try")
    return None


def present(module, exe, common, result):
    params = module.params
    path, content = params["path"], params["content"]
    on_disk = read_text(path)
    kept = read_text(previous_path(path))   # the model in force while a try of ours is not settled
    before = on_disk if kept is None else (kept or None)
    managed = content is not None
    if not managed and on_disk is None:
        module.fail_json(msg=f"no model at {path} on this host; give src or content, or the path of the model",
                         **result)
    model_changed = managed and before != content
    result["model_changed"] = model_changed
    result["model"] = path

    if module.check_mode:
        model = path
        if managed and on_disk != content:
            model = os.path.join(module.tmpdir, "grebond.yaml")
            write_private(model, content)
        result["model"] = model
        _rc, data = run(module, exe, ["apply", "--dry-run", "-c", model, *common])
        finish(module, result, data, model_changed, path, before, content)

    timeout = remaining(module)
    trying = timeout is not None and not params["ping"]

    def restore():
        """grebond refused the change or rolled it back: the files as they were before this task."""
        put(path, on_disk)
        put(previous_path(path), kept)

    # grebond always reads the model at its own path (the files it writes name it)
    if managed and on_disk != content:
        write_private(path, content)
    if trying and model_changed and kept is None:
        write_private(previous_path(path), before or "")   # empty: there was no model before
    if timeout is None:
        args = ["apply", "-c", path]
    else:
        when = (["--deadline", f"{params['confirm_deadline']:.3f}"] if params["confirm_deadline"] is not None
                else ["--timeout", f"{timeout:g}"])   # grebond counts a deadline from itself, after its apply
        args = ["try", "--no-wait", "-c", path, *when]
        if params["ping"]:
            args += ["--ping", ",".join(params["ping"])]
    _rc, data = run(module, exe, args + common, cleanup=restore)
    # a try keeps the previous model even where nothing changed here: the fleet may still reject the change
    result["staged"] = trying and model_changed
    if not result["staged"]:
        put(previous_path(path), None)
    finish(module, result, data, model_changed, path, before, content)


def put(path, text):
    """``path`` holds ``text`` afterwards; None: it does not exist."""
    if text is None:
        if os.path.exists(path):
            os.unlink(path)
    elif read_text(path) != text:
        write_private(path, text)


def absent(module, exe, common, result):
    params = module.params
    path, content = params["path"], params["content"]
    before = read_text(path)
    managed = content is not None
    if not managed and before is None:
        module.fail_json(msg=f"no model at {path} on this host to tell what to remove; give src or content",
                         **result)
    model = path
    if managed:
        model = os.path.join(module.tmpdir, "grebond.yaml")
        write_private(model, content)
    result["model"] = model
    model_changed = managed and before is not None
    result["model_changed"] = model_changed
    args = ["remove", "-c", model] + (["--dry-run"] if module.check_mode else [])
    _rc, data = run(module, exe, args + common)
    if managed and not module.check_mode:
        for leftover in (path, previous_path(path)):
            if os.path.exists(leftover):
                os.unlink(leftover)
    finish(module, result, data, model_changed, path, before, None)


def finish(module, result, data, model_changed, path, before, after):
    result["changed"] = bool(data.get("changed")) or model_changed
    result["changes"] = list(data.get("changes") or [])
    result["verify"] = data.get("verify")
    result["pending"] = data.get("pending")
    if module._diff:
        diffs = []
        if model_changed:
            diffs.append(file_diff(path, before, after))
        text = data.get("diff")
        if not text and module.params["state"] == "absent" and data.get("changed"):
            text = "\n".join(result["changes"]) + "\n"
        if text:
            diffs.append({"prepared": text})
        result["diff"] = diffs
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="present", choices=["present", "absent"]),
            path=dict(type="path", default="/etc/grebond/grebond.yaml"),
            src=dict(type="path"),
            content=dict(type="str"),
            node=dict(type="str"),
            backend=dict(type="str", default="auto"),
            confirm_timeout=dict(type="float"),
            confirm_deadline=dict(type="float"),
            ping=dict(type="list", elements="str"),
            executable=dict(type="str", default="grebond"),
        ),
        mutually_exclusive=[("src", "content"), ("confirm_timeout", "confirm_deadline")],
        supports_check_mode=True,
    )
    params = module.params
    result = dict(changed=False, node=params["node"], staged=False)
    if params["src"] is not None:
        module.fail_json(msg="src is read on the controller by the grebond.fleet.grebond action; "
                             "call the module by that name (or give content)", **result)
    exe = grebond_path(module, params["executable"])
    common = ["--backend", params["backend"]]
    if params["node"]:
        common += ["--node", params["node"]]
    try:
        if params["state"] == "present":
            present(module, exe, common, result)
        else:
            absent(module, exe, common, result)
    except OSError as exc:
        module.fail_json(msg=f"cannot write the model on this host: {exc}", **result)


if __name__ == "__main__":
    main()
