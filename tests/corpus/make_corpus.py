"""Regenerates the small files of tests/corpus and expected.tsv: .venv/bin/python tests/corpus/make_corpus.py.

The files are committed so a reader can open them; big inputs (deep nesting, huge files) are
made by tests/test_corpus.py at test time instead of committing megabytes.
"""
from pathlib import Path

OUT = Path(__file__).resolve().parent
BASE = """version: 1
links:
  bond0:
    ends:
      r2: {addresses: [10.67.0.1/24]}
      r1: {addresses: [10.67.0.2/24]}
    tunnels:
      gre1:
        ends: {r2: 10.65.0.2, r1: 10.65.0.6}
      gre2:
        ends: {r2: 10.65.0.14, r1: 10.65.0.10}
"""
def sub(old, new, base=BASE):
    assert old in base, old
    return base.replace(old, new, 1)
def link_opt(line):   # an option of bond0, before ends
    return sub("    ends:\n      r2: {", f"    {line}\n    ends:\n      r2: {{")
def t1(line):         # an option of gre1
    return sub("ends: {r2: 10.65.0.2, r1: 10.65.0.6}", "ends: {r2: 10.65.0.2, r1: 10.65.0.6}\n        " + line)
def mon(text):
    return BASE + "    monitor: " + text + "\n"
BOND1 = BASE.split("links:\n")[1].replace("bond0", "bond1").replace("10.67.", "10.69.")
C = {}
def add(name, text, path, frag):
    C[name] = (text, path, frag)
