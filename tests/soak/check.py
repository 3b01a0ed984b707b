#!/usr/bin/env python3
"""The verdict of a soak run (tests/soak/run.sh): the clients' view against the workers' logs.

Reads, in --out: client.log (fngate_soak: `OPEN <conn>` per connection the gateway accepted,
`ACKOK <conn> <seq>` per message acknowledged OK), summary.json (its counts), and <worker>.log
for each --workers name (every incarnation's stderr: `EVENT kind=... conn=... request=...`
lines, see tests/support/worker_events.h). Prints the counts and PASS or FAIL; exit code 0 for
PASS, 1 for FAIL.

PASS needs:
  - every accepted connection: exactly one disconnect event, counted by request id (a
    disconnect sent again after its worker died keeps its request id: "redelivered");
  - every message acknowledged OK: its message event (conn, seq) in some worker's log;
  - no message event logged twice (a message a worker took is never repeated);
  - no disconnect event for a connection no worker saw connect.
"""
import argparse
import collections
import json
import os
import sys


def parse_events(path):
    """Yields (kind, fields) for each EVENT line of a worker log."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.startswith("EVENT "):
                continue
            fields = {}
            for word in line.split()[1:]:
                key, sep, value = word.partition("=")
                if sep:
                    fields[key] = value
            if "kind" in fields and "conn" in fields:
                yield fields["kind"], fields


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--workers", required=True, help="comma-separated worker log names")
    parser.add_argument("--chaos", default="", help="what run.sh did, printed as is")
    args = parser.parse_args()

    with open(os.path.join(args.out, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    opened = []
    acked_ok = []
    with open(os.path.join(args.out, "client.log"), encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if parts[:1] == ["OPEN"] and len(parts) == 2:
                opened.append(parts[1])
            elif parts[:1] == ["ACKOK"] and len(parts) == 3:
                acked_ok.append((parts[1], parts[2]))

    connects = set()
    disconnect_requests = collections.defaultdict(set)
    disconnect_lines = collections.Counter()
    messages = collections.Counter()
    for name in args.workers.split(","):
        for kind, fields in parse_events(os.path.join(args.out, name + ".log")):
            conn = fields["conn"]
            if kind == "connect":
                connects.add(conn)
            elif kind == "disconnect":
                disconnect_requests[conn].add(fields.get("request", ""))
                disconnect_lines[conn] += 1
            elif kind == "message":
                messages[(conn, fields.get("seq", ""))] += 1

    exactly_once = missing = several = 0
    examples = []
    for conn in opened:
        n = len(disconnect_requests.get(conn, ()))
        if n == 1:
            exactly_once += 1
        elif n == 0:
            missing += 1
            examples.append(f"no disconnect for {conn}")
        else:
            several += 1
            examples.append(f"{n} disconnect events for {conn}")
    redelivered = sum(disconnect_lines[c] - len(r) for c, r in disconnect_requests.items())
    phantom = [c for c in disconnect_requests if c not in connects]
    examples += [f"disconnect without a connect for {c}" for c in phantom[:3]]
    reached = sum(1 for key in acked_ok if messages.get(key, 0) > 0)
    lost_acked = [key for key in acked_ok if messages.get(key, 0) == 0]
    examples += [f"message {seq} of {conn} acked OK, never logged by a worker"
                 for conn, seq in lost_acked[:3]]
    repeated = [key for key, n in messages.items() if n > 1]
    examples += [f"message {seq} of {conn} logged {messages[(conn, seq)]} times"
                 for conn, seq in repeated[:3]]

    acks_error = summary.get("acks_error", {})
    ok = (missing == 0 and several == 0 and not phantom and not lost_acked and not repeated
          and summary.get("unexpected_acks", 0) == 0 and summary.get("bad_frames", 0) == 0
          and len(opened) > 0 and summary.get("acks_ok", 0) > 0)
    print(f"connections: attempted {summary['attempts']}, accepted {len(opened)} "
          f"(envelope {summary['envelope']}, raw {summary['raw']}), "
          f"refused {summary['refused']}, connect failed {summary['connect_failed']}, "
          f"closed by the server {summary['server_closes']}, by the client "
          f"{summary['client_closes']}, broken {summary['broken']}, abandoned {summary['abandoned']}")
    print(f"messages:    sent {summary['messages']}, acks ok {summary['acks_ok']}, "
          f"acks error {sum(acks_error.values())} {acks_error}, "
          f"no answer (connection ended first) {summary['unanswered']}")
    if args.chaos:
        print(f"chaos:       {args.chaos}")
    print(f"disconnects: {exactly_once} of {len(opened)} accepted connections exactly once, "
          f"{missing} missing, {several} more than once; {redelivered} redelivered with the "
          f"same request id; {len(phantom)} without a connect")
    print(f"acked ok:    {reached} of {len(acked_ok)} reached a worker; {len(repeated)} message "
          f"events repeated")
    for example in examples[:10]:
        print(f"  problem: {example}")
    print(f"verdict: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
