#!/usr/bin/env python3
"""bench/preview.py: how long `lscp-mail preview` takes from saving a file to an updated page.

Usage: bench/preview.py [BIN]     (RUNS=5 SAVES=20 ISSUE=issues/2026-02)

BIN defaults to $CARGO_TARGET_DIR/release/lscp-mail (else target/release/lscp-mail); build it
first with `cargo build --release`. Each run starts the binary on a temporary copy of ISSUE
(127.0.0.1, a free port), keeps /events open as the page's EventSource does, then SAVES times:
rewrites a section file with a new heading, and measures until the page has what it needs to
show it, that is, the `built` event has arrived and `/` and `/email` have been fetched and
`/email` holds the new heading (what the page's reload does). Prints each run's median and the
median of the runs' medians, in milliseconds. Uses only the Python standard library.
"""
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, body


class Events:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        self.buf = b""

    def lines(self):
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                yield line.rstrip(b"\r").decode()
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("the event stream ended")
            self.buf += chunk

    def next_built(self, it):
        built = False
        for line in it:
            if line == "event: built":
                built = True
            elif built and line.startswith("data: "):
                return int(line[6:])


def one_run(binary, issue, saves):
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, os.path.basename(issue))
        shutil.copytree(os.path.join(ROOT, issue), copy)
        section = sorted(f for f in os.listdir(copy) if f != "issue.toml")[1]
        path = os.path.join(copy, section)
        original = open(path).read()
        port = free_port()
        proc = subprocess.Popen(
            [binary, "preview", copy, "--listen", f"127.0.0.1:{port}"],
            cwd=ROOT, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    get(port, "/")
                    break
                except OSError:
                    time.sleep(0.05)
            events = Events(port)
            it = events.lines()
            events.next_built(it)
            times = []
            for i in range(saves):
                heading = f"Benchmark heading {i}"
                text = original.replace('heading = "', f'heading = "{heading} ', 1)
                time.sleep(0.2)  # let the previous burst settle
                start = time.perf_counter()
                with open(path, "w") as f:
                    f.write(text)
                events.next_built(it)
                get(port, "/")
                status, email = get(port, "/email")
                elapsed = (time.perf_counter() - start) * 1000
                if status != 200 or heading not in email:
                    raise SystemExit(f"save {i}: the page did not show the new heading")
                times.append(elapsed)
            return times
        finally:
            proc.terminate()
            proc.wait()


def main():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "release", "lscp-mail")
    runs = int(os.environ.get("RUNS", "5"))
    saves = int(os.environ.get("SAVES", "20"))
    issue = os.environ.get("ISSUE", "issues/2026-02")
    medians = []
    for r in range(runs):
        times = one_run(binary, issue, saves)
        m = statistics.median(times)
        medians.append(m)
        print(f"run {r + 1}: median {m:.1f} ms, min {min(times):.1f}, max {max(times):.1f} ({saves} saves)")
    print(f"save to updated page, {issue}, {binary}: median of {runs} run medians {statistics.median(medians):.1f} ms")


if __name__ == "__main__":
    main()
