"""Validation: one test per error class of issue 2, asserting the line a user reads.

Each case edits a known-good config (BASE) in one place and checks file:line, the path in the
file, what is wrong and the fix.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grebond.cli import main
from grebond.errors import ConfigError
from grebond.validation import parse_config

from models import MINIMAL as BASE


def edit(old: str, new: str, base: str = BASE) -> str:
    assert old in base, old
    return base.replace(old, new, 1)


def link_option(text: str, base: str = BASE) -> str:
    """Add ``text`` to bond0 on line 4 (before 'ends:')."""
    return edit("    ends:\n      r2: {", f"    {text}\n    ends:\n      r2: {{", base)


def gre1_option(text: str) -> str:
    """Add ``text`` to gre1 on line 10."""
    return edit("ends: {r2: 10.65.0.2, r1: 10.65.0.6}", "ends: {r2: 10.65.0.2, r1: 10.65.0.6}\n        " + text)


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "f.yaml")
    return [str(p) for p in info.value.problems]


def warnings(text: str) -> list[str]:
    _, found = parse_config(text, "f.yaml")
    return [str(w) for w in found]


IPV6_BOND = edit("[10.67.0.1/24]", "[10.67.0.1/24, 'fd67::1/64']").replace("[10.67.0.2/24]",
                                                                          "[10.67.0.2/24, 'fd67::2/64']")

CASES = {
    "yaml-syntax": (edit("[10.67.0.1/24]", "[10.67.0.1/24"),
                    "f.yaml:5:36: YAML syntax error: did not find expected ',' or ']'; "
                    "fix the indentation or quoting on that line"),
    "offloads-not-on-off-auto": (link_option("offloads: maybe"),
                                 "f.yaml:4: links.bond0.offloads: 'maybe' is not auto, on or off; use off (one flow "
                                 "striped per packet in balance-rr), on, or auto (the kernel's choice)"),
    "wrong-type": (link_option("ttl: high"),
                   "f.yaml:4: links.bond0.ttl: must be a whole number, not the text 'high'; "
                   "use 1 to 255 (255 is the usual), or 0 to inherit"),
    "unknown-key-did-you-mean": (gre1_option("kye: 2"),
                                 "f.yaml:10: links.bond0.tunnels.gre1.kye: unknown key 'kye'; did you mean 'key'?"),
    "missing-version": (BASE.replace("version: 1\n", ""),
                        "f.yaml:1: version: missing; add 'version: 1' at the top of the file"),
    "unsupported-version": (BASE.replace("version: 1", "version: 2"),
                            "f.yaml:1: version: unsupported version 2; this grebond reads version 1; "
                            "write 'version: 1'"),
    "name-longer-than-15-bytes": (edit("      gre1:", "      gre-via-router-one:"),
                                  "f.yaml:8: links.bond0.tunnels.gre-via-router-one: the tunnel name "
                                  "'gre-via-router-one' is 18 bytes; Linux allows at most 15; "
                                  "shorten it, e.g. 'gre-via-router-'"),
    "name-with-slash": (edit("  bond0:", "  bond/0:"),
                        "f.yaml:3: links.bond/0: the bond name 'bond/0' contains '/', ':' or white space, "
                        "which Linux forbids; use letters, digits, '-', '_' and '.'"),
    "name-with-colon": (edit("      gre1:", "      gre:1:"),
                        "f.yaml:8: links.bond0.tunnels.gre:1: the tunnel name 'gre:1' contains '/', ':' or white "
                        "space, which Linux forbids; use letters, digits, '-', '_' and '.'"),
    "name-with-space": (edit("      gre1:", "      'gre 1':"),
                        "f.yaml:8: links.bond0.tunnels.gre 1: the tunnel name 'gre 1' contains '/', ':' or white "
                        "space, which Linux forbids; use letters, digits, '-', '_' and '.'"),
    "bad-ip-address": (edit("r2: 10.65.0.2,", "r2: 10.65.0.256,"),
                       "f.yaml:9: links.bond0.tunnels.gre1.ends.r2: '10.65.0.256' is not a valid IP address; "
                       "write the underlay address, e.g. 10.65.0.2 or fd65::2"),
    "bad-prefix": (edit("[10.67.0.1/24]", "[10.67.0.1/33]"),
                   "f.yaml:5: links.bond0.ends.r2.addresses[0]: '10.67.0.1/33' is not a valid IP address with "
                   "prefix; write it like 10.67.0.1/24 or fd67::1/64"),
    "missing-prefix": (edit("[10.67.0.1/24]", "[10.67.0.1]"),
                       "f.yaml:5: links.bond0.ends.r2.addresses[0]: '10.67.0.1' has no prefix length; "
                       "write it with one, e.g. '10.67.0.1/24'"),
    "tunnel-end-not-an-end": (edit("r1: 10.65.0.6", "r3: 10.65.0.6"),
                              "f.yaml:9: links.bond0.tunnels.gre1.ends.r3: 'r3' is not an end of this link; "
                              "did you mean 'r1'?"),
    "tunnel-end-missing": (edit("{r2: 10.65.0.2, r1: 10.65.0.6}", "{r2: 10.65.0.2}"),
                           "f.yaml:9: links.bond0.tunnels.gre1.ends: has no address for r1; add 'r1: <its underlay "
                           "address>'; every tunnel joins both ends of the link"),
    "tunnel-end-is-a-number": (edit("r2: 10.65.0.2,", "r2: 42,"),
                               "f.yaml:9: links.bond0.tunnels.gre1.ends.r2: must be an IP address, not the number "
                               "42; write the underlay address, e.g. 10.65.0.2"),
    "link-with-three-ends": (edit("      r1: {addresses: [10.67.0.2/24]}\n",
                                  "      r1: {addresses: [10.67.0.2/24]}\n      r3: {addresses: [10.67.0.3/24]}\n"),
                             "f.yaml:5: links.bond0.ends: has 3 node(s); a link has exactly two ends; "
                             "list the two routers this bond joins"),
    "mixed-address-families": (edit("r1: 10.65.0.6", "r1: 'fd65::6'"),
                               "f.yaml:9: links.bond0.tunnels.gre1.ends: mixes IPv4 (10.65.0.2) and IPv6 (fd65::6); "
                               "both ends of a tunnel must use the same address family"),
    "same-pair-no-keys": (edit("{r2: 10.65.0.14, r1: 10.65.0.10}", "{r2: 10.65.0.2, r1: 10.65.0.6}"),
                          "f.yaml:11: links.bond0.tunnels.gre2: has the same underlay address pair (10.65.0.2 and "
                          "10.65.0.6) and no key as links.bond0.tunnels.gre1, so the kernel on r1 and r2 cannot "
                          "tell their packets apart; use another underlay address pair, or give the tunnels "
                          "distinct 'key:' values"),
    "l3-gre-as-slave": (gre1_option("kind: gre"),
                        "f.yaml:10: links.bond0.tunnels.gre1.kind: 'gre' is a layer-3 tunnel and cannot be a bond "
                        "slave (a bond carries Ethernet frames); use 'gretap' (or leave 'kind' out): GRETAP carries "
                        "Ethernet over GRE"),
    "arp-with-802.3ad": (link_option("mode: 802.3ad\n    monitor: {type: arp}"),
                         "f.yaml:5: links.bond0.monitor.type: the kernel does not allow ARP monitoring in 802.3ad "
                         "mode; use 'type: mii' with this mode, or use balance-rr or active-backup with ARP"),
    "arp-with-balance-tlb": (link_option("mode: balance-tlb\n    monitor: {type: arp}"),
                             "f.yaml:5: links.bond0.monitor.type: the kernel does not allow ARP monitoring in "
                             "balance-tlb mode; use 'type: mii' with this mode, or use balance-rr or active-backup "
                             "with ARP"),
    "arp-with-balance-alb": (link_option("mode: balance-alb\n    monitor: {type: arp}"),
                             "f.yaml:5: links.bond0.monitor.type: the kernel does not allow ARP monitoring in "
                             "balance-alb mode; use 'type: mii' with this mode, or use balance-rr or active-backup "
                             "with ARP"),
    "validate-all-with-balance-rr": (link_option("monitor: {validate: all}"),
                                     "f.yaml:4: links.bond0.monitor.validate: 'validate: all' in balance-rr drops "
                                     "every slave: ARP replies come back on another tunnel than the request left on; "
                                     "use 'validate: filter' or 'none'"),
    "same-bond-address": (edit("10.67.0.2/24", "10.67.0.1/24"),
                          "f.yaml:5: links.bond0.ends: both ends have the bond address 10.67.0.1; "
                          "give r1 a different address in 10.67.0.0/24"),
    "different-subnets": (edit("10.67.0.2/24", "10.68.0.2/24"),
                          "f.yaml:5: links.bond0.ends.r2.addresses: r2's 10.67.0.1/24 is not in the same subnet as "
                          "r1's 10.68.0.2/24; put both ends' bond addresses in one subnet with the same prefix "
                          "length"),
    "mtu-below-1280-with-ipv6": (IPV6_BOND + "    mtu: 1200\n",
                                 "f.yaml:12: links.bond0.mtu: the bond MTU 1200 is below 1280, the minimum for IPv6, "
                                 "and the bond has IPv6 addresses; set 'mtu:' to at least 1280 or 'auto' or remove "
                                 "the IPv6 addresses"),
    "mtu-below-576": (link_option("mtu: 500"),
                      "f.yaml:4: links.bond0.mtu: the bond MTU 500 is below 576, the minimum for IPv4; "
                      "set 'mtu:' to at least 576 or 'auto'"),
    "mtu-zero": (link_option("mtu: 0"),
                 "f.yaml:4: links.bond0.mtu: the bond MTU 0 is below 576, the minimum for IPv4; "
                 "set 'mtu:' to at least 576 or 'auto'"),
    "auto-mtu-below-1280-with-ipv6": (edit("    tunnels:", "    underlay-mtu: 1300\n    tunnels:", IPV6_BOND),
                                      "f.yaml:7: links.bond0.mtu: the bond MTU 1262 is below 1280, the minimum for "
                                      "IPv6, and the bond has IPv6 addresses; raise underlay-mtu or remove the IPv6 "
                                      "addresses"),
    "name-twice-on-a-node": (edit("      gre1:", "      bond0:"),
                             "f.yaml:8: links.bond0.tunnels.bond0: the interface name 'bond0' is already used by "
                             "links.bond0 on r1 and r2; give each bond and tunnel of a node its own name"),
    "mode-as-number": (link_option("mode: 4"),
                       "f.yaml:4: links.bond0.mode: the number 4 is not a valid value; write the name: 4 is '802.3ad'"),
    "links-empty": ("version: 1\nlinks:\n",
                    "f.yaml:2: links: is empty; describe at least one bond under 'links:'"),
    "tunnel-key-zero": (gre1_option("key: 0"),
                        "f.yaml:10: links.bond0.tunnels.gre1.key: key 0 means 'no key' to the kernel and networkd; "
                        "remove 'key', or use 1 to 4294967295"),
    # weight: N keyed copies of a tunnel (gre1, gre1b, ...); delay: a netem qdisc on both ends
    "weight-out-of-range": (gre1_option("weight: 9"),
                            "f.yaml:10: links.bond0.tunnels.gre1.weight: 9 is out of range; use 1 to 8: the path's "
                            "share of packets relative to the others"),
    "weight-zero": (gre1_option("weight: 0"),
                    "f.yaml:10: links.bond0.tunnels.gre1.weight: 0 is out of range; use 1 to 8: the path's "
                    "share of packets relative to the others"),
    "weight-copy-has-another-tunnels-name": (edit("      gre2:", "      gre1b:", gre1_option("weight: 2")),
                                             "f.yaml:10: links.bond0.tunnels.gre1.weight: 2 makes a copy of 'gre1' "
                                             "named 'gre1b', which is already another tunnel of this link; rename "
                                             "'gre1' or 'gre1b', or lower the weight"),
    "weight-copy-name-too-long": (edit("      gre1:", "      gre-via-router1:", gre1_option("weight: 2")),
                                  "f.yaml:10: links.bond0.tunnels.gre-via-router1.weight: 2 names copies of "
                                  "'gre-via-router1' gre-via-router1b, and 'gre-via-router1b' is 16 bytes; Linux allows "
                                  "at most 15; shorten the tunnel's name to at most 14 characters (a copy adds one "
                                  "letter)"),
    "weight-copy-key-past-32-bits": (gre1_option("key: 4294967295\n        weight: 2"),
                                     "f.yaml:11: links.bond0.tunnels.gre1.weight: 2 needs keys 4294967295 to 4294967296 "
                                     "for 'gre1' and its copies, past the largest GRE key 4294967295; use a key of at "
                                     "most 4294967294"),
    "weight-copy-key-clash": (edit("{r2: 10.65.0.14, r1: 10.65.0.10}", "{r2: 10.65.0.2, r1: 10.65.0.6}\n        key: 1",
                                   gre1_option("weight: 2")),
                              "f.yaml:12: links.bond0.tunnels.gre2: has the same underlay address pair (10.65.0.2 and "
                              "10.65.0.6) and the same key 1 as links.bond0.tunnels.gre1's copy gre1b (key 1), so the "
                              "kernel on r1 and r2 cannot tell their packets apart; use another underlay address pair, "
                              "or give the tunnels distinct 'key:' values"),
    "weight-copy-name-used-by-another-link": (
        gre1_option("weight: 2") + BASE.split("links:\n")[1].replace("bond0", "bond1").replace("10.67.", "10.69.")
        .replace("      gre1:", "      gre1b:").replace("      gre2:", "      gre9:")
        .replace("10.65.0.2,", "10.65.1.2,").replace("10.65.0.14", "10.65.1.14"),
        "f.yaml:18: links.bond1.tunnels.gre1b: the interface name 'gre1b' is already used by "
        "links.bond0.tunnels.gre1's copy gre1b (key 1) on r1 and r2; give each bond and tunnel of a node its own name"),
    "delay-without-unit": (gre1_option("delay: 9"),
                           "f.yaml:10: links.bond0.tunnels.gre1.delay: '9' is not a delay with a unit; write "
                           "milliseconds with at most 3 decimals or whole microseconds, like '9ms' or '9500us'"),
    "delay-finer-than-a-microsecond": (gre1_option("delay: 9.5001ms"),
                                       "f.yaml:10: links.bond0.tunnels.gre1.delay: '9.5001ms' is finer than a "
                                       "microsecond; write milliseconds with at most 3 decimals or whole microseconds, "
                                       "like '9.5ms' or '9500us'"),
    "delay-out-of-range": (gre1_option("delay: 1001ms"),
                           "f.yaml:10: links.bond0.tunnels.gre1.delay: 1001ms is out of range; use 0ms to 1000ms"),
    "delay-is-a-number": (gre1_option("delay: 9.3"),
                          "f.yaml:10: links.bond0.tunnels.gre1.delay: the number 9.3 is not a delay with a unit; write "
                          "milliseconds with at most 3 decimals or whole microseconds, like '9.3ms' or '9500us'"),
    "delay-in-seconds": (gre1_option("delay: 0.5s"),
                         "f.yaml:10: links.bond0.tunnels.gre1.delay: '0.5s' is in seconds; a delay is written in ms "
                         "or us; write '500ms'"),
    "delay-negative": (gre1_option("delay: -5ms"),
                       "f.yaml:10: links.bond0.tunnels.gre1.delay: '-5ms' is not a delay with a unit; write "
                       "milliseconds with at most 3 decimals or whole microseconds, like '9.5ms' or '9500us'"),
    "weight-not-a-number": (gre1_option("weight: two"),
                            "f.yaml:10: links.bond0.tunnels.gre1.weight: must be a whole number, not the text 'two'; "
                            "use 1 to 8: the path's share of packets relative to the others"),
    "weight-copy-key-is-another-links-key": (
        edit("{r2: 10.65.0.14, r1: 10.65.0.10}", "{r2: 10.65.0.2, r1: 10.65.0.6}\n        key: 11",
             gre1_option("key: 10\n        weight: 2")),
        "f.yaml:13: links.bond0.tunnels.gre2: has the same underlay address pair (10.65.0.2 and 10.65.0.6) and the "
        "same key 11 as links.bond0.tunnels.gre1's copy gre1b (key 11), so the kernel on r1 and r2 cannot tell their "
        "packets apart; use another underlay address pair, or give the tunnels distinct 'key:' values"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_error_class(case: str) -> None:
    text, expected = CASES[case]
    assert errors(text) == [expected]


def test_weight_makes_keyed_copies_with_the_tunnels_delay() -> None:
    """gre1 weight 3: gre1 (unkeyed, so adding a weight does not recreate it), gre1b key 1, gre1c key 2,
    each with gre1's ends and delay, in file order; the keyed copies bring the bond MTU to 1398."""
    config, found = parse_config(gre1_option("weight: 3\n        delay: 9.5ms") + "    underlay-mtu: 1440\n", "f.yaml")
    link = config.links[0]
    assert found == []
    assert [(t.name, t.key, t.delay_us, t.copy_of, t.path) for t in link.tunnels] == [
        ("gre1", None, 9500, None, "gre1"), ("gre1b", 1, 9500, "gre1", "gre1"), ("gre1c", 2, 9500, "gre1", "gre1"),
        ("gre2", None, None, None, "gre2")]
    assert len({t.underlay for t in link.tunnels[:3]}) == 1 and link.mtu == 1398
    r1 = {t.name: (str(t.local), str(t.remote), t.key) for t in config.bonds_of("r1")[0].tunnels}
    assert r1["gre1c"] == ("10.65.0.6", "10.65.0.2", 2)      # the same keys on the other end


