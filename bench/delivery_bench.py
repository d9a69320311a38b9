#!/usr/bin/python3
"""Delivery benchmark (issue 4, point 9): end-to-end throughput, MLLP in to FHIR server stored,
against a direct POST loop of the same Bundles to the same kind of server, in the same run.

Every side of every round talks to a fresh tests/fhir_server (Medplum's FHIR engine, in memory),
so both store the same number of new resources. Throughput rounds run the server with
--skip-validation: with profile validation it stores about 20 transactions/s and is the bottleneck
of both sides; a second, smaller set of rounds keeps validation on (--validated-messages).

  direct   N transaction Bundles (what `adapterd translate --config` prints for the N messages,
           with the configuration the adapter side serves with) POSTed by max_in_flight threads,
           one keep-alive connection each; wall time from the first POST to the last 2xx.
  adapter  the N HL7 v2 messages sent over MLLP (4 connections, each waiting for its ACK) to
           `adapterd serve` with one destination (max_in_flight 4); wall time from the first send
           until the store (read-only, polled every 10 ms) records the N-th delivery as delivered.
           adapterd's VmRSS is sampled every 100 ms; VmHWM is read at the end.

Beside the throughput, each side records where the time and the CPU went: CPU seconds of the
server, of adapterd and of this script (its clients) from /proc, the whole machine's busy share
from /proc/stat (other processes included), the server's own execution time (its /$test/stats),
per-request latency, and for the adapter the moments the last message was ACKed, mapped, answered
by the server and recorded delivered (the store's timestamps).

Rounds alternate the two sides (direct first in odd rounds, adapter first in even ones). With two
or more CPUs, each round is measured twice: *pinned* (the server on a CPU of its own, as an EHR on
its own machine; everything else on the others) and *shared* (no pinning). Before measuring, the
script waits (bounded) for the machine's 1-minute load average to drop below --max-load.

  bench/delivery_bench.py --adapterd build/adapter/adapterd [--messages 500] [--rounds 3]
      [--validated-messages 100] [--update-results bench/RESULTS.md]
"""
import argparse
import http.client
import json
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from fhir_server import FhirServer  # noqa: E402

CASE = os.path.join(REPO, "fixtures", "mappings", "genetic-obr-nested", "input.hl7")
VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"
MAX_IN_FLIGHT = 4  # the adapter's default per destination; the direct loop uses as many threads
MLLP_CONNECTIONS = 4
TICK = os.sysconf("SC_CLK_TCK")
ANALYSIS_MARKER = "<!-- Delivery analysis below: written by hand, kept by delivery_bench.py across runs. -->"


def log(text):
    print("[delivery_bench %s] %s" % (time.strftime("%H:%M:%S"), text), file=sys.stderr, flush=True)


# -- messages and Bundles ---------------------------------------------------------------------

def make_messages(directory, n, tag):
    """N distinct ORU^R01 messages: unique control IDs, accessions and specimen IDs, so that every
    message creates new resources (8 of its Bundle's 9 entries; the Patient is the same in all)."""
    with open(CASE, "rb") as f:
        data = f.read()
    segments = [s for s in re.split(rb"\r\n|\r|\n", data) if s.strip()]
    paths = []
    for i in range(n):
        fields = segments[0].split(b"|")
        fields[9] = ("B%s-%05d" % (tag, i)).encode()
        msg = b"\r".join([b"|".join(fields)] + segments[1:]) + b"\r"
        msg = msg.replace(b"GL-4410", ("GL-%s-%05d" % (tag, i)).encode())
        msg = msg.replace(b"SPEC-4410", ("SPEC-%s-%05d" % (tag, i)).encode())
        path = os.path.join(directory, "m-%s-%05d.hl7" % (tag, i))
        with open(path, "wb") as f:
            f.write(msg)
        paths.append(path)
    return paths


def translate(adapterd, config_path, paths):
    out = subprocess.run([adapterd, "translate", "--config", config_path] + paths, cwd=REPO,
                         capture_output=True, check=True)
    text = out.stdout.decode()
    decoder = json.JSONDecoder()
    bundles, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        bundles.append(obj)
    if len(bundles) != len(paths):
        raise RuntimeError("translate gave %d Bundles for %d messages" % (len(bundles), len(paths)))
    return bundles


