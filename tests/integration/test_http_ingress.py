"""HTTP ingress for lab feeds (issue 5): POST /feeds/{feed} and GET /messages/{id} on the real
adapterd, driven with curl (Debian's), every status checked with what the store kept:

  202 a new document (its id and status URL); 200 the same document again (the same id, not
  processed twice); 409 the same document identifier with other content; 400 not well-formed, no
  route, XXE, billion laughs, too deep, not XML, bad HL7 v2; 401 no, a wrong, or another feed's
  key; 413 a body over max_body_bytes, declared or streamed chunked (reading stops at the limit);
  415 an unsupported Content-Type; 404/405 elsewhere. The daemon keeps serving throughout.

With the real FHIR server of the delivery tests: FoundationOne XML posted over HTTP arrives there,
and GET /messages/{id} reports it delivered with the server's locations. A feed can also
authenticate with a client certificate (mutual TLS)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from fhir_server import FhirServer
from harness import Adapterd, Certificates, FIXTURES

REPO = os.path.dirname(os.path.abspath(FIXTURES))
FOUNDATION = os.path.join(FIXTURES, "mappings", "xml-foundation-one", "input.xml")
QCI = os.path.join(FIXTURES, "mappings", "xml-qci-two-variants", "input.xml")
HL7_CASE = os.path.join(FIXTURES, "mappings", "genetic-vcf2hl7v2-example1", "input.hl7")
KEY = "fmi-test-key-7f3a"
OTHER_KEY = "qci-test-key-91bc"
MAX_BODY = 1024 * 1024
VARIANT_PROFILE = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant"


class Curl:
    """curl against one adapterd HTTP listener; returns (status, headers, body, info)."""

    def __init__(self, port, scheme="http", tls_args=()):
        self.base = "%s://127.0.0.1:%d" % (scheme, port) if scheme == "http" else "%s://localhost:%d" % (scheme, port)
        self.tls_args = list(tls_args)

    def run(self, method, path, key=None, content_type=None, data=None, data_file=None, extra=(),
            stdin=None, timeout=60):
        args = ["curl", "-sS", "-i", "-X", method, "--max-time", str(timeout),
                "-w", "\n%{size_upload}"] + self.tls_args
        if key is not None:
            args += ["-H", "Authorization: Bearer " + key]
        if content_type is not None:
            args += ["-H", "Content-Type: " + content_type]
        if data is not None:
            args += ["--data-binary", "@-"]
            stdin = data if isinstance(data, bytes) else data.encode()
        if data_file is not None:
            args += ["--data-binary", "@" + data_file]
        args += list(extra) + [self.base + path]
        out = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout + 10)
        text = out.stdout.decode("utf-8", "replace")
        if out.returncode != 0:
            raise AssertionError("curl failed (%d): %s\n%s" % (out.returncode, out.stderr.decode(), text))
        text, uploaded = text.rsplit("\n", 1)
        # The last response (after any "100 Continue").
        blocks = re.split(r"\r\n\r\n", text)
        status, headers, body = None, {}, ""
        for i, block in enumerate(blocks):
            m = re.match(r"HTTP/1\.1 (\d{3})", block)
            if m and m.group(1) != "100":
                status = int(m.group(1))
                for line in block.split("\r\n")[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = "\r\n\r\n".join(blocks[i + 1:])
        return status, headers, body, int(float(uploaded))


def outcome_text(body):
    o = json.loads(body)
    assert o["resourceType"] == "OperationOutcome", body
    return o["issue"][0]["diagnostics"]


class HttpCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="adapterd-http-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.mappings = os.path.join(self.dir, "mappings")
        shutil.copytree(os.path.join(REPO, "mappings"), self.mappings)
        key_file = os.path.join(self.dir, "qci.key")
        with open(key_file, "w") as f:
            f.write(OTHER_KEY + "\n")
        os.environ["ADAPTERD_TEST_FMI_KEY"] = KEY
        self.feeds = [{"name": "foundation", "api_key": "${ADAPTERD_TEST_FMI_KEY}", "settings": {"sender": "fmi"}},
                      {"name": "qci", "api_key_file": key_file}]

    def daemon(self, destinations=(), http_overrides=None):
        http = {"name": "http", "bind": "127.0.0.1", "port": 0, "max_body_bytes": MAX_BODY,
                "read_timeout_seconds": 5, "idle_timeout_seconds": 5, "feeds": self.feeds}
        http.update(http_overrides or {})
        os.makedirs(os.path.join(self.dir, "adapterd"), exist_ok=True)
        d = Adapterd(workdir=os.path.join(self.dir, "adapterd"),
                     listeners=[{"name": "mllp", "bind": "127.0.0.1", "port": 0}],
                     mapping={"directory": self.mappings, "default_timezone": "UTC"},
                     destinations=list(destinations))
        d.config["listeners"]["http"] = http
        with open(d.config_path, "w") as f:
            json.dump(d.config, f, indent=2)
        return d

    def http_counters(self, d):
        out = {}
        with __import__("urllib.request").request.urlopen("http://127.0.0.1:%d/metrics" % d.admin_port, timeout=5) as r:
            for line in r.read().decode().splitlines():
                m = re.match(r'^adapterd_http_(\w+)_total\{listener="http"\} (\d+)$', line)
                if m:
                    out[m.group(1)] = int(m.group(2))
        return out


class Statuses(HttpCase):
    def test_every_status_with_what_the_store_kept(self):
        with self.daemon() as d:
            c = Curl(d.ports["http"])
            with open(FOUNDATION, "rb") as f:
                report = f.read()

            # 202: stored, with its id and status URL.
            status, headers, body, _ = c.run("POST", "/feeds/foundation", KEY, "application/xml", data=report)
            self.assertEqual(status, 202, body)
            first = json.loads(body)
            self.assertEqual(first["document_id"], "SMP37669/1")
            self.assertEqual(first["status_url"], "/messages/%d" % first["id"])
            self.assertEqual(headers["location"], first["status_url"])
            self.assertFalse(first["duplicate"])

            # 200: the same document again is the same message, not stored or processed again.
            status, _, body, _ = c.run("POST", "/feeds/foundation", KEY, "application/xml; charset=utf-8", data=report)
            self.assertEqual(status, 200, body)
            again = json.loads(body)
            self.assertEqual(again["id"], first["id"])
            self.assertTrue(again["duplicate"])
            # 409: the same report number and version with other content.
            changed = report.replace(b"<MRN>12345678</MRN>", b"<MRN>12345679</MRN>", 1)
            self.assertNotEqual(changed, report)
            status, headers, body, _ = c.run("POST", "/feeds/foundation", KEY, "application/xml", data=changed)
            self.assertEqual(status, 409, body)
            self.assertIn("document 'SMP37669/1' was already accepted (message %d)" % first["id"], outcome_text(body))
            # A corrected version is a new document.
            corrected = report.replace(b"<Version>1</Version>", b"<Version>2</Version>")
            status, _, body, _ = c.run("POST", "/feeds/foundation", KEY, "application/xml", data=corrected)
            self.assertEqual(status, 202, body)
            self.assertEqual(json.loads(body)["document_id"], "SMP37669/2")

            # 400s, each saying what and where, each kept as rejected.
            bad = {
                "not well-formed": (b"<rr:ResultsReport xmlns:rr='x'><a></rr:ResultsReport>",
                                    "not well-formed: Opening and ending tag mismatch"),
                "no route": (b"<report-of-another-kind/>", "no route for XML root element <report-of-another-kind>"),
                "XXE": (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
                        "a DOCTYPE declaration is not accepted"),
                "billion laughs": (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;">'
                                   b'<!ENTITY c "&b;&b;&b;&b;&b;">]><l>&c;</l>', "a DOCTYPE declaration is not accepted"),
                "too deep": (b"<a>" * 5000 + b"</a>" * 5000, "elements are nested deeper than 128 levels at /a/a/a"),
                "not XML": (b"%PDF-1.4 this is a PDF", "not well-formed: Start tag expected, '<' not found"),
                "empty": (b"", "empty document"),
            }
            for name, (payload, expected) in bad.items():
                status, headers, body, _ = c.run("POST", "/feeds/foundation", KEY, "application/xml", data=payload)
                self.assertEqual(status, 400, "%s: %s" % (name, body))
                self.assertIn(expected, outcome_text(body), name)
                self.assertRegex(headers.get("location", ""), r"^/messages/\d+$", name)
            # The status URL of a rejected body says why.
            status, _, body, _ = c.run("GET", headers["location"], KEY)
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body)["state"], "rejected")

            # 415: kept too (a mislabelled report is not lost).
            status, _, body, _ = c.run("POST", "/feeds/foundation", KEY, "text/plain", data=report)
            self.assertEqual(status, 415, body)
            self.assertIn("unsupported Content-Type 'text/plain'", outcome_text(body))

            # 401: no key, a wrong key, another feed's key, an unknown feed. Nothing stored.
            stored_before = d.rows("SELECT count(*) FROM messages")[0][0]
            for key, feed in ((None, "foundation"), ("wrong", "foundation"), (OTHER_KEY, "foundation"),
                              (KEY, "no-such-feed")):
                status, headers, body, _ = c.run("POST", "/feeds/" + feed, key, "application/xml", data=report)
                self.assertEqual(status, 401, body)
                self.assertEqual(headers.get("www-authenticate"), "Bearer")
            self.assertEqual(d.rows("SELECT count(*) FROM messages")[0][0], stored_before)

            # 413, declared: answered on the headers, the body never read (curl waits for 100
            # Continue and uploads nothing).
            big = os.path.join(self.dir, "big.xml")
            with open(big, "wb") as f:
                f.write(b"<a>" + b"x" * (MAX_BODY * 20) + b"</a>")
            status, _, body, uploaded = c.run("POST", "/feeds/foundation", KEY, "application/xml", data_file=big)
            self.assertEqual(status, 413, body)
            self.assertIn("(%d bytes) is larger than this listener accepts (max_body_bytes %d)"
                          % (os.path.getsize(big), MAX_BODY), outcome_text(body))
            self.assertLess(uploaded, MAX_BODY)
            # 413, streamed (chunked, no length): reading stops at the limit, far short of the
            # 200 MiB the client would send.
            gen = subprocess.Popen(["sh", "-c", "printf '<a>'; head -c 209715200 /dev/zero | tr '\\0' x"],
                                   stdout=subprocess.PIPE)
            out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_upload}",
                                  "-X", "POST", "-H", "Authorization: Bearer " + KEY,
                                  "-H", "Content-Type: application/xml", "-H", "Transfer-Encoding: chunked",
                                  "-H", "Expect:", "-T", "-", c.base + "/feeds/foundation"],
                                 stdin=gen.stdout, capture_output=True, timeout=60)
            gen.stdout.close()
            gen.kill()
            gen.wait()
            code, sent = out.stdout.decode().split()
            self.assertEqual(code, "413", out.stderr.decode())
            self.assertLess(int(sent), 50 * MAX_BODY, "curl uploaded %s bytes" % sent)

            # HL7 v2 over HTTP goes through the MLLP intake: 202, and 400 with the HL7 path.
            status, _, body, _ = c.run("POST", "/feeds/qci", OTHER_KEY, "x-application/hl7-v2+er7", data_file=HL7_CASE)
            self.assertEqual(status, 202, body)
            hl7_id = json.loads(body)["id"]
            status, _, body, _ = c.run("POST", "/feeds/qci", OTHER_KEY, "x-application/hl7-v2+er7",
                                       data=b"PID|1||123\rOBX|1|NM|1-8^X^LN||5")
            self.assertEqual(status, 400, body)
            self.assertEqual(json.loads(body)["issue"][0]["code"], "structure")
            self.assertIn("does not start with an MSH segment", outcome_text(body))

            # Other endpoints and methods.
            self.assertEqual(c.run("GET", "/feeds/foundation", KEY)[0], 405)
            self.assertEqual(c.run("GET", "/nothing", KEY)[0], 404)
            self.assertEqual(c.run("GET", "/messages/%d" % first["id"])[0], 401)
            # Another feed's message is not found for this feed.
            self.assertEqual(c.run("GET", "/messages/%d" % first["id"], OTHER_KEY)[0], 404)
            self.assertEqual(c.run("GET", "/messages/%d" % hl7_id, OTHER_KEY)[0], 200)

            # Still serving, and the message was mapped once.
            status, _, body, _ = c.run("GET", "/messages/%d" % first["id"], KEY)
            self.assertEqual(status, 200, body)
            deadline = time.time() + 10
            while json.loads(body)["state"] == "received" and time.time() < deadline:
                time.sleep(0.1)
                body = c.run("GET", "/messages/%d" % first["id"], KEY)[2]
            info = json.loads(body)
            self.assertEqual(info["state"], "mapped", body)  # no destination configured
            self.assertEqual(info["resubmissions"], 1)
            self.assertEqual(info["mapping"]["template"], "foundation-one")
            variants = [r for r in info["resources"] if "/short-variant/" in r.get("identifier", "")
                        and "implication" not in r["identifier"] and "consequence" not in r["identifier"]]
            self.assertGreater(len(variants), 0)
            self.assertEqual(d.rows("SELECT count(*) FROM mappings WHERE message_id = ?", (first["id"],))[0][0], 1)

            # What the store kept, and the counters.
            rows = d.rows("SELECT state, ack_code, count(*) FROM messages WHERE listener IN ('foundation', 'qci') "
                          "GROUP BY state, ack_code")
            kept = dict(((s, a), n) for s, a, n in rows)
            self.assertEqual(kept, {("received", "202"): 2,   # version 1 and its correction
                                    ("received", "CA"): 1,    # the HL7 v2 message (enhanced mode: MSH-15 set)
                                    ("rejected", "400"): 7,   # the seven bad XML bodies
                                    ("rejected", "413"): 2,   # recorded without their bodies
                                    ("rejected", "415"): 1,
                                    ("rejected", "AR"): 1,    # the bad HL7 v2
                                    ("rejected", "AE"): 1},   # the conflict (the store's code)
                             rows)
            n = self.http_counters(d)
            self.assertEqual(n["documents_accepted"], 3)
            self.assertEqual(n["documents_duplicate"], 1)
            self.assertEqual(n["documents_rejected"], 7 + 1 + 1 + 1)  # bad XML, conflict, 415, bad HL7
            self.assertEqual(n["unauthorized"], 5)
            self.assertEqual(n["bodies_too_large"], 2)


class Timeouts(HttpCase):
    def test_slow_and_idle_connections_are_closed_and_keep_alive_works(self):
        import socket
        with self.daemon(http_overrides={"read_timeout_seconds": 1, "idle_timeout_seconds": 1}) as d:
            port = d.ports["http"]
            # Keep-alive: three requests on one connection.
            c = Curl(port)
            out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                                  "-w", "%{http_code} %{num_connects}\n", "-H", "Authorization: Bearer " + KEY]
                                 + [c.base + "/messages/1"] * 3, capture_output=True, timeout=30)
            lines = out.stdout.decode().split()
            self.assertEqual(lines[0::2], ["404"] * 3)
            self.assertEqual(lines[1::2], ["1", "0", "0"])  # one connection for all three
            # A body that stops arriving: closed after read_timeout, nothing stored.
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(("POST /feeds/foundation HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                       "Content-Type: application/xml\r\nContent-Length: 1000\r\n\r\n<a>" % KEY).encode())
            s.settimeout(10)
            started = time.time()
            self.assertEqual(s.recv(100), b"")  # closed, no answer
            self.assertLess(time.time() - started, 5)
            s.close()
            # Headers that never end: closed after idle_timeout.
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /feeds/foundation HTTP/1.1\r\nHost: x\r\n")
            s.settimeout(10)
            started = time.time()
            self.assertEqual(s.recv(100), b"")
            self.assertGreater(time.time() - started, 0.8)  # closed by the timeout, not otherwise
            s.close()
            self.assertEqual(d.rows("SELECT count(*) FROM messages")[0][0], 0)
            # Both timeouts counted (read again briefly: the count and the close are made on
            # another thread than the one that serves /metrics).
            deadline = time.time() + 2
            n = self.http_counters(d)
            while n.get("read_timeouts") != 2 and time.time() < deadline:
                time.sleep(0.05)
                n = self.http_counters(d)
            self.assertEqual(n["read_timeouts"], 2, n)


class MutualTls(HttpCase):
    def test_a_feed_authenticated_by_its_client_certificate(self):
        pki = Certificates(os.path.join(self.dir, "pki"))
        self.feeds = [{"name": "foundation", "client_certificate_cn": "lab-client"}]
        tls = {"certificate_file": pki.server, "private_key_file": pki.server_key, "client_ca_file": pki.ca,
               "require_client_certificate": False}
        with self.daemon(http_overrides={"tls": tls}) as d:
            port = d.ports["http"]
            with open(FOUNDATION, "rb") as f:
                report = f.read()
            ok = Curl(port, "https", ["--cacert", pki.ca, "--cert", pki.client, "--key", pki.client_key])
            status, _, body, _ = ok.run("POST", "/feeds/foundation", None, "application/xml", data=report)
            self.assertEqual(status, 202, body)
            self.assertEqual(ok.run("GET", "/messages/%d" % json.loads(body)["id"])[0], 200)
            # No certificate, or one from another CA (the handshake refuses it): nothing stored.
            anonymous = Curl(port, "https", ["--cacert", pki.ca])
            self.assertEqual(anonymous.run("POST", "/feeds/foundation", None, "application/xml", data=report)[0], 401)
            rogue = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", pki.ca,
                                    "--cert", pki.rogue, "--key", pki.rogue_key, "-X", "POST",
                                    "-H", "Content-Type: application/xml", "--data-binary", "@" + FOUNDATION,
                                    "https://localhost:%d/feeds/foundation" % port], capture_output=True, timeout=30)
            self.assertNotEqual(rogue.stdout.decode(), "202")
            self.assertEqual(d.rows("SELECT count(*) FROM messages")[0][0], 1)


class EndToEnd(HttpCase):
    def fhir_destination(self):
        """A real FHIR server for this test, and the destination that sends to it."""
        fhir = FhirServer(workdir=os.path.join(self.dir, "fhir"))
        os.makedirs(os.path.join(self.dir, "fhir"))
        self.addCleanup(fhir.stop)
        fhir.start()
        return fhir, {"name": "ehr", "base_url": fhir.base_url,
                      "retry": {"max_attempts": 5, "initial_delay_ms": 200, "max_delay_ms": 1000}}

    def wait_delivered(self, c, key, message_id):
        """The message's status once it is final (delivered, dead letter or mapping failed),
        which must be delivered."""
        deadline = time.time() + 60
        info = {}
        while time.time() < deadline:
            info = json.loads(c.run("GET", "/messages/%d" % message_id, key)[2])
            if info["state"] in ("delivered", "dead-letter", "mapping-failed"):
                break
            time.sleep(0.2)
        self.assertEqual(info["state"], "delivered", json.dumps(info, indent=1)[:3000])
        return info

    def test_xml_posted_over_http_arrives_in_the_fhir_server(self):
        fhir, destination = self.fhir_destination()
        with self.daemon(destinations=[destination]) as d:
            c = Curl(d.ports["http"])
            ids = {}
            for feed, key, path in (("foundation", KEY, FOUNDATION), ("qci", OTHER_KEY, QCI)):
                status, _, body, _ = c.run("POST", "/feeds/" + feed, key, "application/xml", data_file=path)
                self.assertEqual(status, 202, body)
                ids[feed] = (key, json.loads(body)["id"])
            for feed, (key, message_id) in ids.items():
                info = self.wait_delivered(c, key, message_id)
                self.assertEqual(info["deliveries"][0]["attempts"], 1)
                # Every resource has the server's location, and each is on the server.
                for r in info["resources"]:
                    self.assertRegex(r.get("location", ""), r"^%s/[A-Za-z0-9\-.]+(/_history/.+)?$" % r["resourceType"], r)
                    rtype, rid = r["location"].split("/")[:2]
                    self.assertEqual(fhir.request("GET", "/%s/%s" % (rtype, rid)).status, 200, r)
                variants = [r for r in info["resources"] if r["resourceType"] == "Observation"]
                self.assertGreater(len(variants), 1, feed)
            # The Variant Observations are on the server, found by profile.
            found = fhir.search("Observation", params=[("_profile", VARIANT_PROFILE)])
            self.assertGreaterEqual(found.get("total", 0), 3, found)

    def test_an_amended_report_updates_what_the_first_created(self):
        """FoundationOne sends a corrected report as a new version of the same ReportId: a new
        document for intake, a later message about the same report for the mapping step, whose
        results are conditional updates ($source.supersedes). The EHR's Variant changes under the
        same identifier, and no resource is added but the second report's Provenance."""
        fhir, destination = self.fhir_destination()
        with open(FOUNDATION, "rb") as f:
            first = f.read()
        amended = first.replace(b"<Version>1</Version>", b"<Version>2</Version>")
        amended = amended.replace(b'allele-fraction="0.4800"', b'allele-fraction="0.4500"', 1)
        self.assertNotEqual(amended.count(b"<Version>2</Version>"), 0)
        types = ("Patient", "Specimen", "Observation", "DiagnosticReport", "Provenance")

        def vaf():
            found = fhir.resources("Observation", params=[("identifier", "SMP37669/short-variant/1")])
            self.assertEqual(len(found), 1)
            return [c["valueQuantity"]["value"] for c in found[0]["component"]
                    if c["code"]["coding"][0]["code"] == "81258-6"]

        with self.daemon(destinations=[destination]) as d:
            c = Curl(d.ports["http"])
            for n, report in enumerate((first, amended)):
                status, _, body, _ = c.run("POST", "/feeds/foundation", KEY, "application/xml", data=report)
                self.assertEqual(status, 202, body)
                message_id = json.loads(body)["id"]
                self.wait_delivered(c, KEY, message_id)
                if n == 0:
                    self.assertEqual(vaf(), [0.48])
                    before = {t: fhir.count(t) for t in types}
            self.assertEqual(vaf(), [0.45])
            before["Provenance"] += 1
            self.assertEqual({t: fhir.count(t) for t in types}, before)
            methods = {json.loads(r[0])["entry"][i]["request"]["method"]
                       for r in d.rows("SELECT bundle FROM mappings ORDER BY message_id DESC LIMIT 1")
                       for i in range(len(json.loads(r[0])["entry"]))}
            self.assertEqual(methods, {"POST", "PUT"})  # the Patient and Provenance stay creates


if __name__ == "__main__":
    unittest.main()
