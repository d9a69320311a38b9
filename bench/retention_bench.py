#!/usr/bin/python3
"""Retention under a steady load (issue 6): does the store stop growing?

Two adapterd daemons run side by side on this machine for the same time, each fed the same
steady MLLP stream (a genetic ORU^R01 with a fresh control ID each time, accessions cycling over
100 reports) and each delivering to its own real FHIR server (tests/fhir_server, validation off):

  retention  "retention": {"purge_after_seconds": AGE, "interval_seconds": 5}
  baseline   "retention": {"purge_after_seconds": 0}   (keeps everything: the store grows)

Every 15 s both stores' sizes (database + WAL, as /metrics reports adapterd_store_bytes) are
sampled. The result: the retention store's largest size, its size at the end, the baseline's, and
their ratio; the messages each received, delivered and (retention) purged. Prints a Markdown
section, kept as section 5 of bench/RESULTS.md (pasted with its reading; bench/run.sh does not
run this one: it takes the whole 10 minutes).

  bench/retention_bench.py [--minutes 10] [--rate 20] [--age 60]
"""
import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from fhir_server import FhirServer  # noqa: E402

CASE = os.path.join(REPO, "fixtures", "mappings", "genetic-obr-nested", "input.hl7")
VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"


def message(n):
    with open(CASE, "rb") as f:
        data = f.read()
    segments = [s for s in re.split(rb"\r\n|\r|\n", data) if s.strip()]
    fields = segments[0].split(b"|")
    fields[9] = b"RET-%08d" % n
    segments[0] = b"|".join(fields)
    report = n % 100
    return b"\r".join(segments).replace(b"GL-4410", b"GL-R%03d" % report).replace(
        b"SPEC-4410", b"SPEC-R%03d" % report)