def shape(bundle):
    """What the server is asked to do, without the values that differ between two mappings of
    the same message (urn:uuid fullUrls, the arrival time): type, method, url, ifNoneExist."""
    return [(e["resource"]["resourceType"], e["request"]["method"], e["request"].get("url"),
             e["request"].get("ifNoneExist")) for e in bundle["entry"]]


# -- the machine --------------------------------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def self_cpu_seconds():
    t = os.times()
    return t.user + t.system


def machine_jiffies():
    """(busy, total) jiffies over all CPUs, from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


def read_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def wait_for_quiet(max_load, wait_seconds, poll=30):
    """Waits until the 1-minute load average is below max_load, at most wait_seconds. Returns the
    seconds waited."""
    began = time.time()
    while float(loadavg()[0]) >= max_load and time.time() - began < wait_seconds:
        log("load average %s >= %.2f: waiting for a quieter machine (%.0f of %d s)" % (
            " ".join(loadavg()), max_load, time.time() - began, wait_seconds))
        time.sleep(poll)
    return time.time() - began


def dsync_write_us(directory, count=200):
    """Microseconds per 4 KiB O_DSYNC write, overwriting: the floor under one durable commit of the
    store (which lives on the same disk, in the temp directory)."""
    path = os.path.join(directory, "dsync.probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DSYNC, 0o600)
    try:
        block = b"\0" * 4096
        os.write(fd, block)
        began = time.perf_counter()
        for _ in range(count):
            os.pwrite(fd, block, 0)
        return (time.perf_counter() - began) * 1e6 / count
    finally:
        os.close(fd)
        os.unlink(path)


def commit_line():
    def git(*args):
        out = subprocess.run(["git", "-C", REPO] + list(args), capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    # Changes under bench/ do not alter what is measured; anything else uncommitted does.
    dirty = git("status", "--porcelain", "--", ".", ":!bench")
    return head + (" + uncommitted changes outside bench/" if dirty else "")


class Usage:
    """CPU of the given processes, of this script and of the whole machine between start() and
    stop()."""

    def __init__(self, pids):
        self.pids = pids

    def start(self):
        self.wall = time.perf_counter()
        self.cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.own = self_cpu_seconds()
        self.jiffies = machine_jiffies()

    def stop(self):
        wall = time.perf_counter() - self.wall
        busy, total = machine_jiffies()
        out = {name + "_cpu_s": cpu_seconds(pid) - self.cpu[name] for name, pid in self.pids.items()}
        out["client_cpu_s"] = self_cpu_seconds() - self.own
        # Share of all CPUs busy, whoever used them (other workers on this machine included).
        out["machine_busy"] = (busy - self.jiffies[0]) / max(total - self.jiffies[1], 1)
        out["wall_s"] = wall
        return out


# -- the FHIR server ----------------------------------------------------------------------------

SERVER_CPUS = None  # set by main(): the server's CPU, when pinned
CLIENT_CPUS = None  # everything else: this script, its clients and adapterd


def start_server(workdir, validate):
    """A fresh server; when pinned, on a CPU of its own, as an EHR on its own machine would be, so
    that the side under test competes with the server for nothing (on both sides alike)."""
    os.makedirs(workdir, exist_ok=True)
    if SERVER_CPUS:
        os.sched_setaffinity(0, SERVER_CPUS)  # inherited by the server process
    try:
        return FhirServer(workdir=workdir, persist=False, validate=validate).start()
    finally:
        if CLIENT_CPUS:
            os.sched_setaffinity(0, CLIENT_CPUS)


def stored_counts(server):
    return {t: server.search(t, _summary="count").get("total")
            for t in ("DiagnosticReport", "Observation", "Specimen", "ServiceRequest", "Provenance", "Patient")}


def server_figures(server):
    stats = server.stats()
    return {"server_exec_ms": stats.get("executionMs", 0.0) + stats.get("validationMs", 0.0),
            "server_transactions": stats.get("transactions"), "stored": stored_counts(server)}


# -- the two sides ------------------------------------------------------------------------------

def direct_loop(server, bodies):
    work = list(reversed(bodies))  # popped from the end: sent in message order
    lock = threading.Lock()
    failures = []
    sent, answered, latencies = [], [], []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        conn.connect()
        while True:
            with lock:
                if not work:
                    break
                body = work.pop()
            began = time.perf_counter()
            conn.request("POST", "/", body=body, headers={"Content-Type": "application/fhir+json",
                                                          "Accept": "application/fhir+json"})
            r = conn.getresponse()
            r.read()
            done = time.perf_counter()
            with lock:
                sent.append(began)
                answered.append(done)
                latencies.append(done - began)
                if r.status // 100 != 2:
                    failures.append(r.status)
        conn.close()

    usage = Usage({"server": server.proc.pid})
    threads = [threading.Thread(target=worker) for _ in range(MAX_IN_FLIGHT)]
    usage.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    figures = usage.stop()
    if failures:
        raise RuntimeError("direct loop: %d failures, e.g. %s" % (len(failures), failures[:3]))
    figures["elapsed_s"] = max(answered) - min(sent)
    figures["latency_ms"] = statistics.median(latencies) * 1000
    # Requests outstanding on average: max_in_flight when a request is always waiting at the server.
    figures["in_flight"] = sum(latencies) / figures["elapsed_s"]
    figures["slot_idle_ms"] = slot_idle_ms(figures["elapsed_s"], latencies)
    figures["reuse_ms"], figures["reuse_p90_ms"] = answer_to_next_send_ms(sent, answered)
    return figures


def slot_idle_ms(span_s, latencies_s):
    """Per request, how long a request slot stayed empty between an answer and the next send over
    the span from the first send to the last answer: the client's own overhead per request."""
    return (MAX_IN_FLIGHT * span_s - sum(latencies_s)) / len(latencies_s) * 1000


