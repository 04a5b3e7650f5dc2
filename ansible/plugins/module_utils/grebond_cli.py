# Copyright: grebond developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the installed grebond with --json and turn its answer into a module result.

Why here and not in each module: grebond's machine interface is one JSON object on stdout,
and on any error {"error": "<one line>", "exit_status": N}. Every module needs the same
reading of it, and the same refusal to show a Python traceback for a user's mistake.
"""

import json
import os
import tempfile

EXIT_TEXT = {
    1: "did not verify (rolled back) or nothing to act on",
    2: "bad model or usage",
    3: "the system could not be read or changed",
}


def grebond_path(module, executable):
    """The grebond executable on the target, or a failed result saying how to install it."""
    found = module.get_bin_path(executable, required=False) if "/" not in executable else executable
    if not found or not os.access(found, os.X_OK):
        module.fail_json(msg=f"grebond is not installed on this host (no '{executable}'); install it (the "
                             "grebond.fleet.rollout role does) or set 'executable'")
    return found


def parse_json(stdout):
    """The JSON object grebond printed, or None.

    grebond prints one object (a refused or rolled-back change: what it did with the error's fields);
    an older one printed the outcome and then the error: merging keeps both either way.
    """
    decoder = json.JSONDecoder()
    merged, pos, text = None, 0, stdout
    while True:
        start = text.find("{", pos)
        if start < 0:
            return merged
        try:
            value, pos = decoder.raw_decode(text, start)
        except ValueError:
            pos = start + 1
            continue
        if isinstance(value, dict):
            merged = dict(merged or {}, **value)


def last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run(module, executable, args, ok_codes=(0,), cleanup=None):
    """Run ``grebond ARGS --json``; return (rc, data). Otherwise call ``cleanup`` and fail the task
    with grebond's one line."""
    argv = [executable, *list(args), "--json"]
    rc, stdout, stderr = module.run_command(argv, environ_update={"LC_ALL": "C.UTF-8"})
    data = parse_json(stdout)
    if rc in ok_codes and data is not None and (rc != 0 or "error" not in data):
        return rc, data
    message = ""
    if data is not None:
        message = str(data.get("error") or "")
    if not message:
        message = last_line(stderr) or last_line(stdout) or f"grebond exited {rc}"
    if rc in ok_codes and data is None:
        message = f"grebond printed no JSON object (is it too old for --json?): {message}"
    if cleanup is not None:
        cleanup()
    module.fail_json(msg=message, rc=rc, exit_status=rc, meaning=EXIT_TEXT.get(rc, ""),
                     verify=(data or {}).get("verify"), cmd=argv, stdout=stdout, stderr=stderr)
    return rc, data  # not reached: fail_json exits


def write_private(path, text):
    """Write ``text`` to ``path`` atomically, mode 0600 (grebond refuses a group/world-writable model)."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(prefix=".grebond-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_text(path):
    """The file's text, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return None


def previous_path(path):
    """Where the model in force is kept while a ``grebond try`` of the new one is not settled
    (see the grebond_pending module); empty when there was none."""
    return path + ".previous"
