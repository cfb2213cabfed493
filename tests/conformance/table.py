"""Prints the README's conformance table from a pytest JUnit XML file:

    /usr/bin/python3 -m pytest -q tests/conformance --junitxml=/tmp/cf.xml
    /usr/bin/python3 tests/conformance/table.py /tmp/cf.xml

One row per case group (Autobahn numbering), one column per server kind:
passed/run, and the strict xfails (CivetWeb 1.15 exceptions, known bugs).
"""

import re
import sys
import xml.etree.ElementTree as ET

GROUPS = [
    ("1", "framing: text and binary, lengths 0-65536, chopped writes",
     r"test_1_"),
    ("2", "ping/pong: 0-125-byte pings, 126 -> 1002, unsolicited pongs",
     r"test_2_"),
    ("3", "reserved bits -> 1002", r"test_3_"),
    ("4", "reserved opcodes 3-7, B-F -> 1002", r"test_4_"),
    ("5", "fragmentation, control frames between fragments, errors -> 1002",
     r"test_5_|test_6_1_2"),
    ("6", "UTF-8: valid, invalid (whole, fragments, writes) -> 1007, "
     "fail fast", r"test_6_"),
    ("7", "close: codes, reasons, 1-byte payload, data after close",
     r"test_7_"),
    ("9", "16 MiB messages, 16 MiB + 1 -> 1009", r"test_9_"),
    ("M", "masking: unmasked client frames -> 1002", r"test_unmasked|"
     r"test_zero_mask"),
    ("H", "opening handshake: 400 / 405 / 426, no extension, no "
     "subprotocol", r"test_h_"),
]
KINDS = ["nginx", "nginx4", "civetweb"]


def main(path):
    rows = {g[0]: {k: [0, 0, 0] for k in KINDS} for g in GROUPS}
    for tc in ET.parse(path).iter("testcase"):
        name = tc.get("name")
        m = re.match(r"(test_\w+)\[(nginx4|nginx|civetweb)", name)
        if not m:
            continue
        fn, kind = m.groups()
        group = next((g[0] for g in GROUPS if re.match(g[2], fn)), None)
        if group is None:
            continue
        cell = rows[group][kind]
        skipped = tc.find("skipped")
        failed = tc.find("failure") is not None or tc.find("error") is not None
        cell[1] += 1
        if skipped is not None and "xfail" in (skipped.get("type", "") +
                                               skipped.get("message", "")):
            cell[2] += 1
        elif not failed and skipped is None:
            cell[0] += 1
    print("| group | cases | nginx (1 worker) | nginx (4 workers) | CivetWeb |")
    print("|---|---|---|---|---|")
    tot = {k: [0, 0, 0] for k in KINDS}
    for g, desc, _ in GROUPS:
        cells = []
        for k in KINDS:
            p, n, x = rows[g][k]
            for i, v in enumerate((p, n, x)):
                tot[k][i] += v
            if n == 0:
                cells.append("--")
            else:
                cells.append("%d/%d" % (p, n) + (" (%d xfail)" % x if x
                                                 else ""))
        print("| %s | %s | %s |" % (g, desc, " | ".join(cells)))
    print("| | **total** | %s |" % " | ".join(
        "**%d/%d**" % (t[0], t[1]) + (" (%d xfail)" % t[2] if t[2] else "")
        for t in (tot[k] for k in KINDS)))


if __name__ == "__main__":
    main(sys.argv[1])