class Daemon:
    def __init__(self, name, workdir, adapterd, fhir_url, retention):
        self.name = name
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        self.store = os.path.join(self.dir, "store", "adapterd.db")
        config = {"store": {"path": self.store},
                  "listeners": {"mllp": [{"name": "mllp", "port": 0}]},
                  "admin": {"port": 0}, "log": {"level": "info"}, "retention": retention,
                  "mapping": {"directory": os.path.join(REPO, "mappings")},
                  "destinations": [{"name": "ehr", "base_url": fhir_url}]}
        path = os.path.join(self.dir, "adapterd.json")
        with open(path, "w") as f:
            json.dump(config, f)
        self.log = open(os.path.join(self.dir, "adapterd.log"), "wb")
        self.proc = subprocess.Popen([adapterd, "serve", "--config", path], stdout=self.log,
                                     stderr=self.log, cwd=self.dir)
        self.port = self.admin = None
        deadline = time.time() + 20
        while time.time() < deadline and (self.port is None or self.admin is None):
            with open(os.path.join(self.dir, "adapterd.log"), "rb") as f:
                for line in f:
                    try:
                        e = json.loads(line)
                    except ValueError:
                        continue
                    if e.get("event") == "listener.started":
                        self.port = e["port"]
                    elif e.get("event") == "admin.started":
                        self.admin = e["port"]
            time.sleep(0.05)
        if self.port is None or self.admin is None:
            raise RuntimeError("%s did not start" % name)
        self.sock = socket.create_connection(("127.0.0.1", self.port))
        self.acked = 0

    def send(self, data):
        self.sock.sendall(VT + data + FS + CR)
        buf = b""
        while FS + CR not in buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed")
            buf += chunk
        if b"MSA|AA|" in buf or b"MSA|CA|" in buf:
            self.acked += 1

    def metric(self, name):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin, timeout=10) as r:
            text = r.read().decode()
        m = re.search(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M)
        return float(m.group(1)) if m else 0.0

    def stop(self):
        self.sock.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=float, default=20, help="messages per second to each daemon")
    ap.add_argument("--age", type=int, default=60, help="retention purge_after_seconds")
    ap.add_argument("--adapterd", default=os.path.join(REPO, "build-bench", "adapter", "adapterd"))
    args = ap.parse_args()
    args.adapterd = os.path.abspath(args.adapterd)
    work = tempfile.mkdtemp(prefix="retention-bench-")
    servers, daemons = [], []
    try:
        for name in ("retention", "baseline"):
            fhir_dir = os.path.join(work, "fhir-" + name)
            os.makedirs(fhir_dir)
            s = FhirServer(workdir=fhir_dir, validate=False, persist=False)
            s.start()
            servers.append(s)
        daemons.append(Daemon("retention", work, args.adapterd, servers[0].base_url,
                              {"purge_after_seconds": args.age, "interval_seconds": 5}))
        daemons.append(Daemon("baseline", work, args.adapterd, servers[1].base_url,
                              {"purge_after_seconds": 0}))
        samples = []
        stop = threading.Event()

        def sampler():
            start = time.time()
            while not stop.is_set():
                samples.append((time.time() - start, [d.metric("adapterd_store_bytes") for d in daemons],
                                daemons[0].metric("adapterd_outbox_pending")))
                stop.wait(15)

        sampling = threading.Thread(target=sampler)
        sampling.start()
        start = time.time()
        n = 0
        while time.time() - start < args.minutes * 60:
            data = message(n)
            for d in daemons:
                d.send(data)
            n += 1
            sleep = start + n / args.rate - time.time()
            if sleep > 0:
                time.sleep(sleep)
        elapsed = time.time() - start
        stop.set()
        sampling.join()
        time.sleep(3)
        final = [d.metric("adapterd_store_bytes") for d in daemons]
        final_pending = daemons[0].metric("adapterd_outbox_pending")
        delivered = [d.metric('adapterd_delivery_delivered_total') for d in daemons]
        purged = daemons[0].metric("adapterd_retention_purged_total")
        acked = [d.acked for d in daemons]
    finally:
        for d in daemons:
            try:
                d.stop()
            except Exception:  # noqa: BLE001 - best effort
                pass
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)

    mib = lambda b: b / (1024 * 1024)
    rows = samples + [(elapsed, final, final_pending)]
    peak = max(s[1][0] for s in rows)
    # The retention store's size once the first messages have aged out (age + two intervals).
    settled = [s[1][0] for s in rows if s[0] >= args.age + 10]
    print("## 5. Retention: store size under a steady load (bench/retention_bench.py)\n")
    print("Run: %s, command `bench/retention_bench.py --minutes %g --rate %g --age %d`; %s, %s (nproc %d).\n"
          % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), args.minutes, args.rate, args.age,
             platform.processor() or platform.machine(), platform.platform(), os.cpu_count()))
    print("Two adapterd daemons side by side, each fed the same stream over one MLLP connection "
          "(%g msg/s, %d messages, %.0f s; a genetic ORU^R01, fresh control ID, accessions cycling "
          "over 100 reports) and each delivering to its own real FHIR server. **retention**: "
          "purge_after_seconds %d, interval 5 s; **baseline**: retention off. Size = database + WAL "
          "(`adapterd_store_bytes`), sampled every 15 s.\n" % (args.rate, n, elapsed, args.age))
    print("| t (s) | retention MiB | baseline MiB | retention / baseline | retention: deliveries pending |")
    print("|---|---|---|---|---|")
    for t, (a, b), pending in rows:
        print("| %.0f | %.2f | %.2f | %.2fx | %d |" % (t, mib(a), mib(b), a / b if b else 0, pending))
    print()
    print("- acknowledged: %d / %d; delivered: %d / %d; purged by retention: %d"
          % (acked[0], acked[1], delivered[0], delivered[1], purged))
    print("- retention store: peak **%.2f MiB**, after the first purges %.2f-%.2f MiB, at the end %.2f MiB; "
          "baseline at the end %.2f MiB; end ratio **%.2fx**"
          % (mib(peak), mib(min(settled)), mib(max(settled)), mib(final[0]), mib(final[1]),
             final[0] / final[1] if final[1] else 0))


if __name__ == "__main__":
    main()
