"""Boot a throwaway QEMU/TCG guest with virtme-ng and run one command in it.

Why: the kernels we develop on and CI on may lack gre/bonding/wireguard, so
kernel tests run in a Debian kernel inside a VM. virtme-ng shares the host's
root file system (read-only) with the guest, so the same interpreter, venv and
checkout are usable there; results come back through an ``--rwdir``.

Environment knobs (all optional):

- ``GREBOND_LAB_KERNEL``  kernel image to boot (default: newest /boot/vmlinuz-*)
- ``GREBOND_LAB_VNG``     path of the ``vng`` executable
- ``GREBOND_LAB_MEMORY``  guest memory (default ``2G``)
- ``GREBOND_LAB_CPUS``    guest CPUs (default ``2``; 1 each when the plugin boots two guests)
- ``GREBOND_LAB_KVM=1``   try KVM instead of TCG (KVM is broken on our runners)
- ``GREBOND_LAB_BOOT_TIMEOUT`` seconds until the guest must have started the command (default 300)
- ``GREBOND_LAB_RAM_PYTHON=0`` read Python from the shared file system instead of a RAM copy
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Modules every kernel test needs; loaded in the guest before anything runs.
LAB_MODULES: tuple[str, ...] = ("bonding", "ip_gre", "ip6_gre", "wireguard", "veth", "sch_netem")

#: File the guest writes as its very first action; its appearance ends the "boot".
STARTED_MARKER = "started"

#: Tarball of the Python trees the guest copies into RAM (see ram_python_tarball).
PYTHON_TARBALL = "python-trees.tar"


class LabUnavailable(RuntimeError):
    """The VM cannot be started here (missing vng/qemu/kernel, boot failure, timeout)."""


def _version_key(path: Path) -> list[object]:
    """Sort key so vmlinuz-6.10 sorts after vmlinuz-6.9 (natural order)."""
    ver = path.name.removeprefix("vmlinuz-")
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", ver)]


def find_kernel() -> Path:
    """Return the kernel image to boot: $GREBOND_LAB_KERNEL or the newest /boot/vmlinuz-*."""
    override = os.environ.get("GREBOND_LAB_KERNEL")
    if override:
        path = Path(override)
        if not path.is_file():
            raise LabUnavailable(f"GREBOND_LAB_KERNEL={override} does not exist or is not a file")
    else:
        images = sorted(Path("/boot").glob("vmlinuz-*"), key=_version_key)
        if not images:
            raise LabUnavailable(
                "no kernel image in /boot (expected /boot/vmlinuz-*); run `bash .ci/install-lab` "
                "(installs linux-image-amd64) or set GREBOND_LAB_KERNEL"
            )
        path = images[-1]
    if not os.access(path, os.R_OK):
        raise LabUnavailable(f"kernel image {path} is not readable by this user (Ubuntu ships it 0600)")
    with path.open("rb") as f:  # qemu boots garbage silently until the boot timeout: check first
        f.seek(0x202)
        if f.read(4) != b"HdrS":
            raise LabUnavailable(f"{path} is not an x86 bzImage kernel (no 'HdrS' boot header)")
    return path


def kernel_release(kernel: Path) -> str | None:
    """Guess the release string (for /lib/modules) from a vmlinuz-<release> file name."""
    name = kernel.name
    return name.removeprefix("vmlinuz-") if name.startswith("vmlinuz-") else None


def find_vng() -> Path:
    """Locate vng: $GREBOND_LAB_VNG, next to the running interpreter (venv), then $PATH."""
    override = os.environ.get("GREBOND_LAB_VNG")
    if override:
        if not os.access(override, os.X_OK):
            raise LabUnavailable(f"GREBOND_LAB_VNG={override} is not executable")
        return Path(override)
    search = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    found = shutil.which("vng", path=search)
    if not found:
        raise LabUnavailable(
            "virtme-ng (`vng`) not found next to the interpreter or on PATH; "
            f"install it: {sys.executable} -m pip install virtme-ng"
        )
    return Path(found)


def check_prerequisites() -> tuple[Path, Path]:
    """Return (vng, kernel) or raise LabUnavailable saying exactly what is missing."""
    vng = find_vng()
    if not shutil.which("qemu-system-x86_64"):
        raise LabUnavailable("qemu-system-x86_64 not found; run `bash .ci/install-lab` (installs qemu-system-x86)")
    kernel = find_kernel()
    release = kernel_release(kernel)
    if release and not os.environ.get("GREBOND_LAB_KERNEL") and not Path("/lib/modules", release).is_dir():
        raise LabUnavailable(f"/lib/modules/{release} missing: the guest could not load modules for {kernel}")
    return vng, kernel


def guest_path(extra: list[str]) -> str:
    """PATH for the guest: ours first, then the usual system dirs (vng's default lacks the venv)."""
    base = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    out: list[str] = []
    for part in extra + base:
        if part and part not in out:
            out.append(part)
    return ":".join(out)


@dataclass
class GuestRun:
    """Outcome of one VM run. ``started`` tells a boot failure from a failure of the command."""

    returncode: int | None
    console_log: Path
    started: bool
    timed_out: bool
    boot_seconds: float | None
    total_seconds: float
    command: list[str] = field(default_factory=list)

    def console_tail(self, lines: int = 30) -> str:
        """Last lines of the console log, for error messages."""
        try:
            text = self.console_log.read_text(errors="replace")
        except OSError:
            return "(no console log)"
        return "\n".join(text.splitlines()[-lines:])


def vng_command(vng: Path, kernel: Path, rwdirs: list[Path], script: str, cwd: Path,
                cpus: int | None = None) -> list[str]:
    """Build the vng argv. Why each flag: see lab-facts.md (TCG only, root, /etc writable for networkd/NM).
    ``cpus``: the guest's CPUs when $GREBOND_LAB_CPUS does not say (default 2)."""
    cmd = [str(vng), "-r", str(kernel)]
    if os.environ.get("GREBOND_LAB_KVM") != "1":
        cmd.append("--disable-kvm")
    cmd += [
        "--user", "root",
        "-m", os.environ.get("GREBOND_LAB_MEMORY", "2G"),
        "--cpus", os.environ.get("GREBOND_LAB_CPUS") or str(cpus or 2),
        "--overlay-rwdir", "/etc",
        "--cwd", str(cwd),
    ]
    for d in rwdirs:
        cmd += ["--rwdir", str(d)]
    cmd += ["--exec", script]
    return cmd


def run_in_guest(
    script: str,
    results_dir: Path,
    *,
    timeout: float,
    cwd: Path | None = None,
    extra_rwdirs: list[Path] | None = None,
    boot_timeout: float | None = None,
    cpus: int | None = None,
) -> GuestRun:
    """Boot the guest, run ``script`` (a shell command line) as root, wait, return the outcome.

    ``results_dir`` is created, passed as --rwdir (the guest sees it at the same path)
    and receives ``console.log`` (guest stdout+stderr). The script must create
    ``results_dir/started`` first thing; that is how boot time and boot failure are told.
    Raises LabUnavailable only for missing prerequisites; boot failures and timeouts are
    reported in the returned GuestRun so the caller can keep partial results.
    """
    vng, kernel = check_prerequisites()
    if boot_timeout is None:  # ~20 s idle, 70 s seen with 4 VMs on 2 CPUs
        boot_timeout = float(os.environ.get("GREBOND_LAB_BOOT_TIMEOUT", "300"))
    results_dir.mkdir(parents=True, exist_ok=True)
    cwd = cwd or Path.cwd()
    # vng passes --exec base64-encoded on the kernel command line, which is capped at 2048 bytes
    # (a longer one hangs the boot silently), so the real script travels as a file in the rwdir.
    script_file = results_dir / "guest.sh"
    script_file.write_text("#!/bin/sh\n" + script + "\n")
    cmd = vng_command(vng, kernel, [results_dir, *(extra_rwdirs or [])],
                      f"sh {shlex.quote(str(script_file))}", cwd, cpus)
    env = dict(os.environ)
    # vng spawns virtme-run by name: the venv's bin dir must be on PATH.
    env["PATH"] = os.pathsep.join([str(vng.parent), env.get("PATH", "/usr/bin:/bin")])
    console = results_dir / "console.log"
    marker = results_dir / STARTED_MARKER
    t0 = time.monotonic()
    boot_seconds: float | None = None
    timed_out = False
    (results_dir / "vng-command.txt").write_text(shlex.join(cmd) + "\n")
    with console.open("ab") as out:  # append: qemu's stdio writes from offset 0 otherwise
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=cwd, env=env, start_new_session=True,
        )
        try:
            while proc.poll() is None:
                elapsed = time.monotonic() - t0
                if boot_seconds is None and marker.exists():
                    boot_seconds = elapsed
                if elapsed > timeout or (boot_seconds is None and elapsed > boot_timeout):
                    timed_out = True
                    _kill_group(proc)
                    break
                time.sleep(0.2)
        except BaseException:
            _kill_group(proc)  # Ctrl-C on the host must not leave a qemu behind
            raise
    if boot_seconds is None and marker.exists():
        boot_seconds = time.monotonic() - t0
    return GuestRun(
        returncode=proc.returncode,
        console_log=console,
        started=marker.exists(),
        timed_out=timed_out,
        boot_seconds=boot_seconds,
        total_seconds=time.monotonic() - t0,
        command=cmd,
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop vng and the qemu it started (same process group: we started it with a new session)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def python_trees(extra: Sequence[Path] = ()) -> list[Path]:
    """The interpreter's standard library, this environment's site-packages and ``extra`` (existing, distinct)."""
    paths = sysconfig.get_paths()
    out: list[Path] = []
    for d in [*(Path(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib")), *extra]:
        d = d.resolve()
        if d.is_dir() and d not in out and not any(d.is_relative_to(o) for o in out):
            out.append(d)
    return out


def python_files() -> list[Path]:
    """The interpreter binary and its shared libpython, when there is one (pyenv builds have 23 MB)."""
    out = [Path(sys.executable).resolve()]
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if libdir and soname and (Path(libdir) / soname).is_file():
        out.append((Path(libdir) / soname).resolve())
    return [f for f in dict.fromkeys(out) if f.is_file()]


#: Big top-level stdlib directories the lab never imports from, or another environment's
#: packages; they are not copied but bound back from the shared tree, so nothing disappears.
RAM_SKIP = ("site-packages", "dist-packages", "test")


@dataclass
class RamCopy:
    """What the guest serves from RAM: a tarball of ``trees`` and ``files``; ``skipped`` bound back."""

    tarball: Path
    trees: list[Path]
    files: list[Path]
    skipped: list[Path]


def ram_python_tarball(results_dir: Path, extra: Sequence[Path] = ()) -> RamCopy | None:
    """Pack the interpreter and the Python trees into ``results_dir`` so the guest serves them from RAM.

    Why: the guest reads the host's files over 9p without a page cache, so every interpreter
    start re-reads libpython and hundreds of modules through the VM's emulated transport. Under
    TCG (2026-11-26): ``python -c pass`` 1.1-2.2 s -> 0.6 s, importing pyroute2 8 s -> 2.8 s.
    One sequential read of a tarball is cheap. The checkout itself stays shared (the guest must
    see its edits). ``extra``: more trees the tests import (pyroute2 0.7.2 beside the venv's).
    """
    if os.environ.get("GREBOND_LAB_RAM_PYTHON", "1") == "0":
        return None
    trees = python_trees(extra)
    files = [f for f in python_files() if not any(f.is_relative_to(t) for t in trees)]
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    skipped = [stdlib / name for name in RAM_SKIP
               if (stdlib / name).is_dir() and not any(t.is_relative_to(stdlib / name) for t in trees)]
    skipped += [c for c in stdlib.glob("config-*") if c.is_dir()]   # static libpython, headers
    tarball = results_dir / PYTHON_TARBALL

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        path = Path("/", info.name)
        if any(path.is_relative_to(s) and path != s for s in skipped):
            return None
        return info

    with tarfile.open(tarball, "w") as tar:
        for item in [*trees, *files]:
            tar.add(item, arcname=str(item).lstrip("/"), filter=keep)
    return RamCopy(tarball, trees, files, skipped)


def ram_python_preamble(copy: RamCopy, log: Path) -> str:
    """Guest shell: unpack into a tmpfs, bind the skipped directories back, bind each tree and file over its path."""
    ram = "/tmp/grebond-lab-python"
    q = shlex.quote
    steps = [f"mkdir -p {ram}", f"mount -t tmpfs -o size=1G grebond-python {ram}",
             f"tar -C {ram} -xf {q(str(copy.tarball))}", f"rm -f {q(str(copy.tarball))}"]
    steps += [f"mount --bind {q(str(d))} {ram}{q(str(d))}" for d in copy.skipped]
    steps += [f"mount --bind {ram}{q(str(d))} {q(str(d))}" for d in [*copy.trees, *copy.files]]
    return (f"{{ {' && '.join(steps)}; }} > {q(str(log))} 2>&1 "
            "|| echo 'lab: Python RAM copy failed; using the shared tree' >&2; ")


def guest_script(results_dir: Path, body: str, env: dict[str, str], *, ram_python: bool = True,
                 ram_extra: Sequence[Path] = ()) -> str:
    """Wrap ``body`` with the guest preamble: started marker, modules, Python in RAM, env, exit code file."""
    rd = shlex.quote(str(results_dir))
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    packed = ram_python_tarball(results_dir, ram_extra) if ram_python else None
    ram = ram_python_preamble(packed, results_dir / "ram-python.log") if packed else ""
    return (
        f"date +%s.%N > {rd}/{STARTED_MARKER}; "
        f"cat /proc/uptime > {rd}/guest-uptime-at-start; "
        # the kernel log, streamed into the rwdir: hung netdev deletes etc. show up only there
        f"(dmesg -w > {rd}/dmesg.log 2>&1 &); "
        # max_bonds=0: otherwise loading bonding creates an unconfigured bond0 in the root namespace
        f"{{ modprobe bonding max_bonds=0 && modprobe -a {' '.join(LAB_MODULES)}; }} > {rd}/modprobe.log 2>&1 "
        f"|| echo 'lab: modprobe failed' >&2; "
        f"{ram}"
        f"mkdir -p {shlex.quote(env.get('HOME', '/tmp/lab-home'))}; "
        f"export {exports}; "
        f"{body}; rc=$?; echo $rc > {rd}/rc; exit $rc"
    )