def answer_to_next_send_ms(starts, ends):
    """Median and 90th percentile of the time from an answer to the send that reuses its slot:
    events in time order, each send after the first max_in_flight takes the earliest answer not
    yet taken (a send with no answer before it was not waiting for a slot)."""
    events = sorted([(t, 1) for t in ends] + [(t, 0) for t in starts])
    free, gaps, sends = [], [], 0
    for t, is_answer in events:
        if is_answer:
            free.append(t)
        else:
            sends += 1
            if sends > MAX_IN_FLIGHT and free:
                gaps.append(t - free.pop(0))
    if not gaps:
        return None, None
    gaps.sort()
    return statistics.median(gaps) * 1000, gaps[int(len(gaps) * 0.9)] * 1000


def adapter_config(server_url, workdir, port):
    return {
        "store": {"path": os.path.join(workdir, "adapterd.db")},
        "listeners": {"mllp": [{"name": "mllp", "bind": "127.0.0.1", "port": port}]},
        "admin": {"enabled": False},
        "mapping": {"directory": os.path.join(REPO, "mappings")},
        "destinations": [{"name": "ehr", "base_url": server_url, "max_in_flight": MAX_IN_FLIGHT}],
        "log": {"level": "warn"},
    }


def write_config(workdir, server_url):
    """adapterd's configuration (a free port chosen here: log level warn hides the line that would
    report one the kernel picked)."""
    os.makedirs(workdir, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = os.path.join(workdir, "adapterd.json")
    with open(path, "w") as f:
        json.dump(adapter_config(server_url, workdir, port), f)
    return path, port


def adapter_run(adapterd, server, paths, workdir, expected_shapes):
    config_path, port = write_config(workdir, server.base_url)
    store = os.path.join(workdir, "adapterd.db")
    adapter_log = open(os.path.join(workdir, "adapterd.log"), "wb")
    proc = subprocess.Popen([adapterd, "serve", "--config", config_path], stdout=adapter_log,
                            stderr=adapter_log)
    try:
        return measure_adapter(proc, server, port, store, paths, expected_shapes)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        adapter_log.close()


def measure_adapter(proc, server, port, store, paths, expected_shapes):
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("adapterd did not start")
            time.sleep(0.05)
    payloads = []
    for p in paths:
        with open(p, "rb") as f:
            payloads.append(f.read())
    rss = []
    sampling = threading.Event()
    acked = []

    def sampler():
        while not sampling.is_set():
            try:
                rss.append(read_status(proc.pid)["VmRSS"])
            except (OSError, KeyError):
                pass
            sampling.wait(0.1)

    send_errors = []

    def sender(share):
        try:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                for payload in share:
                    sock.sendall(VT + payload + FS + CR)
                    buf = b""
                    while FS + CR not in buf:
                        chunk = sock.recv(65536)
                        if not chunk:
                            raise RuntimeError("connection closed before the ACK")
                        buf += chunk
                    if b"MSA|AA" not in buf and b"MSA|CA" not in buf:
                        raise RuntimeError("not accepted: %r" % buf[:200])
            acked.append(time.perf_counter())
        except (OSError, RuntimeError) as e:
            send_errors.append(str(e))

    sample_thread = threading.Thread(target=sampler)
    sample_thread.start()
    shares = [payloads[i::MLLP_CONNECTIONS] for i in range(MLLP_CONNECTIONS)]
    senders = [threading.Thread(target=sender, args=(share,)) for share in shares]
    usage = Usage({"server": server.proc.pid, "adapterd": proc.pid})
    usage.start()
    start = time.perf_counter()
    start_wall_us = time.time() * 1e6
    for t in senders:
        t.start()
    db = None
    delivered = 0
    while delivered < len(paths):
        time.sleep(0.01)
        if db is None and os.path.exists(store):
            db = sqlite3.connect("file:%s?mode=ro" % store, uri=True, timeout=10)
        if db is not None:
            try:
                delivered = db.execute("SELECT count(*) FROM deliveries WHERE state = 'delivered'").fetchone()[0]
            except sqlite3.OperationalError:
                pass
        if send_errors or proc.poll() is not None:
            raise RuntimeError("MLLP sending failed (%s) or adapterd exited" % "; ".join(send_errors[:2]))
        if time.perf_counter() - start > 900:
            raise RuntimeError("only %d of %d delivered" % (delivered, len(paths)))
    elapsed = time.perf_counter() - start
    figures = usage.stop()
    for t in senders:
        t.join()
    status = read_status(proc.pid)
    sampling.set()
    sample_thread.join()
    if len(acked) != MLLP_CONNECTIONS:
        raise RuntimeError("MLLP sending failed: %s" % "; ".join(send_errors[:2]))

    def since_start(us):
        return (us - start_wall_us) / 1e6

    row = db.execute("SELECT count(*), max(delivered_at_us) FROM deliveries WHERE state = 'delivered'").fetchone()
    not_delivered = db.execute("SELECT count(*) FROM deliveries WHERE state <> 'delivered'").fetchone()[0]
    attempts = db.execute("SELECT count(*) FROM delivery_attempts").fetchone()[0]
    spans = db.execute("SELECT started_at_us, duration_us FROM delivery_attempts").fetchall()
    durations = [d for _, d in spans]
    reuse_ms, reuse_p90_ms = answer_to_next_send_ms([b / 1e6 for b, _ in spans], [(b + d) / 1e6 for b, d in spans])
    first_attempt, last_answer = db.execute(
        "SELECT min(started_at_us), max(started_at_us + duration_us) FROM delivery_attempts").fetchone()
    mapped = sorted(r[0] for r in db.execute("SELECT mapped_at_us FROM mappings"))
    stored_shapes = [shape(json.loads(r[0])) for r in db.execute("SELECT bundle FROM mappings ORDER BY message_id")]
    db.close()
    if not_delivered or row[0] != len(paths):
        raise RuntimeError("%d deliveries not delivered" % not_delivered)
    if sorted(stored_shapes) != sorted(expected_shapes):
        raise RuntimeError("adapterd sent other Bundles than `adapterd translate` printed")
    figures.update({
        "elapsed_s": elapsed,
        "last_ack_s": max(acked) - start,
        "last_mapped_s": since_start(mapped[-1]),
        # The mapping worker takes a message, maps it and waits for its record's commit before the
        # next: the time between two mapped_at stamps is one such cycle.
        "map_cycle_ms": statistics.median(b - a for a, b in zip(mapped, mapped[1:])) / 1000,
        "mapped_per_s": (len(mapped) - 1) / max((mapped[-1] - mapped[0]) / 1e6, 1e-6),
        "last_answer_s": since_start(row[1]),
        "attempts": attempts,
        "latency_ms": statistics.median(durations) / 1000,
        "in_flight": sum(durations) / 1e6 / elapsed,
        "slot_idle_ms": slot_idle_ms((last_answer - first_attempt) / 1e6, [d / 1e6 for d in durations]),
        "first_attempt_s": since_start(first_attempt),
        "reuse_ms": reuse_ms,
        "reuse_p90_ms": reuse_p90_ms,
        "peak_rss_kib": max(rss) if rss else 0,
        "vmhwm_kib": status.get("VmHWM", 0),
    })
    return figures


# -- rounds -------------------------------------------------------------------------------------

def run_round(args, tmp, r, pinning, validate, n):
    """One round: both sides, in alternating order; returns its row."""
    tag = "r%d%s%s" % (r, "p" if pinning else "u", "v" if validate else "")
    paths = make_messages(tmp, n, tag)
    # translate with the configuration adapterd serves with (the URL is not used by translate).
    config_path, _ = write_config(os.path.join(tmp, "translate-" + tag), "http://127.0.0.1:9")
    began = time.perf_counter()
    bundles = translate(args.adapterd, config_path, paths)
    translate_ms = (time.perf_counter() - began) * 1000 / n  # process start included: an upper bound
    bodies = [json.dumps(b, separators=(",", ":")).encode() for b in bundles]
    shapes = [shape(b) for b in bundles]
    sides = {}
    order = ["direct", "adapter"] if r % 2 == 0 else ["adapter", "direct"]
    for side in order:
        server = start_server(os.path.join(tmp, "%s-%s" % (side, tag)), validate)
        try:
            if side == "direct":
                figures = direct_loop(server, bodies)
            else:
                figures = adapter_run(args.adapterd, server, paths, os.path.join(tmp, "adapterd-" + tag), shapes)
            figures.update(server_figures(server))
        finally:
            server.stop()
        sides[side] = figures
    d, a = sides["direct"], sides["adapter"]
    if d["stored"] != a["stored"] or d["stored"]["DiagnosticReport"] != n:
        raise RuntimeError("stored %s (direct) and %s (adapter); expected %d reports" % (d["stored"], a["stored"], n))
    return {"round": r + 1, "pinned": pinning is not None, "validate": validate, "messages": n,
            "order": "/".join(order), "bundle_bytes": statistics.mean(len(b) for b in bodies),
            "translate_ms": translate_ms,
            "direct": d, "adapter": a,
            "direct_per_s": n / d["elapsed_s"], "adapter_per_s": n / a["elapsed_s"],
            "adapter_over_direct": d["elapsed_s"] / a["elapsed_s"]}


def summarize(rows):
    """Medians over rounds of every figure, per side."""
    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None
    out = {"rounds": len(rows), "messages": rows[0]["messages"],
           "direct_per_s": med(r["direct_per_s"] for r in rows),
           "adapter_per_s": med(r["adapter_per_s"] for r in rows),
           "adapter_over_direct": med(r["adapter_over_direct"] for r in rows),
           "max_vmhwm_kib": max(r["adapter"]["vmhwm_kib"] for r in rows),
           "translate_ms": med(r["translate_ms"] for r in rows)}
    for side in ("direct", "adapter"):
        keys = [k for k, v in rows[0][side].items() if isinstance(v, (int, float))]
        out[side] = {k: med(r[side].get(k) for r in rows) for k in keys}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapterd", default=os.path.join(REPO, "build", "adapter", "adapterd"))
    ap.add_argument("--messages", type=int, default=500, help="per side and round, server without validation")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--validated-messages", type=int, default=100,
                    help="per side and round with the server's validation on (0: no such rounds)")
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin the server to CPU 0 and the rest to the other CPUs")
    ap.add_argument("--max-load", type=float, default=1.0, help="wait for a 1-minute load average below this")
    ap.add_argument("--wait-idle", type=int, default=1200, help="at most this many seconds")
    ap.add_argument("--command", help="the command line to record (bench/run.sh passes its own)")
    ap.add_argument("--json", help="write every figure to this file")
    ap.add_argument("--markdown", help="write the RESULTS.md section to this file")
    ap.add_argument("--update-results", metavar="RESULTS_MD",
                    help="replace (or add) section 4 and the Delivery rows of Targets in this file")
    args = ap.parse_args()
    command = args.command or "bench/delivery_bench.py " + " ".join(
        a if not a.startswith(REPO + "/") else os.path.relpath(a, REPO) for a in sys.argv[1:])
    global SERVER_CPUS, CLIENT_CPUS
    cpus = sorted(os.sched_getaffinity(0))
    pinnings = [None]
    if not args.no_pin and len(cpus) >= 2:
        pinnings = [({cpus[0]}, set(cpus[1:])), None]  # pinned first: the target's figure
    info = machine()
    info["command"] = command
    info["adapterd"] = adapterd_build(args.adapterd)
    info["commit"] = commit_line()
    info["pinning"] = ("the server on CPU %d; adapterd, this script and its clients on CPU %s" % (
        cpus[0], ",".join(map(str, cpus[1:])))) if pinnings[0] else "none"
    info["waited_s"] = wait_for_quiet(args.max_load, args.wait_idle)
    info["max_load"] = args.max_load
    info["load_before"] = loadavg()
    info["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    log("load average before: %s (waited %.0f s)" % (" ".join(info["load_before"]), info["waited_s"]))
    tmp = tempfile.mkdtemp(prefix="delivery-bench-")
    info["dsync_before_us"] = dsync_write_us(tmp)
    modes = [(False, args.messages)] + ([(True, args.validated_messages)] if args.validated_messages > 0 else [])
    rounds = []
    try:
        for validate, n in modes:
            for r in range(args.rounds):
                for pinning in pinnings:
                    SERVER_CPUS, CLIENT_CPUS = pinning if pinning else (None, None)
                    os.sched_setaffinity(0, CLIENT_CPUS or set(cpus))
                    row = run_round(args, tmp, r, pinning, validate, n)
                    rounds.append(row)
                    log("%s round %d (%s, %s): direct %.1f/s, adapter %.1f/s, %.2fx, VmHWM %.1f MB" % (
                        "validated" if validate else "throughput", r + 1, "pinned" if pinning else "shared",
                        row["order"], row["direct_per_s"], row["adapter_per_s"], row["adapter_over_direct"],
                        row["adapter"]["vmhwm_kib"] / 1024))
        info["dsync_after_us"] = dsync_write_us(tmp)
    finally:
        os.sched_setaffinity(0, set(cpus))
        shutil.rmtree(tmp, ignore_errors=True)
    info["load_after"] = loadavg()
    summary = {"machine": info, "messages": args.messages, "validated_messages": args.validated_messages,
               "rounds": rounds, "groups": {}}
    for validate, _ in modes:
        for pinning in pinnings:
            key = group_key(validate, pinning is not None)
            summary["groups"][key] = summarize(
                [r for r in rounds if r["validate"] == validate and r["pinned"] == (pinning is not None)])
    summary["target_group"] = group_key(False, pinnings[0] is not None)
    summary["max_vmhwm_kib"] = max(r["adapter"]["vmhwm_kib"] for r in rounds)
    print(json.dumps({k: v for k, v in summary.items() if k != "rounds"}, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(summary))
    if args.update_results:
        update_results(args.update_results, summary)


def adapterd_build(adapterd):
    """"adapterd VERSION (BUILD_TYPE build)", the build type from the CMake cache of its tree."""
    out = subprocess.run([adapterd, "version"], capture_output=True, text=True)
    text = out.stdout.strip() or "adapterd"
    cache = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(adapterd))), "CMakeCache.txt")
    try:
        with open(cache) as f:
            for line in f:
                if line.startswith("CMAKE_BUILD_TYPE:"):
                    return "%s (%s build)" % (text, line.split("=", 1)[1].strip() or "default")
    except OSError:
        pass
    return text


