"""Delivery to a real FHIR server (issue 4): Medplum's FHIR engine behind tests/fhir_server, with
the Genomics Reporting profiles loaded, on loopback. Messages go in over MLLP (Debian's mllp_send)
to `adapterd serve`, are mapped, and must arrive in that server exactly once: after resends,
replays, a 30-second outage of the server, and a SIGKILL of adapterd in the middle of delivery.
Faults (429 with Retry-After, 503, a hanging request, a dropped connection, a 400 refusal) are
injected into the same server through its /$test/faults endpoint."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
import unittest
import urllib.parse

import sys

from fhir_server import FhirServer
from harness import ADAPTERD, FIXTURES, Adapterd, Certificates, mllp_send

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "stubs"))
from test_token_server import Key, TokenServer  # noqa: E402  (the OAuth2 token endpoint stub)

REPO = os.path.dirname(os.path.abspath(FIXTURES))
CASES = os.path.join(FIXTURES, "mappings")
VARIANT_PROFILE = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant"
STREAM_CASE = "genetic-obr-nested"  # one report, accession GL-4410, two variants


def golden_bundle_cases():
    """Golden cases whose expected output is a transaction Bundle (the broken ones are not)."""
    out = []
    for name in sorted(os.listdir(CASES)):
        path = os.path.join(CASES, name)
        expected = os.path.join(path, "expected.json")
        if not (os.path.exists(os.path.join(path, "input.hl7")) and os.path.exists(expected)):
            continue
        with open(expected) as f:
            bundle = json.load(f)
        if bundle.get("resourceType") == "Bundle" and bundle.get("type") == "transaction":
            out.append((name, bundle))
    return out


def hl7_segments(path):
    with open(path, "rb") as f:
        data = f.read()
    data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    return [s for s in re.split(rb"\r\n|\r|\n", data) if s.strip()]


def write_variant(directory, name, case, control_suffix, replace=()):
    """The case's input with MSH-10 made unique (and any other text replaced), written to a file
    for mllp_send."""
    segments = hl7_segments(os.path.join(CASES, case, "input.hl7"))
    fields = segments[0].split(b"|")
    fields[9] = fields[9] + b"-" + control_suffix.encode()
    segments[0] = b"|".join(fields)
    data = b"\r".join(segments)
    for old, new in replace:
        data = data.replace(old.encode(), new.encode())
    path = os.path.join(directory, name + ".hl7")
    with open(path, "wb") as f:
        f.write(data)
    return path


def condition_of(entry):
    """The search an entry is created (ifNoneExist) or, for a correction, updated under (the
    query of a conditional update's "Type?search"), or None."""
    request = entry.get("request", {})
    if request.get("ifNoneExist"):
        return request["ifNoneExist"]
    url = request.get("url", "")
    return url.split("?", 1)[1] if request.get("method") == "PUT" and "?" in url else None


def conditional_entries(bundle):
    """(resourceType, search) of every conditional create or update in the Bundle."""
    return [(e["resource"]["resourceType"], condition_of(e))
            for e in bundle["entry"] if condition_of(e)]


def query(condition):
    """An ifNoneExist value ("identifier=sys%20x|v") as search parameters, decoded once."""
    return urllib.parse.parse_qsl(condition, keep_blank_values=True)


def report_identifier(bundle):
    for e in bundle["entry"]:
        if e["resource"]["resourceType"] == "DiagnosticReport":
            return condition_of(e).split("=", 1)[1]
    return None


class DeliveryCase(unittest.TestCase):
    """A FHIR server and a working folder with a copy of the shipped mappings."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="adapterd-delivery-")
        self.mappings = os.path.join(self.dir, "mappings")
        shutil.copytree(os.path.join(REPO, "mappings"), self.mappings)
        os.makedirs(os.path.join(self.dir, "fhir"))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.fhir = FhirServer(workdir=os.path.join(self.dir, "fhir"), **self.fhir_options())
        self.addCleanup(self.fhir.stop)
        self.fhir.start()

    def fhir_options(self):
        return {}

    def destination(self, **overrides):
        d = {"name": "ehr", "base_url": self.fhir.base_url, "max_in_flight": 4,
             "retry": {"max_attempts": 100, "initial_delay_ms": 200, "max_delay_ms": 2000},
             "circuit_breaker": {"failure_threshold": 3, "open_ms": 1000, "max_open_ms": 4000}}
        d.update(overrides)
        return d

    # mapping.feed settings of the daemons this case starts, if any.
    FEED = None

    def daemon(self, destinations=None):
        os.makedirs(os.path.join(self.dir, "adapterd"), exist_ok=True)
        mapping = {"directory": self.mappings, "default_timezone": "UTC"}
        if self.FEED:
            mapping["feed"] = self.FEED
        return Adapterd(workdir=os.path.join(self.dir, "adapterd"),
                        mapping=mapping,
                        destinations=destinations if destinations is not None else [self.destination()])

    def send(self, d, path):
        acks = mllp_send(d.port, path)
        self.assertEqual(len(acks), 1, path)
        self.assertRegex(acks[0], r"MSA\|(AA|CA)\|", path)

    def wait_deliveries(self, d, state, count, timeout=60):
        deadline = time.time() + timeout
        n = 0
        while time.time() < deadline:
            n = d.rows("SELECT count(*) FROM deliveries WHERE state = ?", (state,))[0][0]
            if n >= count:
                return n
            time.sleep(0.1)
        self.fail("%d of %d deliveries %s after %d s; states: %r\n%s" % (
            n, count, state, timeout,
            d.rows("SELECT state, count(*), max(last_error) FROM deliveries GROUP BY state"),
            d.log_text()[-3000:]))

    def assert_once(self, resource_type, condition, context=""):
        total = self.fhir.search(resource_type, params=query(condition)).get("total")
        self.assertEqual(total, 1, "%s?%s %s" % (resource_type, condition, context))

    def delivery_metrics(self, d):
        text = d.metrics_text() if hasattr(d, "metrics_text") else None
        if text is None:
            import urllib.request
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % d.admin_port, timeout=5) as r:
                text = r.read().decode()
        out = {}
        for line in text.splitlines():
            m = re.match(r'^(adapterd_(?:delivery|outbox)_\w+)\{destination="([^"]*)"\} (\S+)$', line)
            if m:
                out[(m.group(1), m.group(2))] = float(m.group(3))
        return out


class GoldenCasesArriveOnce(DeliveryCase):
    # Every golden case goes to one server, and several share an accession with different
    # OBR-22 times (the original, its correction, a withdrawal): in sorted order some are older
    # versions than one sent before them, which the default holds back (Corrections tests that).
    # Here every message is to be sent, to show that resends and replays create nothing twice.
    FEED = {"older_versions": "send"}

    def check_server_holds(self, cases):
        """Each conditional entry of each Bundle is on the server exactly once; each report
        references as many results as its Bundle; Variant Observations, searched by code and
        subject, number as many as the Bundles hold for that patient."""
        variants_by_patient = {}
        last_report = {}
        for name, bundle in cases:
            for rtype, condition in conditional_entries(bundle):
                # The Provenance is keyed by the raw message's SHA-256, which the unique control
                # ID sent here changes; it is checked below through the replays.
                if rtype != "Provenance":
                    self.assert_once(rtype, condition, name)
            resources = {e["fullUrl"]: e for e in bundle["entry"]}
            report = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport")
            # Some samples share a header, and so an accession: the first one sent created the
            # report, and each later one, a later message about the same report, updated it
            # ($source.supersedes) instead of adding another. The server holds the last one's.
            last_report[condition_of(report)] = (name, report)
            for e in bundle["entry"]:
                r = e["resource"]
                if VARIANT_PROFILE in r.get("meta", {}).get("profile", []):
                    patient = resources[r["subject"]["reference"]]
                    key = patient["request"].get("ifNoneExist") or json.dumps(patient["resource"].get("identifier"))
                    variants_by_patient.setdefault(key, set()).add(condition_of(e))
        for condition, (name, report) in last_report.items():
            stored = self.fhir.resources("DiagnosticReport", params=query(condition))
            self.assertEqual(len(stored), 1, condition)
            self.assertEqual(len(stored[0].get("result", [])), len(report["resource"].get("result", [])), name)
        self.assertGreater(len(variants_by_patient), 0)
        for patient_condition, variants in variants_by_patient.items():
            patients = self.fhir.resources("Patient", params=query(patient_condition))
            self.assertEqual(len(patients), 1, patient_condition)
            found = self.fhir.search("Observation", params=[("code", "http://loinc.org|69548-6"),
                                                            ("subject", "Patient/" + patients[0]["id"])])
            self.assertEqual(found.get("total"), len(variants), patient_condition)

    def server_total(self):
        return {t: self.fhir.search(t, _summary="count").get("total")
                for t in ("Patient", "ServiceRequest", "Specimen", "Observation", "DiagnosticReport", "Provenance")}

    def test_golden_cases_arrive_once_and_resends_and_replays_create_nothing_twice(self):
        cases = golden_bundle_cases()
        self.assertGreater(len(cases), 8)
        with self.daemon() as d:
            for name, _ in cases:
                self.send(d, write_variant(self.dir, name, name, name))
            self.wait_deliveries(d, "delivered", len(cases))
            time.sleep(0.3)  # a second sending of any of them would show by now
            self.assertEqual(d.rows("SELECT count(*) FROM delivery_attempts")[0][0], len(cases))
            self.check_server_holds(cases)
            before = self.server_total()
            self.assertGreater(before["Observation"], 20)

            # The same messages again under new control IDs: new messages for adapterd, the same
            # resources for the server (ifNoneExist on their business identifiers).
            for name, _ in cases:
                self.send(d, write_variant(self.dir, name + "-again", name, name + "-again"))
            self.wait_deliveries(d, "delivered", 2 * len(cases))
            # Replay of every stored message: mapped again, queued again, sent again.
            ids = [r[0] for r in d.rows("SELECT message_id FROM deliveries ORDER BY message_id")]
            for message_id in ids:
                out = subprocess.run([ADAPTERD, "replay", "--config", d.config_path, str(message_id)],
                                     capture_output=True, text=True, timeout=30)
                self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(len(ids), 2 * len(cases))
            deadline = time.time() + 60
            while time.time() < deadline:
                rows = d.rows("SELECT count(*) FROM delivery_attempts WHERE outcome = 'delivered'")
                if rows[0][0] >= 2 * len(ids):
                    break
                time.sleep(0.1)
            time.sleep(0.5)  # anything more would be a delivery too many
            self.assertEqual(d.rows("SELECT count(*) FROM delivery_attempts WHERE outcome = 'delivered'")[0][0],
                             2 * len(ids),
                             d.rows("SELECT message_id, number, started_at_us, outcome FROM delivery_attempts "
                                    "WHERE message_id IN (SELECT message_id FROM delivery_attempts "
                                    "WHERE outcome = 'delivered' GROUP BY message_id HAVING count(*) > 2)")
                             + d.rows("SELECT message_id, attempts, mapped_at_us FROM mappings WHERE attempts > 2"))
            self.wait_deliveries(d, "delivered", 2 * len(cases))
            after = self.server_total()
            for t in ("Patient", "ServiceRequest", "Specimen", "Observation", "DiagnosticReport"):
                self.assertEqual(after[t], before[t], t)
            # One Provenance per distinct message received (each resend is a message of its own,
            # with its own SHA-256); the replays added none.
            self.assertEqual(after["Provenance"], 2 * len(cases))
            self.check_server_holds(cases)


class Corrections(DeliveryCase):
    """A corrected report (OBR-25 and one row's OBX-11 "C") sent after the original, then one that
    withdraws a variant (OBX-11 "W"): their results are conditional updates, so the EHR's
    resources change under the same identifiers, and none is added
    (fixtures/mappings/genetic-corrected-report, genetic-wrong-variant)."""

    ORIGINAL = "genetic-brca-subid-dot-form"
    CORRECTION = "genetic-corrected-report"
    WITHDRAWAL = "genetic-wrong-variant"

    def stored_variant(self, condition):
        found = self.fhir.resources("Observation", params=query(condition))
        self.assertEqual(len(found), 1, condition)
        vaf = [c["valueQuantity"]["value"] for c in found[0].get("component", [])
               if c["code"]["coding"][0]["code"] == "81258-6"]
        return found[0]["status"], vaf

    def totals(self):
        return {t: self.fhir.count(t) for t in
                ("Patient", "ServiceRequest", "Specimen", "Observation", "DiagnosticReport", "Provenance")}

    def test_a_correction_updates_what_the_original_created(self):
        correction = dict(golden_bundle_cases())[self.CORRECTION]
        variant = next(e for e in correction["entry"] if (condition_of(e) or "").endswith("/variant/1a"))
        report = next(e for e in correction["entry"] if e["resource"]["resourceType"] == "DiagnosticReport")
        self.assertEqual(report["request"]["method"], "PUT")
        with self.daemon() as d:
            self.send(d, write_variant(self.dir, "original", self.ORIGINAL, "O"))
            self.wait_deliveries(d, "delivered", 1)
            before = self.totals()
            self.assertEqual(self.stored_variant(condition_of(variant)), ("final", [0.48]))
            self.send(d, write_variant(self.dir, "correction", self.CORRECTION, "C"))
            self.wait_deliveries(d, "delivered", 2)
            self.assertEqual(self.stored_variant(condition_of(variant)), ("corrected", [0.45]))
            reports = self.fhir.resources("DiagnosticReport", params=query(condition_of(report)))
            self.assertEqual([r["status"] for r in reports], ["corrected"])
            after = self.totals()
            before["Provenance"] += 1  # the correction is a message of its own
            self.assertEqual(after, before)
            # Sent again, the correction changes nothing more and adds nothing.
            self.send(d, write_variant(self.dir, "correction-again", self.CORRECTION, "C2"))
            self.wait_deliveries(d, "delivered", 3)
            before["Provenance"] += 1
            self.assertEqual(self.totals(), before)
            self.assertEqual(self.stored_variant(condition_of(variant)), ("corrected", [0.45]))
            # Then the lab withdraws the other variant (OBX-11 "W" on its rows): the EHR's copy
            # is marked entered-in-error, not left standing beside a new one.
            withdrawn = condition_of(variant).replace("/variant/1a", "/variant/1b")
            self.assertEqual(self.stored_variant(withdrawn)[0], "final")
            # Its OBR-22 (when the result status last changed) is after the correction's: an
            # older one would be held back as an older version of the report.
            self.send(d, write_variant(self.dir, "withdrawal", self.WITHDRAWAL, "W",
                                       replace=(("|20240315140000-0500|", "|20240319090000-0500|"),)))
            self.wait_deliveries(d, "delivered", 4)
            before["Provenance"] += 1
            self.assertEqual(self.totals(), before)
            self.assertEqual(self.stored_variant(withdrawn)[0], "entered-in-error")


    def test_a_final_result_replaces_the_preliminary_one(self):
        """The same report twice: first preliminary (OBR-25 and every OBX-11 "P"), then final. The
        daemon finds the preliminary one queued before, so the final one's results are conditional
        updates ($source.supersedes) and replace it: without that, the EHR would keep the
        preliminary results, its conditional creates finding them."""
        original = dict(golden_bundle_cases())[self.ORIGINAL]
        variant = next(e for e in original["entry"] if (condition_of(e) or "").endswith("/variant/1a"))
        report = next(e for e in original["entry"] if e["resource"]["resourceType"] == "DiagnosticReport")
        with self.daemon() as d:
            self.send(d, write_variant(self.dir, "preliminary", self.ORIGINAL, "P", replace=(("|F\r", "|P\r"),)))
            self.wait_deliveries(d, "delivered", 1)
            self.assertEqual(self.stored_variant(condition_of(variant)), ("preliminary", [0.48]))
            reports = self.fhir.resources("DiagnosticReport", params=query(condition_of(report)))
            self.assertEqual([r["status"] for r in reports], ["preliminary"])
            before = self.totals()
            self.send(d, write_variant(self.dir, "final", self.ORIGINAL, "F"))
            self.wait_deliveries(d, "delivered", 2)
            self.assertEqual(self.stored_variant(condition_of(variant)), ("final", [0.48]))
            reports = self.fhir.resources("DiagnosticReport", params=query(condition_of(report)))
            self.assertEqual([r["status"] for r in reports], ["final"])
            before["Provenance"] += 1  # the final report is a message of its own
            self.assertEqual(self.totals(), before)
            # What each message was mapped to: the first creates, the second updates its results
            # (the Patient and the Provenance stay conditional creates).
            bundles = [json.loads(r[0]) for r in d.rows("SELECT bundle FROM mappings ORDER BY message_id")]
            methods = [sorted({(e["resource"]["resourceType"], e["request"]["method"]) for e in b["entry"]})
                       for b in bundles]
            self.assertEqual(methods[0], sorted({(t, "POST") for t, _ in methods[0]}))
            self.assertEqual(methods[1], sorted({(t, "POST" if t in ("Patient", "Provenance") else "PUT")
                                                 for t, _ in methods[1]}))


    def test_a_preliminary_result_after_its_final_one_is_held_back(self):
        """The final report (issued 11:00) reaches the daemon before the preliminary one (issued
        10:00, OBR-22), as when an interface engine in between delays or resends it. The
        preliminary one is mapped and kept with a warning, but sent nowhere: the EHR keeps the
        final results. Without the issued-time rule it would be sent as an update over them."""
        original = dict(golden_bundle_cases())[self.ORIGINAL]
        variant = next(e for e in original["entry"] if (condition_of(e) or "").endswith("/variant/1a"))
        issued = "|20240315140000-0500|"
        with self.daemon() as d:
            self.send(d, write_variant(self.dir, "final", self.ORIGINAL, "F",
                                       replace=((issued, "|20240315110000-0500|"),)))
            self.wait_deliveries(d, "delivered", 1)
            before = self.totals()
            self.send(d, write_variant(self.dir, "late-preliminary", self.ORIGINAL, "P",
                                       replace=(("|F\r", "|P\r"), (issued, "|20240315100000-0500|"))))
            deadline = time.time() + 30
            while time.time() < deadline and d.rows("SELECT count(*) FROM mappings")[0][0] < 2:
                time.sleep(0.1)
            (state, issues), = d.rows("SELECT state, issues FROM mappings WHERE message_id = 2")
            self.assertEqual(state, "mapped")
            warnings = [i["message"] for i in json.loads(issues) if i["severity"] == "warning"]
            self.assertTrue(any(w.startswith("not sent: message 1 sent a newer version of DiagnosticReport?")
                                for w in warnings), warnings)
            self.assertEqual(d.rows("SELECT count(*) FROM deliveries WHERE message_id = 2")[0][0], 0)
            self.assertEqual(self.stored_variant(condition_of(variant)), ("final", [0.48]))
            self.assertEqual(self.totals(), before)
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % d.admin_port, timeout=5) as r:
                metrics = r.read().decode()
            self.assertIn('adapterd_mapping_held_back_total{template="oru-r01"} 1', metrics)

    def test_a_dead_lettered_preliminary_is_not_sent_over_its_final(self):
        """The preliminary report (issued 10:00) cannot be delivered (the EHR answers 503 twice,
        so it becomes a dead letter). The final one (issued 11:00) comes next and is delivered:
        queuing it discarded the preliminary's dead letter, which would otherwise hold the
        report's queue until an operator acted on it. An operator who then
        retries every dead letter (the outage is over) sends nothing over the final results.
        Results go as conditional updates here (result_updates "always"), so a preliminary sent
        after the final would overwrite it."""
        self.FEED = {"result_updates": "always"}
        original = dict(golden_bundle_cases())[self.ORIGINAL]
        variant = next(e for e in original["entry"] if (condition_of(e) or "").endswith("/variant/1a"))
        issued = "|20240315140000-0500|"
        self.fhir.control("POST", "faults", [{"status": 503}] * 2)
        destination = self.destination(retry={"max_attempts": 2, "initial_delay_ms": 100, "max_delay_ms": 100},
                                       circuit_breaker={"failure_threshold": 100})
        with self.daemon([destination]) as d:
            self.send(d, write_variant(self.dir, "preliminary", self.ORIGINAL, "P",
                                       replace=(("|F\r", "|P\r"), (issued, "|20240315100000-0500|"))))
            self.wait_deliveries(d, "dead_letter", 1)
            self.send(d, write_variant(self.dir, "final", self.ORIGINAL, "F",
                                       replace=((issued, "|20240315110000-0500|"),)))
            self.wait_deliveries(d, "delivered", 1)
            (state, reason), = d.rows("SELECT state, discard_reason FROM deliveries WHERE message_id = 1")
            self.assertEqual(state, "discarded")
            self.assertRegex(reason, r"^superseded: message 2 sent a newer version of DiagnosticReport\?"
                                     r".* \(issued 2024-03-15T16:00:00\.000000\+00:00\)$")
            retried = subprocess.run([ADAPTERD, "dead-letters", "--config", d.config_path, "retry", "--all"],
                                     capture_output=True, text=True, timeout=30)
            self.assertEqual(retried.returncode, 0, retried.stderr)
            time.sleep(1.0)  # a retried delivery (100 ms backoff) would have gone out by now
            self.assertEqual(d.rows("SELECT state FROM deliveries ORDER BY message_id"),
                             [("discarded",), ("delivered",)])
            self.assertEqual(self.stored_variant(condition_of(variant)), ("final", [0.48]))
            self.assertEqual(self.fhir.count("DiagnosticReport"), 1)
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % d.admin_port, timeout=5) as r:
                metrics = r.read().decode()
            self.assertIn('adapterd_mapping_superseded_deliveries_total{template="oru-r01"} 1', metrics)


class CorrectionsResourceByResource(Corrections):
    """The same through a server without transactions: each conditional update is a PUT of its
    own, its answer gives the id the later entries' references are rewritten to."""

    def destination(self, **overrides):
        return super().destination(mode="resources", **overrides)


class Routing(DeliveryCase):
    """Destinations with filters: a message goes to each destination whose filter takes its
    source and the template that mapped it, and to every destination without one."""

    def test_each_destination_takes_what_its_filter_names(self):
        destinations = [
            self.destination(),
            self.destination(name="genetics", filter={"sources": ["mllp"], "templates": ["oru-r01"]}),
            self.destination(name="xml-archive", filter={"templates": ["foundation-one", "qci-report"]}),
            self.destination(name="mllp-xml", filter={"sources": ["mllp"], "templates": ["qci-report"]}),
        ]
        with self.daemon(destinations) as d:
            self.send(d, write_variant(self.dir, "routed", STREAM_CASE, "R1"))
            self.wait_deliveries(d, "delivered", 2)
            time.sleep(0.3)  # a third delivery would show by now
            rows = d.rows("SELECT destination, state FROM deliveries ORDER BY destination")
            self.assertEqual(rows, [("ehr", "delivered"), ("genetics", "delivered")])


class Outages(DeliveryCase):
    def stream_message(self, n):
        return write_variant(self.dir, "stream-%03d" % n, STREAM_CASE, "S%03d" % n,
                             replace=(("GL-4410", "GL-S%03d" % n), ("SPEC-4410", "SPEC-S%03d" % n)))

    def assert_each_report_once(self, count):
        for n in range(count):
            condition = "identifier=urn:adapterd:identifier/genelab2|GL-S%03d" % n
            self.assert_once("DiagnosticReport", condition)
            self.assert_once("Observation", "identifier=urn:adapterd:identifier/genelab2|GL-S%03d/variant/obr2" % n)

    def test_fhir_server_down_for_30_seconds_in_the_middle_of_a_stream(self):
        total = 30
        paths = [self.stream_message(n) for n in range(total)]
        with self.daemon() as d:
            sent = []

            def sender():
                for p in paths:
                    self.send(d, p)
                    sent.append(p)
                    time.sleep(0.6)

            thread = threading.Thread(target=sender)
            thread.start()
            self.wait_deliveries(d, "delivered", 5)
            self.fhir.stop()
            down_at = time.time()
            states = set()
            while time.time() - down_at < 30:
                m = self.delivery_metrics(d)
                states.add(m.get(("adapterd_delivery_circuit_state", "ehr")))
                time.sleep(0.5)
            self.assertIn(2.0, states, "the circuit breaker was never seen open: %r" % states)
            pending = self.delivery_metrics(d)[("adapterd_outbox_pending", "ehr")]
            self.assertGreater(pending, 0)
            self.fhir.start()
            thread.join()
            self.assertEqual(len(sent), total)
            self.wait_deliveries(d, "delivered", total, timeout=90)
            self.assertEqual(d.rows("SELECT count(*) FROM deliveries WHERE state <> 'delivered'")[0][0], 0)
            self.assertEqual(self.delivery_metrics(d)[("adapterd_delivery_circuit_state", "ehr")], 0.0)
            self.assertGreaterEqual(self.delivery_metrics(d)[("adapterd_delivery_circuit_opened_total", "ehr")], 1)
        self.assertEqual(self.fhir.search("DiagnosticReport", _summary="count").get("total"), total)
        self.assert_each_report_once(total)

    def test_adapterd_killed_in_the_middle_of_delivery(self):
        total = 30
        # Every request takes 150 ms, so the kill lands while deliveries are in flight.
        self.fhir.control("POST", "faults", [{"delayMs": 150}] * (3 * total))
        with self.daemon([self.destination(max_in_flight=2)]) as d:
            for n in range(total):
                self.send(d, self.stream_message(n))
            self.wait_deliveries(d, "delivered", 6)
            d.kill()
            delivered_before = d.rows("SELECT count(*) FROM deliveries WHERE state = 'delivered'")[0][0]
            self.assertLess(delivered_before, total)
            d.start()
            self.wait_deliveries(d, "delivered", total, timeout=90)
        self.assertEqual(self.fhir.search("DiagnosticReport", _summary="count").get("total"), total)
        self.assert_each_report_once(total)


class Refusals(DeliveryCase):
    def break_specimen_template(self):
        """Adds an element FHIR does not know to the Specimen: our own checks let it through,
        the server's validation refuses it (400 with an OperationOutcome)."""
        path = os.path.join(self.mappings, "hl7v2", "oru_r01.json")
        with open(path) as f:
            text = f.read()
        broken = text.replace('"resourceType": "Specimen",', '"resourceType": "Specimen",\n "bogusElement": "x",', 1)
        self.assertNotEqual(broken, text)
        with open(path, "w") as f:
            f.write(broken)
        return path, text

    def test_a_refused_bundle_is_a_dead_letter_and_retry_delivers_it_once_fixed(self):
        path, original = self.break_specimen_template()
        message = write_variant(self.dir, "refused", STREAM_CASE, "R1")
        with self.daemon() as d:
            self.send(d, message)
            self.wait_deliveries(d, "dead_letter", 1)
            row = d.rows("SELECT message_id, attempts, last_status, last_error, response FROM deliveries")[0]
            message_id, attempts, status, error, response = row
            self.assertEqual((attempts, status), (1, 400))
            self.assertIn("bogusElement", error)
            self.assertEqual(json.loads(response)["resourceType"], "OperationOutcome")
            self.assertEqual(self.fhir.search("DiagnosticReport", _summary="count").get("total"), 0)
            listed = subprocess.run([ADAPTERD, "dead-letters", "--config", d.config_path, "list"],
                                    capture_output=True, text=True, timeout=30)
            self.assertEqual(listed.returncode, 0, listed.stderr)
            self.assertIn("1 dead letter(s)", listed.stdout)
            shown = subprocess.run([ADAPTERD, "dead-letters", "--config", d.config_path, "show", str(message_id)],
                                   capture_output=True, text=True, timeout=30)
            self.assertEqual(shown.returncode, 0, shown.stderr)
            self.assertIn("dead_letter", shown.stdout)
            self.assertIn('"resourceType":"OperationOutcome"', shown.stdout.replace(" ", ""))
            self.assertIn("bogusElement", shown.stdout)
        # The cause fixed (the template), the daemon restarted with it, the dead letter retried.
        with open(path, "w") as f:
            f.write(original)
        with self.daemon() as d:
            retried = subprocess.run([ADAPTERD, "dead-letters", "--config", d.config_path, "retry", str(message_id)],
                                     capture_output=True, text=True, timeout=30)
            self.assertEqual(retried.returncode, 0, retried.stderr)
            self.wait_deliveries(d, "delivered", 1)
            self.assertEqual(d.rows("SELECT attempts FROM deliveries")[0][0], 1)
            self.assertEqual(d.rows("SELECT count(*) FROM delivery_attempts")[0][0], 2)
        self.assertEqual(self.fhir.search("DiagnosticReport", _summary="count").get("total"), 1)

    def test_discarding_a_dead_letter_releases_the_report_behind_it(self):
        path, original = self.break_specimen_template()
        with self.daemon() as d:
            self.send(d, write_variant(self.dir, "first", STREAM_CASE, "D1"))
            self.wait_deliveries(d, "dead_letter", 1)
            first = d.rows("SELECT message_id FROM deliveries")[0][0]
            with open(path, "w") as f:
                f.write(original)
        with self.daemon() as d:
            # A correction about the same report waits behind the dead letter...
            self.send(d, write_variant(self.dir, "second", STREAM_CASE, "D2"))
            time.sleep(1.5)
            self.assertEqual(d.rows("SELECT count(*) FROM deliveries WHERE state = 'pending'")[0][0], 1)
            out = subprocess.run([ADAPTERD, "dead-letters", "--config", d.config_path, "discard", str(first),
                                  "--reason", "sent by fax"], capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            # ...and goes once it is discarded.
            self.wait_deliveries(d, "delivered", 1)
            self.assertEqual(d.rows("SELECT discard_reason FROM deliveries WHERE message_id = ?", (first,))[0][0],
                             "sent by fax")


class TransientFaults(DeliveryCase):
    """Each fault is injected into the real server for every attempt; three attempts, then a
    dead letter. The attempt times recorded by adapterd show the backoff."""

    def run_fault(self, fault, destination_overrides=None):
        self.fhir.control("POST", "faults", [fault] * 3)
        overrides = {"retry": {"max_attempts": 3, "initial_delay_ms": 400, "max_delay_ms": 400},
                     "circuit_breaker": {"failure_threshold": 100}, "request_timeout_ms": 1000}
        overrides.update(destination_overrides or {})
        with self.daemon([self.destination(**overrides)]) as d:
            self.send(d, write_variant(self.dir, "fault", STREAM_CASE, "F1"))
            self.wait_deliveries(d, "dead_letter", 1, timeout=60)
            attempts = d.rows("SELECT number, started_at_us, duration_us, status, outcome, error "
                              "FROM delivery_attempts ORDER BY number")
            last_error = d.rows("SELECT last_error FROM deliveries")[0][0]
        self.assertEqual([a[0] for a in attempts], [1, 2, 3])
        self.assertEqual([a[4] for a in attempts], ["retry", "retry", "dead_letter"])
        self.assertTrue(last_error.startswith("gave up after 3 attempts (retry.max_attempts): "), last_error)
        self.assertEqual(self.fhir.search("DiagnosticReport", _summary="count").get("total"), 0)
        gaps = [(attempts[i + 1][1] - (attempts[i][1] + attempts[i][2])) / 1e6 for i in range(2)]
        return attempts, gaps, last_error

    def test_429_with_retry_after_is_honoured(self):
        attempts, gaps, _ = self.run_fault({"status": 429, "retryAfter": 2})
        self.assertEqual([a[3] for a in attempts], [429, 429, 429])
        for gap in gaps:
            self.assertGreaterEqual(gap, 1.95)  # Retry-After: 2 beats the 400 ms backoff

    def test_503_is_retried_with_backoff(self):
        attempts, gaps, last_error = self.run_fault({"status": 503})
        self.assertEqual([a[3] for a in attempts], [503, 503, 503])
        for gap in gaps:
            self.assertGreaterEqual(gap, 0.19)  # at least half of 400 ms, with jitter
        self.assertIn("HTTP 503", last_error)

    def test_a_hanging_server_times_out_and_is_retried(self):
        # The server answers 503 only after 5 s: by then adapterd has given up on the request.
        attempts, gaps, last_error = self.run_fault({"delayMs": 5000, "status": 503})
        for a in attempts:
            self.assertEqual(a[3], 0)
            self.assertGreaterEqual(a[2], 950_000)   # the 1000 ms request timeout...
            self.assertLess(a[2], 3_000_000)          # ...not the server's 5 s
            self.assertIn("timed out", a[5])
        for gap in gaps:
            self.assertGreaterEqual(gap, 0.19)

    def test_a_dropped_connection_is_retried(self):
        attempts, gaps, _ = self.run_fault({"drop": True})
        for a in attempts:
            self.assertEqual(a[3], 0)
            self.assertTrue(a[5], a)
        for gap in gaps:
            self.assertGreaterEqual(gap, 0.19)


class Authentication(DeliveryCase):
    """OAuth2 client credentials and SMART Backend Services against the token endpoint stub,
    which checks the client's secret or the JWT's signature with the public key. The FHIR server
    accepts only tokens the token endpoint says are active (RFC 7662 introspection), so revoking
    them makes it answer 401."""

    def setUp(self):
        self.keys = tempfile.mkdtemp(prefix="adapterd-keys-")
        self.secret_file = os.path.join(self.keys, "client-secret")
        with open(self.secret_file, "w") as f:
            f.write("s3cret: with + & spaces\n")
        self.es384 = Key(self.keys, "es384", "ES384")
        self.rs384 = Key(self.keys, "rs384", "RS384")
        self.tokens = TokenServer("--auth", "basic,post,jwt", "--client-id", "adapterd",
                                  "--client-secret-file", self.secret_file,
                                  "--public-key", self.es384.public, "--kid", "key-es",
                                  "--lifetime", "3600")
        # Cleanups run even when the rest of setUp fails (tearDown would not).
        self.addCleanup(shutil.rmtree, self.keys, ignore_errors=True)
        self.addCleanup(self.tokens.stop)
        super().setUp()

    def fhir_options(self):
        return {"introspect": "http://127.0.0.1:%d/introspect" % self.tokens.port}

    def deliver_revoke_deliver(self, auth):
        with self.daemon([self.destination(auth=auth)]) as d:
            for n in range(3):
                self.send(d, write_variant(self.dir, "auth-%d" % n, STREAM_CASE, "A%d" % n,
                                           replace=(("GL-4410", "GL-A%d" % n),)))
            self.wait_deliveries(d, "delivered", 3)
            self.assertEqual(self.tokens.stats()["tokens_issued"], 1)  # fetched once, then cached
            # Every token is revoked: the server answers 401, adapterd fetches a new token once and
            # sends again, within the same attempt.
            self.tokens.request("POST", "/revoke-all")
            self.send(d, write_variant(self.dir, "auth-3", STREAM_CASE, "A3", replace=(("GL-4410", "GL-A3"),)))
            self.wait_deliveries(d, "delivered", 4)
            self.assertEqual(self.tokens.stats()["tokens_issued"], 2)
            attempts = d.rows("SELECT count(*) FROM delivery_attempts")[0][0]
            self.assertEqual(attempts, 4)
            self.assertNotIn("s3cret", d.log_text())
        self.assertGreaterEqual(self.fhir.control("GET", "stats")["unauthorized"], 1)
        self.fhir.token = self.own_token()
        self.assertEqual(self.fhir.search("DiagnosticReport", _summary="count").get("total"), 4)

    def own_token(self):
        """A token of the test's own, to search the server with."""
        status, body, _ = self.tokens.token({"grant_type": "client_credentials", "client_id": "adapterd",
                                             "client_secret": "s3cret: with + & spaces"})
        self.assertEqual(status, 200, body)
        return body["access_token"]

    def test_client_credentials_with_client_secret_basic(self):
        self.deliver_revoke_deliver({"type": "client_credentials", "token_url": self.tokens.token_url,
                                     "client_id": "adapterd", "client_secret_file": self.secret_file})

    def test_client_credentials_with_client_secret_post(self):
        self.deliver_revoke_deliver({"type": "client_credentials", "token_url": self.tokens.token_url,
                                     "client_id": "adapterd", "client_secret_file": self.secret_file,
                                     "method": "client_secret_post", "scope": "system/*.write"})

    def test_smart_backend_services_es384(self):
        self.deliver_revoke_deliver({"type": "smart_backend", "token_url": self.tokens.token_url,
                                     "client_id": "adapterd", "private_key_file": self.es384.path,
                                     "algorithm": "ES384", "key_id": "key-es"})

    def test_a_wrong_key_gets_no_token_and_nothing_is_sent(self):
        auth = {"type": "smart_backend", "token_url": self.tokens.token_url, "client_id": "adapterd",
                "private_key_file": self.rs384.path, "algorithm": "RS384", "key_id": "key-es"}
        overrides = {"auth": auth, "retry": {"max_attempts": 2, "initial_delay_ms": 100, "max_delay_ms": 100}}
        with self.daemon([self.destination(**overrides)]) as d:
            self.send(d, write_variant(self.dir, "wrong-key", STREAM_CASE, "W1"))
            self.wait_deliveries(d, "dead_letter", 1)
            error = d.rows("SELECT last_error FROM deliveries")[0][0]
            self.assertIn("invalid_client", error)
        self.assertGreaterEqual(self.tokens.stats()["rejected"], 2)
        self.assertEqual(self.fhir.control("GET", "stats")["requests"], 0)


class ResourceByResource(GoldenCasesArriveOnce):
    """mode "resources": for servers without transactions, each entry is POSTed on its own as a
    conditional create, in dependency order, with its urn:uuid references rewritten."""

    def destination(self, **overrides):
        return super().destination(mode="resources", **overrides)

    def test_golden_cases_arrive_once_and_resends_create_nothing_twice(self):
        cases = golden_bundle_cases()
        with self.daemon() as d:
            for name, _ in cases:
                self.send(d, write_variant(self.dir, name, name, name))
            self.wait_deliveries(d, "delivered", len(cases))
            self.check_server_holds(cases)
            before = self.server_total()
            # No transaction was used: one request per entry.
            self.assertEqual(self.fhir.control("GET", "stats")["transactions"], 0)
            summary = json.loads(d.rows("SELECT response FROM deliveries ORDER BY message_id")[0][0])
            self.assertTrue(all(e["status"] in ("200 OK", "201 Created") and e["location"] for e in summary), summary)
            for name, _ in cases:
                self.send(d, write_variant(self.dir, name + "-again", name, name + "-again"))
            self.wait_deliveries(d, "delivered", 2 * len(cases))
            after = self.server_total()
            for t in ("Patient", "ServiceRequest", "Specimen", "Observation", "DiagnosticReport"):
                self.assertEqual(after[t], before[t], t)
            self.check_server_holds(cases)

    def test_a_refused_entry_is_a_dead_letter_that_names_it_and_retry_completes_it(self):
        # The third request (the third entry in dependency order) is refused.
        self.fhir.control("POST", "faults", [{}, {}, {"status": 400}])
        with self.daemon() as d:
            self.send(d, write_variant(self.dir, "partial", STREAM_CASE, "P1"))
            self.wait_deliveries(d, "dead_letter", 1)
            message_id, error = d.rows("SELECT message_id, last_error FROM deliveries")[0]
            self.assertRegex(error, r"^entry \d+ \([A-Za-z]+\): HTTP 400: error transient: injected fault: HTTP 400$")
            # Unlike a transaction, the entries before it stay on the server...
            self.assertEqual(self.fhir.control("GET", "stats")["transactions"], 0)
            self.assertGreaterEqual(self.fhir.search("Patient", _summary="count").get("total"), 1)
            self.assertEqual(self.fhir.search("DiagnosticReport", _summary="count").get("total"), 0)
            out = subprocess.run([ADAPTERD, "dead-letters", "--config", d.config_path, "retry", str(message_id)],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.wait_deliveries(d, "delivered", 1)
        # ...and the retry completes the rest without creating the first ones again.
        bundle = dict(golden_bundle_cases())[STREAM_CASE]
        for rtype, condition in conditional_entries(bundle):
            if rtype != "Provenance":
                self.assert_once(rtype, condition.replace("GL-4410", "GL-4410").replace("SPEC-4410", "SPEC-4410"))


class StaticCredentials(DeliveryCase):
    """A fixed bearer token from the environment, and HTTP Basic with the password in a file."""

    TOKEN = "static-token-0123456789"
    PASSWORD = "pa ss:w0rd"

    def fhir_options(self):
        if self._testMethodName.startswith("test_basic"):
            return {"require_basic": "adapter:" + self.PASSWORD}
        return {"require_bearer": self.TOKEN}

    def deliver(self, auth, state="delivered"):
        with self.daemon([self.destination(auth=auth, retry={"max_attempts": 2, "initial_delay_ms": 100,
                                                             "max_delay_ms": 100})]) as d:
            self.send(d, write_variant(self.dir, "static", STREAM_CASE, "C1"))
            self.wait_deliveries(d, state, 1)
            row = d.rows("SELECT last_status, last_error FROM deliveries")[0]
            log = d.log_text()
        self.assertNotIn(self.TOKEN, log)
        self.assertNotIn(self.PASSWORD, log)
        return row

    def test_bearer_token_from_the_environment(self):
        os.environ["ADAPTERD_TEST_BEARER"] = self.TOKEN
        try:
            self.deliver({"type": "bearer", "token": "${ADAPTERD_TEST_BEARER}"})
        finally:
            del os.environ["ADAPTERD_TEST_BEARER"]
        self.assertEqual(self.fhir.search("DiagnosticReport", _summary="count").get("total"), 1)

    def test_a_wrong_bearer_token_is_a_dead_letter(self):
        os.environ["ADAPTERD_TEST_BEARER"] = "wrong-token"
        try:
            status, error = self.deliver({"type": "bearer", "token": "${ADAPTERD_TEST_BEARER}"}, "dead_letter")
        finally:
            del os.environ["ADAPTERD_TEST_BEARER"]
        self.assertEqual(status, 401)
        self.assertIn("HTTP 401", error)

    def test_basic_with_the_password_in_a_file(self):
        secret = os.path.join(self.dir, "password")
        with open(secret, "w") as f:
            f.write(self.PASSWORD + "\n")
        self.deliver({"type": "basic", "username": "adapter", "password_file": secret})
        self.assertEqual(self.fhir.search("DiagnosticReport", _summary="count").get("total"), 1)


class Https(DeliveryCase):
    """The FHIR server over HTTPS with a test CA, asking for a client certificate."""

    def fhir_options(self):
        self.pki = Certificates(os.path.join(self.dir, "pki"))
        # A certificate that names another host only, from the same CA.
        self.other_host, self.other_host_key = (os.path.join(self.dir, "pki", n) for n in ("other.crt", "other.key"))
        self.pki._leaf(self.other_host, self.other_host_key, "ehr.example.org", self.pki.ca, self.pki.ca_key,
                       "subjectAltName=DNS:ehr.example.org\nextendedKeyUsage=serverAuth")
        return {"tls": {"cert": self.pki.server, "key": self.pki.server_key, "client_ca": self.pki.ca,
                        "ca": self.pki.ca, "client_cert": self.pki.client, "client_key": self.pki.client_key}}

    def tls_destination(self, **tls):
        settings = {"ca_file": self.pki.ca, "client_certificate_file": self.pki.client,
                    "client_key_file": self.pki.client_key}
        settings.update(tls)
        return self.destination(tls=settings, connect_timeout_ms=2000,
                                retry={"max_attempts": 2, "initial_delay_ms": 100, "max_delay_ms": 100},
                                circuit_breaker={"failure_threshold": 100})

    def test_https_with_a_test_ca_and_a_client_certificate(self):
        self.assertTrue(self.fhir.base_url.startswith("https://localhost:"))
        with self.daemon([self.tls_destination()]) as d:
            self.send(d, write_variant(self.dir, "tls", STREAM_CASE, "T1"))
            self.wait_deliveries(d, "delivered", 1)
        self.assertEqual(self.fhir.search("DiagnosticReport", _summary="count").get("total"), 1)

    def refused(self, destination, expected):
        with self.daemon([destination]) as d:
            self.send(d, write_variant(self.dir, "tls-refused", STREAM_CASE, "T2"))
            self.wait_deliveries(d, "dead_letter", 1)
            errors = [r[0] for r in d.rows("SELECT error FROM delivery_attempts ORDER BY number")]
            log = d.log_text()
        self.assertEqual(len(errors), 2)
        for error in errors:
            self.assertIn("TLS handshake with localhost:%d: " % self.fhir.port, error)
            self.assertIn(expected, error)
        self.assertIn(expected, log)  # our own transport errors are logged (they carry no PHI)
        self.assertEqual(self.fhir.control("GET", "stats")["requests"], 0)

    def test_an_untrusted_certificate_is_refused(self):
        # OpenSSL names the reason after the chain the server sent ("self-signed certificate in
        # certificate chain" here, "unable to get local issuer certificate" without the root).
        self.refused(self.tls_destination(ca_file=self.pki.rogue_ca), "certificate verify failed (")

    def test_a_certificate_for_another_host_is_refused(self):
        self.fhir.stop()
        # (This helper's own requests, for the counts, skip the host check it is about.)
        self.fhir.tls = dict(self.fhir.tls, cert=self.other_host, key=self.other_host_key, check_hostname=False)
        self.fhir.start()
        self.refused(self.tls_destination(), "certificate verify failed (hostname mismatch)")

    def test_a_missing_client_certificate_is_refused_by_the_server(self):
        destination = self.tls_destination()
        del destination["tls"]["client_certificate_file"]
        del destination["tls"]["client_key_file"]
        with self.daemon([destination]) as d:
            self.send(d, write_variant(self.dir, "tls-no-client", STREAM_CASE, "T3"))
            self.wait_deliveries(d, "dead_letter", 1)
            error = d.rows("SELECT last_error FROM deliveries")[0][0]
        self.assertTrue(error.startswith("gave up after 2 attempts"), error)


if __name__ == "__main__":
    unittest.main()