def test_weight_with_a_key_counts_up_from_it() -> None:
    config, _ = parse_config(gre1_option("key: 10\n        weight: 2"), "f.yaml")
    assert [(t.name, t.key) for t in config.links[0].tunnels] == [("gre1", 10), ("gre1b", 11), ("gre2", None)]


@pytest.mark.parametrize("written, us", [("9.5ms", 9500), ("9500us", 9500), ("0.25ms", 250), ("12ms", 12000),
                                         ("1000ms", 1_000_000), ("0ms", None), ("9.123 ms", 9123)])
def test_delay_is_read_in_microseconds(written: str, us: int | None) -> None:
    config, _ = parse_config(gre1_option(f"delay: {written}"), "f.yaml")
    assert config.links[0].tunnels[0].delay_us == us and config.links[0].tunnels[1].delay_us is None


def test_a_weight_error_is_one_line_with_its_place_and_exit_2(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "w.yaml"
    config.write_text(edit("      gre2:", "      gre1b:", gre1_option("weight: 2\n        delay: 9.3ms")))
    assert main(["validate", "-c", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"{config}:10: links.bond0.tunnels.gre1.weight: 2 makes a copy of 'gre1' named 'gre1b', which is already "
        "another tunnel of this link; rename 'gre1' or 'gre1b', or lower the weight"]


def test_delays_read_back_as_written() -> None:
    """What grebond writes (networkd DelaySec=, tc, verify) reads back to the same microseconds."""
    from grebond.model import format_delay, parse_delay

    for us in (1, 250, 9300, 9301, 12000, 999_999, 1_000_000):
        assert parse_delay(format_delay(us)) == us
    assert parse_delay("9500us") == 9500 and parse_delay("9.3") is None and parse_delay("nanms") is None


def test_weight_1_and_no_delay_change_nothing() -> None:
    plain, _ = parse_config(BASE, "f.yaml")
    same, _ = parse_config(gre1_option("weight: 1"), "f.yaml")
    assert same.links == plain.links


def test_name_twice_across_links_is_one_line_per_clash() -> None:
    second = BASE.split("links:\n")[1].replace("bond0", "bond1").replace("10.67.", "10.69.")
    second = second.replace("10.65.0.2,", "10.65.1.2,").replace("10.65.0.14", "10.65.1.14")
    assert errors(BASE + second) == [
        "f.yaml:17: links.bond1.tunnels.gre1: the interface name 'gre1' is already used by links.bond0.tunnels.gre1 "
        "on r1 and r2; give each bond and tunnel of a node its own name",
        "f.yaml:19: links.bond1.tunnels.gre2: the interface name 'gre2' is already used by links.bond0.tunnels.gre2 "
        "on r1 and r2; give each bond and tunnel of a node its own name",
    ]


def test_same_pair_with_distinct_keys_is_fine() -> None:
    text = edit("{r2: 10.65.0.14, r1: 10.65.0.10}", "{r2: 10.65.0.2, r1: 10.65.0.6}\n        key: 2",
                gre1_option("key: 1"))
    config, _ = parse_config(text, "f.yaml")
    assert [t.key for t in config.links[0].tunnels] == [1, 2]


def test_one_bad_end_does_not_make_tunnels_complain() -> None:
    """r2's addresses are wrong; the tunnels still name r2 correctly and must not be blamed."""
    assert errors(edit("[10.67.0.1/24]", "[~]")) == [
        "f.yaml:5: links.bond0.ends.r2.addresses[0]: must be an address with prefix, not empty; "
        "write it like 10.67.0.1/24"]


def test_misspelt_key_is_not_also_reported_missing() -> None:
    assert errors(edit("{addresses: [10.67.0.1/24]}", "{address: [10.67.0.1/24]}")) == [
        "f.yaml:5: links.bond0.ends.r2.address: unknown key 'address'; did you mean 'addresses'?"]


def test_bare_address_string_is_read_as_a_one_item_list() -> None:
    """Lenient on purpose: 'addresses: 10.0.0.1/24' has one obvious meaning."""
    bare, _ = parse_config(edit("[10.67.0.1/24]", "10.67.0.1/24"), "f.yaml")
    listed, _ = parse_config(BASE, "f.yaml")
    assert bare.links == listed.links


# --- warnings: legal, printed, exit 0 ---------------------------------------------------------

WARNING_CASES = {
    "monitor-none": (link_option("monitor: {type: none}"),
                     "f.yaml:4: warning: links.bond0.monitor: no link monitoring: a dead tunnel stays in the bond and "
                     "takes its share of packets (about 2/3 lost with 2 tunnels) until the underlay routing heals; "
                     "use 'type: arp' (the default)"),
    "monitor-mii": (link_option("monitor: {type: mii}"),
                    "f.yaml:4: warning: links.bond0.monitor: MII monitoring watches carrier, and a GRETAP tunnel never "
                    "drops carrier, so a dead path is never detected; use 'type: arp' (the default)"),
    "802.3ad": (link_option("mode: 802.3ad"),
                "f.yaml:4: warning: links.bond0.mode: 802.3ad needs the slaves' link speed, which a GRETAP tunnel does "
                "not report, so it may not spread traffic at all; use balance-rr (equal paths) or balance-xor "
                "(unequal paths)"),
    "balance-tlb": (link_option("mode: balance-tlb"), "links.bond0.mode: balance-tlb needs the slaves' link speed"),
    "balance-alb": (link_option("mode: balance-alb"), "links.bond0.mode: balance-alb needs the slaves' link speed"),
    "weight-in-active-backup": (link_option("mode: active-backup\n    primary: gre2", gre1_option("weight: 2")),
                                "f.yaml:12: warning: links.bond0.tunnels.gre1.weight: has no use in active-backup mode, "
                                "which sends only over one tunnel at a time; remove weight, or use balance-rr"),
    "weight-in-broadcast": (link_option("mode: broadcast", gre1_option("weight: 2")),
                            "f.yaml:11: warning: links.bond0.tunnels.gre1.weight: has no use in broadcast mode, which "
                            "sends every frame over every tunnel, so the copies only duplicate it; remove weight, or "
                            "use balance-rr"),
    "delay-in-balance-xor": (link_option("mode: balance-xor\n    xmit-hash-policy: layer3+4", gre1_option("delay: 9ms")),
                             "f.yaml:12: warning: links.bond0.tunnels.gre1.delay: only adds latency in balance-xor mode, "
                             "which keeps each flow on one tunnel; a delay evens out the round trips of a mode that "
                             "stripes one flow over every tunnel; remove delay, or use balance-rr"),
    "delay-in-active-backup": (link_option("mode: active-backup\n    primary: gre2", gre1_option("delay: 9ms")),
                               "f.yaml:12: warning: links.bond0.tunnels.gre1.delay: only adds latency in active-backup "
                               "mode, which sends only over one tunnel at a time; a delay evens out"),
    "active-backup-without-primary": (link_option("mode: active-backup"),
                                      "f.yaml:4: warning: links.bond0.mode: each end elects its active tunnel on its "
                                      "own; if they differ, frames arriving on the inactive tunnel are dropped; set "
                                      "'primary:' to the same tunnel on both ends"),
}


@pytest.mark.parametrize("case", sorted(WARNING_CASES))
def test_warning(case: str) -> None:
    text, expected = WARNING_CASES[case]
    found = warnings(text)
    assert len(found) == 1 and expected in found[0]


def test_warnings_print_and_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "g.yaml"
    config.write_text(link_option("monitor: {type: mii}"))
    assert main(["validate", "-c", str(config)]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith(f"{config}:4: warning: links.bond0.monitor: MII monitoring")
    assert "valid: 1 link(s)" in captured.out


def test_seed_and_ipv6_examples_are_valid_without_warnings() -> None:
    repo = Path(__file__).resolve().parents[1]
    for example in ("seed.yaml", "ipv6.yaml"):
        _, found = parse_config((repo / "examples" / example).read_text(), example)
        assert found == []


# --- every problem at once, nothing written, exit status ----------------------------------------

THREE_MISTAKES = gre1_option("key: 0").replace("version: 1", "version: 2").replace("r1: 10.65.0.10", "r1: 10.65.0.300")


def test_all_problems_reported_at_once() -> None:
    assert errors(THREE_MISTAKES) == [
        "f.yaml:1: version: unsupported version 2; this grebond reads version 1; write 'version: 1'",
        "f.yaml:10: links.bond0.tunnels.gre1.key: key 0 means 'no key' to the kernel and networkd; "
        "remove 'key', or use 1 to 4294967295",
        "f.yaml:12: links.bond0.tunnels.gre2.ends.r1: '10.65.0.300' is not a valid IP address; "
        "write the underlay address, e.g. 10.65.0.2 or fd65::2",
    ]


@pytest.fixture
def bad_config(tmp_path: Path) -> Path:
    config = tmp_path / "bad.yaml"
    config.write_text(THREE_MISTAKES)
    return config


def test_cli_exit_2_and_one_line_per_problem(bad_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-c", str(bad_config)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 3 and all(line.startswith(f"{bad_config}:") for line in lines)
    assert captured.out == ""


@pytest.mark.parametrize("backend", ["iproute2", "networkd", "networkmanager"])
def test_render_writes_nothing_when_invalid(backend: str, bad_config: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    status = main(["render", "--backend", backend, "-o", str(out), "-c", str(bad_config)])
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 3
    assert list(out.iterdir()) == []


def test_subprocess_exit_2_no_traceback(bad_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "grebond", "render", "--backend", "iproute2", "-o", str(out),
                           "-c", str(bad_config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 3
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize(("mode", "written", "resolved"), [
    ("balance-rr", None, None), ("balance-rr", "auto", None), ("balance-rr", "off", False),
    ("balance-xor", "on", True), ("active-backup", "false", False),
])
def test_offloads_are_the_kernels_unless_set(mode: str, written: str | None, resolved: bool | None) -> None:
    """off (what lets balance-rr stripe ONE flow per packet) and on are explicit; auto leaves the kernel's."""
    text = link_option(f"mode: {mode}")
    if written is not None:
        text = link_option(f"offloads: {written}", text)
    config, _ = parse_config(text, "f.yaml")
    assert config.links[0].offloads is resolved


def test_link_level_encaplimit_is_the_default_of_its_ipv6_tunnels() -> None:
    ipv6 = (Path(__file__).resolve().parents[1] / "examples" / "ipv6.yaml").read_text()
    config, _ = parse_config(ipv6 + "    encaplimit: 4\n", "f.yaml")
    assert [t.encaplimit for t in config.links[0].tunnels] == [4, 4]
    one = ipv6.replace('ends: {r2: "fd65::2", r1: "fd65::6"}', 'ends: {r2: "fd65::2", r1: "fd65::6"}\n        encaplimit: none')
    config, _ = parse_config(one + "    encaplimit: 4\n", "f.yaml")
    assert [t.encaplimit for t in config.links[0].tunnels] == [None, 4]      # the tunnel's own wins
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + "    encaplimit: 4\n", "f.yaml")
    assert "links.bond0.encaplimit: only applies to IPv6 (ip6gretap) tunnels, and this link has none" in str(info.value)