def group_key(validate, pinned):
    return "%s-%s" % ("validated" if validate else "throughput", "pinned" if pinned else "shared")


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "nproc": os.cpu_count(), "kernel": platform.release()}


# -- RESULTS.md ---------------------------------------------------------------------------------

TARGET_ROWS = ("| Delivery: MLLP in to FHIR server stored", "| adapterd peak resident memory during delivery")


def update_results(path, s):
    """Replaces section 4 (or appends it) and the two Delivery rows of the Targets table. What
    follows the analysis marker inside section 4 is written by hand and kept."""
    with open(path) as f:
        text = f.read()
    section = markdown(s)
    start = text.find("## 4. Delivery")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        old = text[start:end + 1] if end >= 0 else text[start:]
        rest = text[end + 1:] if end >= 0 else ""
        at = old.find(ANALYSIS_MARKER)
        if at >= 0:
            section = section.rstrip("\n") + "\n\n" + old[at:].rstrip("\n") + "\n"
        text = text[:start] + section + ("\n" + rest if rest else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    g = s["groups"][s["target_group"]]
    pinned = s["target_group"].endswith("pinned")
    shared = s["groups"].get("throughput-shared") if pinned else None
    ratio = g["adapter_over_direct"]
    rows = [
        "| Delivery: MLLP in to FHIR server stored, vs a direct POST loop of the same Bundles to the same "
        "server (section 4) | >= 0.9x | %.2fx (%.1f vs %.1f per s, %d messages, median of %d rounds%s%s) | %s |" % (
            ratio, g["adapter_per_s"], g["direct_per_s"], s["messages"], g["rounds"],
            ", server on its own CPU" if pinned else "",
            "; %.2fx with shared CPUs" % shared["adapter_over_direct"] if shared else "",
            "met" if ratio >= 0.9 else "**MISSED**"),
        "| adapterd peak resident memory during delivery (VmHWM, section 4) | < 64 MB | %.1f MB | %s |" % (
            s["max_vmhwm_kib"] / 1024, "met" if s["max_vmhwm_kib"] < 64 * 1024 else "**MISSED**"),
    ]
    lines = [line for line in text.split("\n") if not line.startswith(TARGET_ROWS)]
    at = None
    in_targets = False
    for i, line in enumerate(lines):
        if line.startswith("## Targets"):
            in_targets = True
        elif in_targets and line.startswith("## "):
            break
        elif in_targets and line.startswith("|"):
            at = i
    if at is None:
        raise RuntimeError("no Targets table in %s" % path)
    lines[at + 1:at + 1] = rows
    with open(path, "w") as f:
        f.write("\n".join(lines))


def ms(seconds):
    return "%.0f" % (seconds * 1000)


def markdown(s):
    m = s["machine"]
    groups = s["groups"]
    lines = [
        "## 4. Delivery: MLLP in to FHIR server stored (bench/delivery_bench.py)",
        "",
        "Run: %s, commit %s, command `%s`, %s; %s (nproc %s), Linux %s; load average (1/5/15 min) before: "
        "%s (waited %.0f s for < %.1f), after: %s; one 4 KiB O_DSYNC write on the store's disk: %.0f us "
        "before, %.0f us after.%s" % (
            m["date"], m["commit"], m["command"], m["adapterd"], m["cpu"], m["nproc"], m["kernel"],
            " ".join(m["load_before"]), m["waited_s"], m["max_load"], " ".join(m["load_after"]),
            m["dsync_before_us"], m["dsync_after_us"],
            " **The machine never became that quiet: other work shared the CPUs during this run.**"
            if float(m["load_before"][0]) >= m["max_load"] else ""),
        "",
        "- **Server**: a fresh tests/fhir_server (Medplum's FHIR engine, in memory, one request at a time) "
        "for each side of each round. *Throughput* rounds: %d messages per side, with `--skip-validation`. "
        "*Validated* rounds: %d messages per side, with the IG profile validation on (about 20 transactions/s: "
        "the server is then the bottleneck of both sides). Each message (genetic-obr-nested with a unique "
        "control ID, accession and specimen ID) gives a transaction Bundle of 9 conditional creates (%.0f bytes) "
        "of which 8 create new resources and 1 matches the Patient already stored; both sides end with the "
        "same counts on the server (checked)." % (
            s["messages"], s["validated_messages"],
            statistics.mean(r["bundle_bytes"] for r in s["rounds"])),
        "- **direct**: the Bundles `adapterd translate --config` prints for the same messages, with the "
        "configuration the adapter side serves with, POSTed by %d threads with one keep-alive connection each "
        "(the adapter's max_in_flight); first POST to last 2xx." % MAX_IN_FLIGHT,
        "- **adapter**: the messages over MLLP (%d connections, each waiting for its ACK) to `adapterd serve` "
        "(SQLite store, fsync on every commit; mapping; one destination, max_in_flight %d); first send until "
        "the store records the last delivery (polled every 10 ms). The Bundles adapterd sent were checked to "
        "ask the server the same as the direct side's (types, methods, conditions). adapterd's VmHWM is its "
        "peak resident memory." % (MLLP_CONNECTIONS, MAX_IN_FLIGHT),
        "- **CPUs**: *pinned* rounds: %s (both sides alike: the server stands for an EHR on its own machine, "
        "so what is measured is whether the adapter keeps up); *shared* rounds: no pinning. Sides alternate: "
        "direct first in odd rounds, adapter first in even ones." % m.get("pinning", "none"),
        "",
        "| Server | CPUs | Round | direct Bundles/s | adapter messages/s | adapter / direct | adapterd VmHWM |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, g in groups.items():
        validate, cpus = key.split("-")
        label = "validating" if validate == "validated" else "skip-validation"
        for r in s["rounds"]:
            if group_key(r["validate"], r["pinned"]) != key:
                continue
            lines.append("| %s | %s | %d | %.1f | %.1f | %.2fx | %.1f MB |" % (
                label, cpus, r["round"], r["direct_per_s"], r["adapter_per_s"], r["adapter_over_direct"],
                r["adapter"]["vmhwm_kib"] / 1024))
        bold = "**" if key == s["target_group"] else ""
        lines.append("| %s | %s | %smedian%s | %s%.1f%s | %s%.1f%s | %s%.2fx%s | max %.1f MB |" % (
            label, cpus, bold, bold, bold, g["direct_per_s"], bold, bold, g["adapter_per_s"], bold,
            bold, g["adapter_over_direct"], bold, g["max_vmhwm_kib"] / 1024))
    lines += [
        "",
        "The target is judged on the %s rounds. Where the time and the CPU went (medians over rounds; CPU "
        "from /proc, in ms per message; *machine busy* is the share of all CPUs busy during the side, other "
        "processes included; *server execution* is the server's own time in Medplum's router and validator "
        "per transaction, from its /$test/stats):" % s["target_group"].replace("-", " "),
        "",
        "| Rounds | side | msgs/s | request latency ms | requests in flight | slot idle ms/request "
        "| answer to next send ms, median (p90) | server execution ms/Bundle "
        "| server CPU ms/Bundle | server CPU, share of one CPU | adapterd CPU ms/msg | client CPU ms/msg "
        "| machine busy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, g in groups.items():
        for side in ("direct", "adapter"):
            f = g[side]
            n = g["messages"]
            lines.append("| %s | %s | %.1f | %.1f | %.2f | %.2f | %.2f (%.2f) | %.2f | %.2f | %.0f%% | %s | %.2f "
                         "| %.0f%% |" % (
                key.replace("-", ", "), side, g[side + "_per_s"], f["latency_ms"], f["in_flight"],
                f["slot_idle_ms"], f["reuse_ms"], f["reuse_p90_ms"], f["server_exec_ms"] / n,
                f["server_cpu_s"] * 1000 / n, f["server_cpu_s"] / f["wall_s"] * 100,
                "%.2f" % (f["adapterd_cpu_s"] * 1000 / n) if "adapterd_cpu_s" in f else "",
                f["client_cpu_s"] * 1000 / n, f["machine_busy"] * 100))
    lines += [
        "",
        "*Request latency* is the median from a request's send to its answer (for adapterd, the attempt's "
        "duration in the store); *requests in flight* is the sum of the latencies over the side's time "
        "(%d when a request always waits at the server); *slot idle* is, per request, the time a request "
        "slot stayed empty between an answer and the next send (from the first send to the last answer): "
        "the client's own overhead on the critical path; *answer to next send* is the same per request, "
        "pairing each send with the earliest answer before it not yet paired (for adapterd: from the "
        "answer's arrival on the HTTP client's thread to the next request handed to it)." % MAX_IN_FLIGHT,
        "",
        "The adapter's pipeline (medians; times in seconds from the first MLLP send). *Mapping cycle*: the "
        "median time between two successive mapping stamps (`mapped_at_us`, taken as a mapping starts). "
        "The mapping worker maps a message, then waits for its record's durable commit before taking the "
        "next, so a cycle is one mapping plus one commit wait. *translate*: `adapterd translate` of the "
        "same messages in one process, wall time per message (process start included): the mapping alone.",
        "",
        "| Rounds | last ACK | last mapping started | mapped/s | mapping cycle ms | translate ms/msg | first request "
        "| last answer | last recorded delivered | attempts |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, g in groups.items():
        a = g["adapter"]
        lines.append("| %s | %.3f | %.3f | %.0f | %.2f | %.2f | %.3f | %.3f | %.3f | %d |" % (
            key.replace("-", ", "), a["last_ack_s"], a["last_mapped_s"], a["mapped_per_s"], a["map_cycle_ms"],
            g["translate_ms"], a["first_attempt_s"], a["last_answer_s"], a["elapsed_s"], a["attempts"]))
    lines += [
        "",
        "```sh",
        "bench/run.sh --only delivery                       # builds adapterd (Release) and runs this",
        "bench/delivery_bench.py --adapterd build/adapter/adapterd --rounds 3 --messages 500",
        "```",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
