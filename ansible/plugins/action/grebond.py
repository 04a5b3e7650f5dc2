# Copyright: grebond developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller side of grebond.fleet.grebond: reads ``src`` here and picks the node name.

Why an action plugin: a module runs on the target and cannot read a file on the controller,
nor see the inventory; this sends the model's text as ``content`` (one round trip, no separate
copy task) and fills ``node`` from ``grebond_nodes``, ``grebond_node`` or the inventory name.
"""

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        src = args.pop("src", None)
        if src is not None:
            if args.get("content") is not None:
                result.update(failed=True, msg="src and content are mutually exclusive: give one")
                return result
            try:
                local = self._find_needle("files", src)
                with open(local, "rb") as handle:
                    args["content"] = to_text(handle.read(), errors="surrogate_or_strict")
            except (AnsibleError, OSError, UnicodeError) as exc:
                result.update(failed=True, msg=f"cannot read the model {src} on the controller: {to_text(exc)}")
                return result
        if not args.get("node"):
            args["node"] = self.node_name(task_vars)
        result.update(self._execute_module(module_name=self._task.resolved_action or "grebond.fleet.grebond",
                                           module_args=args, task_vars=task_vars))
        return result

    def node_name(self, task_vars):
        """``grebond_nodes[inventory_hostname]``, else ``grebond_node``, else ``inventory_hostname``."""
        host = task_vars.get("inventory_hostname")
        mapping = self._template(task_vars.get("grebond_nodes"))
        if isinstance(mapping, dict) and host in mapping:
            return to_text(mapping[host])
        single = self._template(task_vars.get("grebond_node"))
        return to_text(single) if single else to_text(host)

    def _template(self, value):
        if value is None:
            return None
        return self._templar.template(value)
