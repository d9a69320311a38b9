"""Running it in production (issue 6): hot reload under load, readiness, metrics that match what
was sent, and SIGTERM during load. Real adapterd, real MLLP client (raw frames over a socket,
as the crash test sends), the real FHIR server of the delivery tests where delivery matters."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

from fhir_server import FhirServer
from harness import Adapterd, FIXTURES, Ack, exchange, frame, message
from test_delivery import STREAM_CASE, hl7_segments

REPO = os.path.dirname(os.path.abspath(FIXTURES))
CASES = os.path.join(FIXTURES, "mappings")


def stream_message(n, tag="S"):
    """The one-report, two-variant case with its own control ID and accession."""
    segments = hl7_segments(os.path.join(CASES, STREAM_CASE, "input.hl7"))
    fields = segments[0].split(b"|")
    fields[9] = b"%s-%s%04d" % (fields[9], tag.encode(), n)
    segments[0] = b"|".join(fields)
    data = b"\r".join(segments)
    return data.replace(b"GL-4410", b"GL-%s%04d" % (tag.encode(), n)).replace(
        b"SPEC-4410", b"SPEC-%s%04d" % (tag.encode(), n))


def admin(d, method, path, timeout=10):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (d.admin_port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class OperationsCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="adapterd-ops-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.mappings = os.path.join(self.dir, "mappings")
        shutil.copytree(os.path.join(REPO, "mappings"), self.mappings)

    def daemon(self, destinations=(), **top):
        os.makedirs(os.path.join(self.dir, "adapterd"), exist_ok=True)
        return Adapterd(workdir=os.path.join(self.dir, "adapterd"),
                        mapping={"directory": self.mappings, "default_timezone": "UTC"},
                        destinations=list(destinations), **top)

    def send(self, d, data):
        acks = exchange(d.port, frame(data))
        self.assertEqual(len(acks), 1)
        self.assertIn(Ack(acks[0]).code, ("AA", "CA"))

    def set_template_version(self, version):
        path = os.path.join(self.mappings, "hl7v2", "oru_r01.json")
        with open(path) as f:
            text = f.read()
        text = re.sub(r'"\$version": "[^"]*"', '"$version": "%s"' % version, text, count=1)
        with open(path, "w") as f:
            f.write(text)

    def wait_rows(self, d, sql, want, timeout=60):
        deadline = time.time() + timeout
        n = None
        while time.time() < deadline:
            n = d.rows(sql)[0][0]
            if n >= want:
                return n
            time.sleep(0.1)
        self.fail("%s: %s < %s\n%s" % (sql, n, want, d.log_text()[-3000:]))


class HotReload(OperationsCase):
    def test_reload_under_load_loses_and_duplicates_nothing_and_a_broken_set_is_refused(self):
        total = 240
        with self.daemon() as d:
            sent = []

            def sender():
                for n in range(total):
                    self.send(d, stream_message(n))
                    sent.append(n)
                    time.sleep(0.01)

            thread = threading.Thread(target=sender)
            thread.start()
            answers = []
            for version in ("1.1.0", "1.2.0", "1.3.0"):
                time.sleep(0.4)
                self.set_template_version(version)
                if version == "1.2.0":
                    os.kill(d.proc.pid, signal.SIGHUP)  # the signal and the endpoint do the same
                else:
                    status, body = admin(d, "POST", "/reload")
                    self.assertEqual(status, 200, body)
                    answers.append(json.loads(body))
            # A broken partial: refused with its location, the running set stays.
            time.sleep(0.3)
            broken = os.path.join(self.mappings, "partials", "zz_broken.json")
            with open(broken, "w") as f:
                f.write('{"$partial": "zz_broken", "$params": [], "x": "{{ nosuchfunction(1) }}"}\n')
            status, body = admin(d, "POST", "/reload")
            self.assertEqual(status, 422, body)
            refused = json.loads(body)
            self.assertFalse(refused["applied"])
            self.assertEqual(refused["template_set"], refused["previous_template_set"])
            self.assertRegex(refused["errors"][0]["where"], r"partials/zz_broken\.json:1:\d+$")
            self.assertIn("nosuchfunction", refused["errors"][0]["message"])
            thread.join()
            self.assertEqual(len(sent), total)
            self.wait_rows(d, "SELECT count(*) FROM mappings", total)
            time.sleep(0.3)
            rows = d.rows("SELECT m.message_id, m.template_version, m.template_set, m.attempts, m.state "
                          "FROM mappings m ORDER BY m.message_id")
            # Every message mapped exactly once, none lost, none twice.
            self.assertEqual(len(rows), total)
            self.assertEqual({r[3] for r in rows}, {1})
            self.assertEqual({r[4] for r in rows}, {"mapped"})
            self.assertEqual(d.rows("SELECT count(*) FROM messages")[0][0], total)
            # The versions follow the reloads in order, each message with one version; the last
            # ones after the refused reload still use the last good set.
            versions = [r[1] for r in rows]
            seen = []
            for v in versions:
                if not seen or seen[-1] != v:
                    seen.append(v)
            self.assertEqual(seen, sorted(seen, key=lambda s: tuple(int(x) for x in s.split("."))), seen)
            self.assertGreaterEqual(len(seen), 3, seen)
            self.assertEqual(versions[-1], "1.3.0")
            self.assertEqual(rows[-1][2], refused["template_set"])
            events = [e["event"] for e in d.log_events()]
            self.assertEqual(events.count("mapping.reloaded"), 3)
            self.assertEqual(events.count("mapping.reload_refused"), 1)


class Readiness(OperationsCase):
    def test_readyz_turns_503_while_the_fhir_server_is_down_and_200_after(self):
        os.makedirs(os.path.join(self.dir, "fhir"))
        fhir = FhirServer(workdir=os.path.join(self.dir, "fhir"), validate=False)
        self.addCleanup(fhir.stop)
        fhir.start()
        destination = {"name": "ehr", "base_url": fhir.base_url,
                       "retry": {"max_attempts": 100, "initial_delay_ms": 100, "max_delay_ms": 500},
                       "circuit_breaker": {"failure_threshold": 2, "open_ms": 1000, "max_open_ms": 2000}}
        with self.daemon(destinations=[destination]) as d:
            self.assertEqual(admin(d, "GET", "/readyz"), (200, "ready\n"))
            self.assertEqual(admin(d, "GET", "/healthz")[0], 200)
            fhir.stop()
            for n in range(3):
                self.send(d, stream_message(n, "R"))
            deadline = time.time() + 30
            status, body = admin(d, "GET", "/readyz")
            while status == 200 and time.time() < deadline:
                time.sleep(0.1)
                status, body = admin(d, "GET", "/readyz")
            self.assertEqual(status, 503, body)
            self.assertIn("destination ehr: circuit open", body)
            self.assertEqual(admin(d, "GET", "/healthz")[0], 200)  # alive all along
            fhir.start()
            self.wait_rows(d, "SELECT count(*) FROM deliveries WHERE state = 'delivered'", 3)
            deadline = time.time() + 30
            while admin(d, "GET", "/readyz")[0] != 200 and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(admin(d, "GET", "/readyz"), (200, "ready\n"))


class MetricsMatch(OperationsCase):
    def test_counters_match_what_was_sent_rejected_and_delivered(self):
        os.makedirs(os.path.join(self.dir, "fhir"))
        fhir = FhirServer(workdir=os.path.join(self.dir, "fhir"), validate=False)
        self.addCleanup(fhir.stop)
        fhir.start()
        with self.daemon(destinations=[{"name": "ehr", "base_url": fhir.base_url}]) as d:
            good, bad = 12, 4
            for n in range(good):
                self.send(d, stream_message(n, "M"))
            for n in range(bad):
                acks = exchange(d.port, frame(b"PID|1||X%d\rOBX|1|ST" % n))
                self.assertEqual(Ack(acks[0]).code, "AR")
            self.wait_rows(d, "SELECT count(*) FROM deliveries WHERE state = 'delivered'", good)
            m = d.metrics()
            self.assertEqual(m[("adapterd_mllp_messages_accepted_total", "mllp")], good)
            self.assertEqual(m[("adapterd_mllp_messages_rejected_total", "mllp")], bad)
            self.assertEqual(m[("adapterd_mllp_acks_sent_total", "mllp")], good + bad)
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % d.admin_port, timeout=5) as r:
                text = r.read().decode()
            delivered = re.search(r'^adapterd_delivery_delivered_total\{destination="ehr"\} (\d+)$', text, re.M)
            self.assertEqual(int(delivered.group(1)), good)
            def value(pattern):
                m = re.search("^" + pattern + r" (\S+)$", text, re.M)
                self.assertIsNotNone(m, pattern)
                return float(m.group(1))
            self.assertEqual(value(r'adapterd_mapping_mapped_total\{template="oru-r01"\}'), good)
            self.assertEqual(value(r'adapterd_mapping_failed_total\{template="oru-r01"\}'), 0)
            # Latency histograms: one ACK per frame, one delivery per good message; buckets
            # cumulative, +Inf equal to the count.
            self.assertEqual(value(r'adapterd_mllp_ack_latency_seconds_count\{listener="mllp"\}'), good + bad)
            self.assertEqual(value(r'adapterd_mllp_ack_latency_seconds_bucket\{listener="mllp",le="\+Inf"\}'),
                             good + bad)
            self.assertEqual(value(r'adapterd_delivery_latency_seconds_count\{destination="ehr"\}'), good)
            buckets = [float(v) for v in re.findall(
                r'^adapterd_delivery_latency_seconds_bucket\{destination="ehr",le="[^"]+"\} (\S+)$', text, re.M)]
            self.assertEqual(buckets, sorted(buckets))
            self.assertGreater(value(r'adapterd_delivery_latency_seconds_sum\{destination="ehr"\}'), 0)
            # Everything received has been mapped: nothing waits.
            self.assertEqual(value(r'adapterd_mapping_pending'), 0)
            self.assertEqual(value(r'adapterd_mapping_oldest_pending_age_seconds'), 0)
            # Each family's # HELP once (its lines together).
            helps = re.findall(r'^# HELP (\S+) ', text, re.M)
            self.assertEqual(len(helps), len(set(helps)))
            self.assertEqual(fhir.search("DiagnosticReport", _summary="count").get("total"), good)


class AdminApi(OperationsCase):
    def test_search_show_replay_and_dead_letters_over_http_and_the_command_line(self):
        os.makedirs(os.path.join(self.dir, "fhir"))
        fhir = FhirServer(workdir=os.path.join(self.dir, "fhir"), validate=False)
        self.addCleanup(fhir.stop)
        fhir.start()
        # "nowhere" refuses connections: with one attempt allowed, its deliveries become dead
        # letters at once.
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        nowhere = "http://127.0.0.1:%d" % closed.getsockname()[1]
        closed.close()
        destinations = [{"name": "ehr", "base_url": fhir.base_url},
                        {"name": "nowhere", "base_url": nowhere, "retry": {"max_attempts": 1}}]
        with self.daemon(destinations=destinations) as d:
            for n in range(3):
                self.send(d, stream_message(n, "A"))
            self.wait_rows(d, "SELECT count(*) FROM deliveries WHERE state = 'delivered'", 3)
            self.wait_rows(d, "SELECT count(*) FROM deliveries WHERE state = 'dead_letter'", 3)
            status, body = admin(d, "GET", "/messages?control_id=%s" % stream_message(1, "A").split(b"|")[9].decode())
            self.assertEqual(status, 200, body)
            found = json.loads(body)["messages"]
            self.assertEqual(len(found), 1)
            message_id = found[0]["id"]
            self.assertEqual(len(json.loads(admin(d, "GET", "/messages?source=mllp&limit=2")[1])["messages"]), 2)
            detail = json.loads(admin(d, "GET", "/messages/%d/detail" % message_id)[1])
            self.assertTrue(detail["raw"].startswith("MSH|"))
            self.assertEqual(detail["mapping"]["state"], "mapped")
            self.assertEqual(detail["mapping"]["bundle"]["resourceType"], "Bundle")
            states = {x["destination"]: x["state"] for x in detail["deliveries"]}
            self.assertEqual(states, {"ehr": "delivered", "nowhere": "dead_letter"})
            self.assertEqual(len(detail["attempts"]), 2)
            # Dead letters: listed with their reason, one discarded, the rest retried.
            dead = json.loads(admin(d, "GET", "/dead-letters")[1])["dead_letters"]
            self.assertEqual(len(dead), 3)
            self.assertIn("gave up", dead[0]["last_error"])
            self.assertEqual(admin(d, "POST", "/dead-letters/%d/discard" % message_id)[0], 400)
            status, body = admin(d, "POST", "/dead-letters/%d/discard?reason=EHR%%20copy%%20not%%20needed" % message_id)
            self.assertEqual(status, 200, body)
            self.assertEqual(d.rows("SELECT discard_reason FROM deliveries WHERE message_id = ? AND "
                                    "destination = 'nowhere'", (message_id,))[0][0], "EHR copy not needed")
            status, body = admin(d, "POST", "/dead-letters/all/retry")
            self.assertEqual((status, json.loads(body)["retried"]), (200, 2), body)
            # What a replay would change, asked first: with the mappings it was mapped with,
            # nothing; and asking writes nothing.
            status, body = admin(d, "GET", "/messages/%d/replay-preview" % message_id)
            self.assertEqual(status, 200, body)
            preview = json.loads(body)
            self.assertEqual((preview["changed"], preview["bundle"]), (False, []), body)
            self.assertEqual(preview["recorded"]["template_set"], preview["replayed"]["template_set"])
            status, body = admin(d, "GET", "/replay-preview?source=mllp")
            self.assertEqual((status, json.loads(body)["compared"], json.loads(body)["changed"]), (200, 3, 0), body)
            self.assertEqual(d.rows("SELECT attempts FROM mappings WHERE message_id = ?", (message_id,)), [(1,)])
            # Replay: mapped again, delivered again to the EHR (ifNoneExist: nothing twice).
            status, body = admin(d, "POST", "/messages/%d/replay" % message_id)
            self.assertEqual(status, 200, body)
            self.wait_rows(d, "SELECT count(*) FROM delivery_attempts WHERE message_id = %d AND "
                              "destination = 'ehr'" % message_id, 2)
            self.assertEqual(admin(d, "GET", "/messages/999/detail")[0], 404)
        # The same from the command line (the store, no daemon needed).
        out = subprocess.run([os.environ["ADAPTERD"], "messages", "--config", d.config_path, "list",
                              "--source", "mllp", "--limit", "5"], capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        self.assertEqual(len(json.loads(out.stdout)["messages"]), 3)
        out = subprocess.run([os.environ["ADAPTERD"], "messages", "--config", d.config_path, "show",
                              str(message_id)], capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        self.assertEqual(json.loads(out.stdout)["id"], message_id)
        out = subprocess.run([os.environ["ADAPTERD"], "messages", "--config", d.config_path, "list",
                              "--mapping", "mapped"], capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        self.assertEqual(len(json.loads(out.stdout)["messages"]), 3)
        out = subprocess.run([os.environ["ADAPTERD"], "replay", "--config", d.config_path, "--dry-run",
                              str(message_id)], capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        self.assertEqual(json.loads(out.stdout)["changed"], False, out.stdout)
        out = subprocess.run([os.environ["ADAPTERD"], "replay", "--config", d.config_path, "--dry-run",
                              "--failed"], capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        self.assertEqual(json.loads(out.stdout)["compared"], 0, out.stdout)


class GracefulShutdown(OperationsCase):
    def test_sigterm_during_load_exits_0_and_every_acknowledged_message_is_delivered_once(self):
        os.makedirs(os.path.join(self.dir, "fhir"))
        fhir = FhirServer(workdir=os.path.join(self.dir, "fhir"), validate=False)
        self.addCleanup(fhir.stop)
        fhir.start()
        destination = {"name": "ehr", "base_url": fhir.base_url,
                       "retry": {"max_attempts": 100, "initial_delay_ms": 100, "max_delay_ms": 500}}
        d = self.daemon(destinations=[destination])
        d.start()
        acked = []
        stop = threading.Event()

        def sender():
            n = 0
            while not stop.is_set():
                try:
                    acks = exchange(d.port, frame(stream_message(n, "T")), timeout=2)
                except OSError:
                    return  # the listener has closed: the daemon is stopping
                if acks and Ack(acks[0]).code in ("AA", "CA"):
                    acked.append(n)
                n += 1

        thread = threading.Thread(target=sender)
        thread.start()
        self.wait_rows(d, "SELECT count(*) FROM deliveries WHERE state = 'delivered'", 5)
        started = time.time()
        d.proc.send_signal(signal.SIGTERM)
        code = d.proc.wait(timeout=30)
        took = time.time() - started
        stop.set()
        thread.join()
        d._log.close()
        self.assertEqual(code, 0, d.log_text()[-2000:])
        self.assertLess(took, 15)
        self.assertGreater(len(acked), 5)
        # Restarted: every acknowledged message is delivered, each report exactly once.
        d.start()
        try:
            self.wait_rows(d, "SELECT count(*) FROM deliveries WHERE state = 'delivered'", len(acked))
        finally:
            d.stop()
        for n in acked:
            found = fhir.search("DiagnosticReport",
                                params=[("identifier", "urn:adapterd:identifier/genelab2|GL-T%04d" % n)])
            self.assertEqual(found.get("total"), 1, n)


if __name__ == "__main__":
    unittest.main()
