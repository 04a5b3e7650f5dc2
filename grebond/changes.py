"""The record of what a change did (or, in a dry run, would do), shared by every layer that changes things.

Its own module below the kernel adapter and the backends, so neither depends on the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Changes:
    """What a write/apply/remove did; with a dry run, what it would do and the diff that shows it."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    recreated: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)
    """Unified diff lines (files, NetworkManager settings) or ``field: old -> new`` lines (the kernel)."""
    notes: list[str] = field(default_factory=list)
    """Sentences printed as they are, after the changes (e.g. that a daemon loads the files later)."""

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed or self.recreated or self.actions)

    def extend(self, other: Changes) -> None:
        self.written += other.written
        self.removed += other.removed
        self.unchanged += other.unchanged
        self.recreated += other.recreated
        self.actions += other.actions
        self.diff += other.diff
        self.notes += other.notes

    def lines(self, dry_run: bool = False) -> list[str]:
        if dry_run:
            out = [f"would write {x}" for x in self.written]
            out += [f"would remove {x}" for x in self.removed]
            out += [f"would recreate {x}" for x in self.recreated]
            out += [f"would {x}" for x in self.actions]
        else:
            out = [f"wrote {x}" for x in self.written]
            out += [f"removed {x}" for x in self.removed]
            out += [f"recreated {x}" for x in self.recreated]
            out += list(self.actions)
        if not out:
            out.append("nothing to change")
        return out + self.notes
