#!/usr/bin/python
# Copyright: grebond developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: grebond_pending
short_description: Confirm or roll back the change a grebond try left pending on this host
version_added: 0.1.0
description:
  - V(confirmed) runs C(grebond confirm), which keeps the pending change and stops its guardian;
    V(rolled_back) runs C(grebond rollback), which restores the previous state now instead of at the deadline.
  - When M(grebond.fleet.grebond) wrote the model for the try, it kept the previous one in V(PATH.previous);
    confirming drops it, rolling back puts it back at O(path), so the model at O(path) is the one in force.
  - Nothing pending is not an error (grebond exits 1 then); the task reports C(changed=false) and
    C(pending=false). A caller that expected a pending change (its deadline may have passed) checks that.
  - A rollback after which the previous model does not verify fails the task, with grebond's outcome line.
author:
  - grebond developers (@grebond)
requirements:
  - grebond on the target, with C(try), C(confirm) and C(rollback)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: none
    details: Whether a try is pending is only known by acting on it; in check mode the task is skipped.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  state:
    description:
      - V(confirmed) keeps the pending change; V(rolled_back) undoes it now.
    type: str
    choices: [confirmed, rolled_back]
    required: true
  path:
    description:
      - The model path given to M(grebond.fleet.grebond); the previous model kept in V(PATH.previous) is dropped
        (confirmed) or put back here (rolled back).
    type: path
    default: /etc/grebond/grebond.yaml
  id:
    description:
      - The id of the try this task settles (the C(pending.id) that M(grebond.fleet.grebond) returned). Another
        try pending on the host (someone else's) is then left alone, and the task reports C(pending=false).
    type: str
  expect_pending:
    description:
      - Whether this host's try left a change pending. V(false) (the try changed nothing here, but kept the
        previous model) only settles the model file, without asking grebond.
    type: bool
    default: true
  executable:
    description:
      - The grebond command on the target.
    type: str
    default: grebond
seealso:
  - module: grebond.fleet.grebond
"""

EXAMPLES = r"""
- name: Keep the change on every host the try left pending
  grebond.fleet.grebond_pending:
    state: confirmed
  when: tried.pending

- name: Roll back now, everywhere
  grebond.fleet.grebond_pending:
    state: rolled_back
"""

RETURN = r"""
pending:
  description: Whether a change was pending (and so was confirmed or rolled back by this task).
  returned: success
  type: bool
  sample: true
grebond:
  description: grebond's JSON answer to C(confirm) or C(rollback).
  returned: success
  type: dict
  sample: {}
exit_status:
  description: grebond's exit status when it failed.
  returned: failure
  type: int
  sample: 3
"""

# imports after DOCUMENTATION, EXAMPLES and RETURN, as ansible-test validate-modules requires
import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.grebond.fleet.plugins.module_utils.grebond_cli import (  # noqa: E402
    grebond_path,
    previous_path,
    read_text,
    run,
    write_private,
)

COMMANDS = {"confirmed": "confirm", "rolled_back": "rollback"}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=["confirmed", "rolled_back"]),
            path=dict(type="path", default="/etc/grebond/grebond.yaml"),
            executable=dict(type="str", default="grebond"),
            expect_pending=dict(type="bool", default=True),
            id=dict(type="str"),
        ),
        supports_check_mode=False,
    )
    state, path = module.params["state"], module.params["path"]
    previous = previous_path(path)
    pending, data = False, {}
    if module.params["expect_pending"]:
        exe = grebond_path(module, module.params["executable"])
        args = [COMMANDS[state]] + (["--id", module.params["id"]] if module.params["id"] else [])
        rc, data = run(module, exe, args, ok_codes=(0, 1))
        # exit 1 is "nothing pending" (only {"error": ...}), or, after a rollback ({"rolled_back": ID, ...,
        # "error": ...}), "the previous model does not verify"
        pending = "confirmed" in data or "rolled_back" in data
        if pending and rc != 0:
            module.fail_json(msg=str(data.get("outcome") or "rolled back, but the previous model does not verify"),
                             changed=True, pending=True, exit_status=rc, grebond=data)
    keep = state == "confirmed" and (pending or not module.params["expect_pending"])
    moved = False
    try:
        old = read_text(previous)
        if old is not None:
            if not keep:    # rolled back, now or at its deadline: the previous model is the one in force
                if old:
                    write_private(path, old)
                elif os.path.exists(path):
                    os.unlink(path)
            os.unlink(previous)
            moved = not keep
    except OSError as exc:
        module.fail_json(msg=f"cannot put the previous model {previous} back: {exc}", pending=pending)
    module.exit_json(changed=pending or moved, pending=pending, grebond=data)


if __name__ == "__main__":
    main()