# syntax
add("syntax-unclosed-flow.yaml", sub("[10.67.0.1/24]", "[10.67.0.1/24"), "", "YAML syntax error")
add("syntax-tab-indent.yaml", sub("      gre1:", "\tgre1:"), "", "tabs are not allowed for indentation")
add("syntax-bad-indent.yaml", sub("    tunnels:", "   tunnels:"), "", "YAML syntax error")
add("syntax-two-documents.yaml", BASE + "---\nversion: 1\n", "", "YAML syntax error")
add("syntax-undefined-alias.yaml", sub("10.67.0.1/24]", "*nowhere]"), "", "undefined alias")
add("syntax-control-character.yaml", sub("gre2:", "gre2\x07:"), "", "U+0007")
add("duplicate-key.yaml", BASE + "    tunnels: {}\n", "", "duplicate key 'tunnels'")
add("duplicate-top-key.yaml", BASE + "version: 1\n", "", "duplicate key 'version'")
add("merge-key.yaml", "defaults: &d {ttl: 64}\n" + sub("    ends:\n      r2: {", "    <<: *d\n    ends:\n      r2: {"), "", "merge keys")
add("tag-python-object.yaml", sub("version: 1", "version: !!python/object/apply:os.system ['touch /tmp/pwned']"), "", "'!!python/object/apply:os.system' is not supported")
add("tag-custom.yaml", link_opt("mode: !bond balance-rr"), "", "'!bond' is not supported")
add("mapping-key-is-a-list.yaml", sub("  bond0:", "  [bond0]:"), "", "mapping key must be a plain name")
# top level
add("empty.yaml", "", "", "the file is empty")
add("only-comments.yaml", "# nothing here\n", "", "holds no YAML document")
add("top-level-list.yaml", "- version: 1\n", "", "must be a mapping")
add("top-level-scalar.yaml", "grebond\n", "", "must be a mapping")
add("version-missing.yaml", BASE.replace("version: 1\n", ""), "version", "add 'version: 1'")
add("version-unsupported.yaml", BASE.replace("version: 1", "version: 2"), "version", "unsupported version 2")
add("version-quoted.yaml", BASE.replace("version: 1", "version: '1'"), "version", "without quotes")
add("links-missing.yaml", "version: 1\n", "links", "add a 'links:' mapping")
add("links-empty.yaml", "version: 1\nlinks:\n", "links", "is empty")
add("links-is-a-list.yaml", "version: 1\nlinks: [bond0]\n", "links", "must be a mapping")
add("unknown-top-key.yaml", BASE + "linkz: {}\n", "linkz", "did you mean 'links'?")
add("unknown-link-key.yaml", link_opt("tll: 64"), "links.bond0.tll", "did you mean 'ttl'?")
add("unknown-tunnel-key.yaml", t1("kye: 5"), "links.bond0.tunnels.gre1.kye", "did you mean 'key'?")
add("unknown-monitor-key.yaml", mon("{type: arp, intervall: 100ms}"), "links.bond0.monitor.intervall", "did you mean 'interval'?")
add("unknown-end-key.yaml", sub("{addresses: [10.67.0.1/24]}", "{address: [10.67.0.1/24]}"), "links.bond0.ends.r2.address", "did you mean 'addresses'?")
# types
add("link-is-a-string.yaml", "version: 1\nlinks:\n  bond0: balance-rr\n", "links.bond0", "must be a mapping")
add("tunnels-is-a-list.yaml", BASE.split("    tunnels:")[0] + "    tunnels: [gre1, gre2]\n", "links.bond0.tunnels", "must be a mapping")
add("tunnel-ends-is-a-list.yaml", sub("ends: {r2: 10.65.0.2, r1: 10.65.0.6}", "ends: [10.65.0.2, 10.65.0.6]"), "links.bond0.tunnels.gre1.ends", "must be a mapping")
add("tunnel-end-is-a-number.yaml", sub("r2: 10.65.0.2,", "r2: 42,"), "links.bond0.tunnels.gre1.ends.r2", "must be an IP address, not the number 42")
add("addresses-is-a-mapping.yaml", sub("{addresses: [10.67.0.1/24]}", "{addresses: {ip: 10.67.0.1/24}}"), "links.bond0.ends.r2.addresses", "must be a list of addresses")
add("address-is-a-number.yaml", sub("[10.67.0.1/24]", "[42]"), "links.bond0.ends.r2.addresses[0]", "not the number 42")
add("ttl-is-text.yaml", link_opt("ttl: high"), "links.bond0.ttl", "must be a whole number")
add("ttl-is-a-date.yaml", link_opt("ttl: 2024-01-01"), "links.bond0.ttl", "not the date 2024-01-01")
add("mtu-is-text.yaml", link_opt("mtu: Auto"), "links.bond0.mtu", "write 'mtu: auto'")
add("mode-is-a-number.yaml", link_opt("mode: 4"), "links.bond0.mode", "4 is '802.3ad'")
add("mode-misspelt.yaml", link_opt("mode: balance-r"), "links.bond0.mode", "did you mean 'balance-rr'?")
add("monitor-is-text.yaml", mon("arp"), "links.bond0.monitor", "must be a mapping")
add("monitor-type-misspelt.yaml", mon("{type: arpp}"), "links.bond0.monitor.type", "did you mean 'arp'?")
add("interval-without-unit.yaml", mon("{interval: 100}"), "links.bond0.monitor.interval", "like '100ms'")
add("plaintext-flag-is-text.yaml", link_opt("allow-plaintext-underlay: maybe"), "links.bond0.allow-plaintext-underlay", "write true or false")
# ranges
add("tunnel-key-zero.yaml", t1("key: 0"), "links.bond0.tunnels.gre1.key", "key 0 means 'no key'")
add("tunnel-key-too-big.yaml", t1("key: 4294967296"), "links.bond0.tunnels.gre1.key", "out of range")
add("tunnel-key-negative.yaml", t1("key: -1"), "links.bond0.tunnels.gre1.key", "out of range")
add("ttl-too-big.yaml", link_opt("ttl: 256"), "links.bond0.ttl", "256 is out of range")
add("underlay-mtu-too-small.yaml", link_opt("underlay-mtu: 100"), "links.bond0.underlay-mtu", "out of range")
add("missed-max-zero.yaml", mon("{missed-max: 0}"), "links.bond0.monitor.missed-max", "out of range")
add("interval-too-long.yaml", mon("{interval: 3600s}"), "links.bond0.monitor.interval", "out of range")
add("encaplimit-on-ipv4.yaml", t1("encaplimit: 4"), "links.bond0.tunnels.gre1.encaplimit", "only applies to IPv6")
add("weight-too-big.yaml", t1("weight: 9"), "links.bond0.tunnels.gre1.weight", "9 is out of range")
add("weight-copy-name-taken.yaml", sub("      gre2:", "      gre1b:", t1("weight: 2")), "links.bond0.tunnels.gre1.weight", "which is already another tunnel")
add("weight-copy-name-too-long.yaml", sub("      gre1:", "      gre-via-router1:", t1("weight: 2")), "links.bond0.tunnels.gre-via-router1.weight", "Linux allows at most 15")
add("delay-without-unit.yaml", t1("delay: 9"), "links.bond0.tunnels.gre1.delay", "is not a delay with a unit")
add("delay-in-seconds.yaml", t1("delay: 2s"), "links.bond0.tunnels.gre1.delay", "write '2000ms'")
add("delay-too-long.yaml", t1("delay: 2000ms"), "links.bond0.tunnels.gre1.delay", "2000ms is out of range")
# names
add("name-too-long.yaml", sub("  bond0:", "  bond-to-the-far-site:"), "links.bond-to-the-far-site", "Linux allows at most 15")
add("tunnel-name-too-long.yaml", sub("      gre1:", "      gre-via-router-one:"), "links.bond0.tunnels.gre-via-router-one", "Linux allows at most 15")
add("name-with-slash.yaml", sub("      gre1:", "      gre/1:"), "links.bond0.tunnels.gre/1", "contains '/'")
add("name-with-colon.yaml", sub("  bond0:", "  bond0:1:"), "links.bond0:1", "contains '/', ':'")
add("name-with-space.yaml", sub("      gre1:", "      'gre 1':"), "links.bond0.tunnels.gre 1", "white space")
add("name-reserved-gre0.yaml", sub("      gre1:", "      gre0:"), "links.bond0.tunnels.gre0", "created by the kernel itself")
add("node-name-invalid.yaml", sub("      r1: {", "      -r1: {").replace("r1: 10.65", "-r1: 10.65"), "links.bond0.ends.-r1", "not a valid node name")
add("tunnel-name-equals-bond-name.yaml", sub("      gre1:", "      bond0:"), "links.bond0.tunnels.bond0", "already used by links.bond0")
add("name-used-twice-across-links.yaml", BASE + BOND1.replace("10.65.0.2,", "10.65.1.2,").replace("10.65.0.14", "10.65.1.14"), "links.bond1.tunnels.gre1", "already used by links.bond0.tunnels.gre1 on r1 and r2")
add("primary-not-a-tunnel.yaml", link_opt("mode: active-backup\n    primary: gre3"), "links.bond0.primary", "did you mean 'gre2'?")
# addresses and families
add("address-without-prefix.yaml", sub("[10.67.0.1/24]", "[10.67.0.1]"), "links.bond0.ends.r2.addresses[0]", "'10.67.0.1/24'")
add("address-bad-prefix.yaml", sub("[10.67.0.1/24]", "[10.67.0.1/33]"), "links.bond0.ends.r2.addresses[0]", "not a valid IP address")
add("address-bad-octet.yaml", sub("[10.67.0.1/24]", "[10.67.0.300/24]"), "links.bond0.ends.r2.addresses[0]", "not a valid IP address")
add("address-is-network.yaml", sub("[10.67.0.1/24]", "[10.67.0.0/24]"), "links.bond0.ends.r2.addresses[0]", "network address")
add("address-listed-twice.yaml", sub("[10.67.0.1/24]", "[10.67.0.1/24, 10.67.0.1/24]"), "links.bond0.ends.r2.addresses[1]", "listed twice")
add("addresses-missing.yaml", sub("{addresses: [10.67.0.1/24]}", "{}"), "links.bond0.ends.r2.addresses", "missing")
add("tunnel-end-with-prefix.yaml", sub("r2: 10.65.0.2,", "r2: 10.65.0.2/30,"), "links.bond0.tunnels.gre1.ends.r2", "give the address alone: '10.65.0.2'")
add("tunnel-end-invalid.yaml", sub("r2: 10.65.0.2,", "r2: 10.65.0.256,"), "links.bond0.tunnels.gre1.ends.r2", "not a valid IP address")
add("tunnel-end-multicast.yaml", sub("r2: 10.65.0.2,", "r2: 224.0.0.1,"), "links.bond0.tunnels.gre1.ends.r2", "cannot be a tunnel endpoint")
add("tunnel-mixed-families.yaml", sub("r1: 10.65.0.6", "r1: 'fd65::6'"), "links.bond0.tunnels.gre1.ends", "mixes IPv4")
add("tunnel-same-address-both-ends.yaml", sub("r1: 10.65.0.6", "r1: 10.65.0.2"), "links.bond0.tunnels.gre1.ends", "both ends have the address")
add("tunnel-end-unknown-node.yaml", sub("r1: 10.65.0.6", "r3: 10.65.0.6"), "links.bond0.tunnels.gre1.ends.r3", "not an end of this link")
add("tunnel-end-missing-node.yaml", sub("{r2: 10.65.0.2, r1: 10.65.0.6}", "{r2: 10.65.0.2}"), "links.bond0.tunnels.gre1.ends", "has no address for r1")
add("ends-three-nodes.yaml", sub("      r1: {addresses: [10.67.0.2/24]}", "      r1: {addresses: [10.67.0.2/24]}\n      r3: {addresses: [10.67.0.3/24]}"), "links.bond0.ends", "exactly two ends")
add("ends-one-node.yaml", sub("      r1: {addresses: [10.67.0.2/24]}\n", ""), "links.bond0.ends", "exactly two ends")
add("ends-missing.yaml", sub("    ends:\n      r2: {addresses: [10.67.0.1/24]}\n      r1: {addresses: [10.67.0.2/24]}\n", ""), "links.bond0.ends", "missing")
add("tunnels-missing.yaml", BASE.split("    tunnels:")[0], "links.bond0.tunnels", "missing")
add("tunnels-empty.yaml", BASE.split("    tunnels:")[0] + "    tunnels: {}\n", "links.bond0.tunnels", "is empty")
add("bond-same-address-both-ends.yaml", sub("10.67.0.2/24", "10.67.0.1/24"), "links.bond0.ends", "both ends have the bond address 10.67.0.1")
add("bond-different-subnets.yaml", sub("10.67.0.2/24", "10.68.0.2/24"), "links.bond0.ends.r2.addresses", "not in the same subnet")
add("bond-ipv6-on-one-end-only.yaml", sub("[10.67.0.1/24]", "[10.67.0.1/24, 'fd67::1/64']"), "links.bond0.ends.r2.addresses", "but r1 has none")
# an IPv6-only bond is probed by the NS monitor; IPv4 targets need an IPv4 address to send from
add("ipv4-targets-on-ipv6-only-bond.yaml", sub("[10.67.0.2/24]", "['fd67::2/64']").replace("[10.67.0.1/24]", "['fd67::1/64']")+ "    monitor: {targets: [10.67.0.2]}\n", "links.bond0.monitor.targets", "has no IPv4 address to send its probes")
# duplicates (demux)
add("tunnels-same-pair-no-key.yaml", sub("{r2: 10.65.0.14, r1: 10.65.0.10}", "{r2: 10.65.0.2, r1: 10.65.0.6}"), "links.bond0.tunnels.gre2", "distinct 'key:' values")
add("tunnels-same-pair-same-key.yaml", sub("{r2: 10.65.0.14, r1: 10.65.0.10}", "{r2: 10.65.0.2, r1: 10.65.0.6}\n        key: 7", t1("key: 7")), "links.bond0.tunnels.gre2", "the same key 7")
# monitors and modes
add("gre-as-bond-slave.yaml", t1("kind: gre"), "links.bond0.tunnels.gre1.kind", "use 'gretap'")
add("tunnel-kind-unknown.yaml", t1("kind: vxlan"), "links.bond0.tunnels.gre1.kind", "not a supported tunnel kind")
add("arp-with-802.3ad.yaml", link_opt("mode: 802.3ad\n    monitor: {type: arp}"), "links.bond0.monitor.type", "does not allow ARP monitoring in 802.3ad")
add("arp-with-balance-tlb.yaml", link_opt("mode: balance-tlb\n    monitor: {type: arp}"), "links.bond0.monitor.type", "balance-tlb")
add("arp-with-balance-alb.yaml", link_opt("mode: balance-alb\n    monitor: {type: arp}"), "links.bond0.monitor.type", "balance-alb")
add("validate-all-balance-rr.yaml", mon("{validate: all}"), "links.bond0.monitor.validate", "use 'validate: filter'")
add("missed-max-with-mii.yaml", mon("{type: mii, missed-max: 3}"), "links.bond0.monitor.missed-max", "only applies to ARP")
add("targets-ipv6-without-ipv6-bond.yaml", mon("{targets: ['fd67::2']}"), "links.bond0.monitor.targets", "has no IPv6 address to send its probes")
add("targets-not-an-address.yaml", mon("{targets: ['peer']}"), "links.bond0.monitor.targets", "'peer' is not an IP address")
add("updelay-with-arp.yaml", link_opt("updelay: 200ms"), "links.bond0.updelay", "only applies to MII")
add("lacp-rate-in-balance-rr.yaml", link_opt("lacp-rate: fast"), "links.bond0.lacp-rate", "has no effect in balance-rr")
# MTU
add("mtu-below-576.yaml", link_opt("mtu: 500"), "links.bond0.mtu", "below 576")
add("mtu-zero.yaml", link_opt("mtu: 0"), "links.bond0.mtu", "below 576")
add("mtu-ipv6-below-1280.yaml", sub("[10.67.0.1/24]", "[10.67.0.1/24, 'fd67::1/64']").replace("[10.67.0.2/24]", "[10.67.0.2/24, 'fd67::2/64']") + "    mtu: 1200\n", "links.bond0.mtu", "below 1280")
add("mtu-above-tunnels.yaml", link_opt("mtu: 1500"), "links.bond0.mtu", "more than the tunnels can carry (1382)")
add("underlay-mtu-ipv6-too-small.yaml", sub("{r2: 10.65.0.2, r1: 10.65.0.6}", "{r2: 'fd65::2', r1: 'fd65::6'}\n        underlay-mtu: 1000"), "links.bond0.tunnels.gre1.underlay-mtu", "minimum for an IPv6 underlay")
# aliases, junk, encodings (small ones; big ones are generated at test time)
lol = "version: 1\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{i}: &l{i} [" + ", ".join([f"*l{i-1}"] * 9) + "]\n" for i in range(1, 10)) + "links: *l9\n"
add("alias-bomb.yaml", lol, "", "expands to too many values")
add("non-utf8.yaml", BASE.encode().replace(b"bond0", b"bond\xe9"), "", "not UTF-8")
add("utf16.yaml", BASE.encode("utf-16"), "", "UTF-16")
add("nul-byte.yaml", BASE.encode().replace(b"gre2", b"gre\x002"), "", "NUL byte")
add("binary-junk.bin", bytes(range(256)) * 4, "", "NUL byte")
add("random-text.yaml", "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n", "", "must be a mapping")
add("json-array.yaml", '[{"version": 1}]\n', "", "must be a mapping")

for f in OUT.glob("*"):
    if f.suffix in (".yaml", ".bin"):
        f.unlink()
lines = []
for name, (text, path, frag) in sorted(C.items()):
    data = text if isinstance(text, bytes) else text.encode()
    (OUT / name).write_bytes(data)
    lines.append(f"{name}\t{path}\t{frag}")
(OUT / "expected.tsv").write_text(
    "# file<TAB>path the message must name (empty: not tied to a key)<TAB>fragment of what is wrong or the fix\n"
    + "\n".join(lines) + "\n")
print(len(C))
