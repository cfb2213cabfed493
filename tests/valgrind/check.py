#!/usr/bin/python3
"""Reads the memcheck logs of one run (vg.<pid>.log, one per nginx process:
masters and the workers they forked) and fails when any process reported
an error that no suppression in tests/valgrind/nginx.supp covers, or did
not finish under valgrind (no ERROR SUMMARY: killed, or still running).

    tests/valgrind/check.py build/valgrind/run

Prints one line per process (pid, role, errors, suppressed, leak summary),
then every unsuppressed error (kind, the first frames, and whether a frame
is ours: the module, the core, or the files they are built from), then the
suppressions used and how often.  Exit status 0 = clean, 1 = errors,
2 = usage / no logs.
"""

import collections
import glob
import time
import os
import re
import sys

LINE = re.compile(r"^==(\d+)== ?(.*)$")
SUMMARY = re.compile(r"ERROR SUMMARY: (\d+) errors from (\d+) contexts "
                     r"\(suppressed: (\d+) from (\d+)\)")
USED = re.compile(r"^--\d+-- used_suppression:\s+(\d+)\s+(\S+)")
LEAK = re.compile(r"^\s*(definitely lost|indirectly lost|possibly lost|"
                  r"still reachable|suppressed): ([\d,]+) bytes in ([\d,]+) "
                  r"blocks")
OURS = re.compile(r"ngx_http_pushq|pushq::|pushq_|ngx_http_pushq_module\.so|"
                  r"common/src/|nginx_module/")
ERROR_START = re.compile(
    r"^(Invalid (read|write|free)|Mismatched free|Conditional jump|"
    r"Use of uninitialised|Syscall param|Source and destination overlap|"
    r"Argument '.*' of function|.* bytes in .* blocks are "
    r"(definitely|possibly) lost|Invalid (alignment|size)|"
    r"Process terminating|Jump to the invalid address|"
    r"Fishy value|Memory allocated by|Unaddressable)")


def parse(path):
    """One log: a dict with pid, command, parent, summary, errors, used,
    leaks."""
    out = {"path": path, "pid": None, "command": "", "parent": None,
           "summary": None, "errors": [], "used": [], "leaks": {},
           "warnings": []}
    cur = None
    with open(path, errors="replace") as f:
        for raw in f:
            u = USED.match(raw)
            if u:                   # "--pid-- used_suppression: n name"
                out["used"].append((int(u.group(1)), u.group(2)))
                continue
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue            # --gen-suppressions blocks, "{ ... }"
            out["pid"] = int(m.group(1))
            text = m.group(2)
            if text.startswith("Command: "):
                out["command"] = text[len("Command: "):]
                continue
            if text.startswith("Parent PID: "):
                out["parent"] = int(text.split()[-1])
                continue
            s = SUMMARY.search(text)
            if s:
                out["summary"] = tuple(int(x) for x in s.groups())
                continue
            lk = LEAK.match(text)
            if lk:
                out["leaks"][lk.group(1)] = int(lk.group(2).replace(",", ""))
                continue
            if text.startswith("Warning: "):
                out["warnings"].append(text)
                continue
            if text == "":
                cur = None
                continue
            if cur is None and ERROR_START.match(text):
                cur = [text]
                out["errors"].append(cur)
            elif cur is not None:
                cur.append(text)
    return out


def role(log, pids):
    return "worker" if log["parent"] in pids else "master"


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    paths = sorted(glob.glob(os.path.join(argv[1], "vg.*.log")))
    # a process stopped at the end of a test session may still be writing
    # its leak report under valgrind: give those up to 30 s to finish
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        unfinished = [p for p in paths
                      if not SUMMARY.search(open(p, errors="replace").read())]
        if not unfinished:
            break
        time.sleep(0.5)
    logs = [parse(p) for p in paths]
    logs = [g for g in logs if g["pid"] is not None]
    if not logs:
        print("valgrind check: no logs in %s" % argv[1], file=sys.stderr)
        return 2
    pids = {g["pid"] for g in logs}
    bad = 0
    used = collections.Counter()
    counts = collections.Counter()
    for g in logs:
        r = role(g, pids)
        counts[r] += 1
        for n, name in g["used"]:
            used[name] += n
        if g["summary"] is None:
            bad += 1
            print("FAIL %d (%s): no ERROR SUMMARY -- the process did not "
                  "exit under valgrind (killed?)  %s" % (g["pid"], r,
                                                        g["path"]))
            continue
        errors, _, suppressed, _ = g["summary"]
        if errors:
            bad += 1
            print("FAIL %d (%s): %d error(s), %d suppressed; %s"
                  % (g["pid"], r, errors, suppressed, g["command"]))
            for e in g["errors"]:
                ours = any(OURS.search(x) for x in e)
                print("  --- %s" % ("OURS" if ours else "not ours (nginx or "
                                    "a library: add a justified "
                                    "suppression if it is nginx's)"))
                for x in e[:14]:
                    print("    " + x)
    definite = sum(g["leaks"].get("definitely lost", 0) for g in logs)
    possible = sum(g["leaks"].get("possibly lost", 0) for g in logs)
    supp_bytes = sum(g["leaks"].get("suppressed", 0) for g in logs)
    suppressed = sum(g["summary"][2] for g in logs if g["summary"])
    print("valgrind check: %d processes (%d masters, %d workers), "
          "%d failed; unsuppressed leaks: definitely %d B, possibly %d B; "
          "suppressed: %d error(s), %d leaked bytes"
          % (len(logs), counts["master"], counts["worker"], bad, definite,
             possible, suppressed, supp_bytes))
    for name, n in sorted(used.items()):
        print("  suppression used %5d x  %s" % (n, name))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
