"""Self-test of the FHIR server the integration tests deliver to (server.mjs through the helper
tests/integration/fhir_server.py): the golden transaction Bundles are stored and found by search,
a resent Bundle creates nothing, a Bundle with one non-conformant entry is refused whole, the
bearer check, a restart on the same port, and the injected faults.

    /usr/bin/python3 -m unittest -v test_fhir_server      (in tests/fhir_server; ctest fhir_server:selftest)
"""
import copy
import glob
import http.client
import json
import os
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from fhir_server import FhirServer, references  # noqa: E402

FIXTURES = os.environ.get("FIXTURES_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "fixtures"))
GR = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
VARIANT = GR + "variant"
VARIANT_CODE = "http://loinc.org|69548-6"
TYPES = ["Patient", "ServiceRequest", "Specimen", "Observation", "DiagnosticReport", "Procedure", "Provenance"]


def golden_bundles():
    paths = sorted(glob.glob(os.path.join(FIXTURES, "mappings", "*", "expected.json")))
    if not paths:
        raise RuntimeError("no golden Bundles under %s" % FIXTURES)
    for path in paths:
        with open(path) as f:
            yield os.path.basename(os.path.dirname(path)), json.load(f)


def load_bundle(case):
    with open(os.path.join(FIXTURES, "mappings", case, "expected.json")) as f:
        return json.load(f)


def profiles(resource):
    return [p.split("|")[0] for p in resource.get("meta", {}).get("profile", [])]


def criteria(entry):
    """The search an entry is created under (ifNoneExist), or updated under (a correction's
    conditional update, PUT "Type?search")."""
    request = entry["request"]
    if request.get("ifNoneExist"):
        return request["ifNoneExist"]
    url = request.get("url", "")
    return url.split("?", 1)[1] if request.get("method") == "PUT" and "?" in url else ""


def criteria_identifier(entry):
    """The token of an entry's `identifier=...` criteria (URL-decoded once, as the server reads
    it)."""
    found = criteria(entry)
    assert found.startswith("identifier="), found
    return urllib.parse.unquote(found[len("identifier="):])


SHARED = None  # one server for the classes without options of their own (startup about 1 s)


def tearDownModule():
    if SHARED:
        SHARED.stop()


class ServerTest(unittest.TestCase):
    server_options = None

    @classmethod
    def setUpClass(cls):
        global SHARED
        if cls.server_options:
            cls.fhir = FhirServer(**cls.server_options).start()
        else:
            SHARED = SHARED or FhirServer().start()
            cls.fhir = SHARED

    @classmethod
    def tearDownClass(cls):
        if cls.fhir is not SHARED:
            cls.fhir.stop()

    def setUp(self):
        self.fhir.reset()

    def counts(self):
        return {t: self.fhir.count(t) for t in TYPES}

    def assert_references_resolve(self):
        """Every reference of every stored resource names a stored resource."""
        stored = {}
        for t in TYPES:
            for r in self.fhir.resources(t):
                stored["%s/%s" % (t, r["id"])] = r
        for key, r in stored.items():
            for ref in references(r):
                self.assertIn(ref, stored, "%s refers to %s, which is not stored" % (key, ref))
        return len(stored)


class GoldenBundles(ServerTest):
    def test_every_golden_bundle_is_stored_and_found_by_search(self):
        for case, bundle in golden_bundles():
            with self.subTest(case=case):
                self.fhir.reset()
                r = self.fhir.transaction(bundle)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body["type"], "transaction-response")
                self.assertEqual(len(r.body["entry"]), len(bundle["entry"]))
                locations = []
                for sent, got in zip(bundle["entry"], r.body["entry"]):
                    self.assertRegex(got["response"]["status"], r"^20[01]")
                    location = got["response"]["location"]
                    self.assertRegex(location, r"^%s/[A-Za-z0-9\-.]+$" % sent["resource"]["resourceType"])
                    self.assertIsNotNone(self.fhir.read(location), location)
                    locations.append(location)

                # DiagnosticReport by identifier: exactly one per report.
                reports = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"]
                self.assertTrue(reports)
                for e in reports:
                    self.assertEqual(self.fhir.count("DiagnosticReport", identifier=criteria_identifier(e)), 1)

                # Variant Observations: by profile, and by code and subject, as many as sent.
                variants = [e for e in bundle["entry"] if VARIANT in profiles(e["resource"])]
                self.assertEqual(self.fhir.count("Observation", _profile=VARIANT), len(variants))
                subjects = {e["resource"]["subject"]["reference"] for e in variants}
                for subject in subjects:
                    patient = locations[[x["fullUrl"] for x in bundle["entry"]].index(subject)]
                    self.assertEqual(self.fhir.count("Observation", code=VARIANT_CODE, subject=patient),
                                     len([e for e in variants if e["resource"]["subject"]["reference"] == subject]))
                for e in variants:
                    self.assertEqual(self.fhir.count("Observation", identifier=criteria_identifier(e)), 1)
                self.assert_references_resolve()

                # Sent again: every conditional create matches, nothing new is stored.
                before = self.counts()
                again = self.fhir.transaction(bundle)
                self.assertEqual(again.status, 200, again)
                self.assertEqual([e["response"]["status"] for e in again.body["entry"]], ["200"] * len(bundle["entry"]))
                self.assertEqual([e["response"]["location"] for e in again.body["entry"]], locations)
                self.assertEqual(self.counts(), before)

    def test_all_golden_bundles_in_one_store(self):
        """All cases into one store, twice: the second round adds nothing (some cases share a
        patient or a report), and every reference resolves."""
        distinct = {t: set() for t in TYPES}
        for _, bundle in golden_bundles():
            self.assertEqual(self.fhir.transaction(bundle).status, 200)
            for e in bundle["entry"]:
                distinct[e["resource"]["resourceType"]].add(criteria(e))
        first = self.counts()
        # One resource per distinct criterion (conditional create or update) of all the Bundles.
        self.assertEqual(first, {t: len(distinct[t]) for t in TYPES})
        stored = self.assert_references_resolve()
        for _, bundle in golden_bundles():
            self.assertEqual(self.fhir.transaction(bundle).status, 200)
        self.assertEqual(self.counts(), first)
        print("\n  %d resources stored from the golden Bundles; server RSS %.0f MB, started in %.2f s"
              % (stored, self.fhir.rss_kib() / 1024.0, self.fhir.startup_seconds), file=sys.stderr)

    def test_duplicate_conditional_creates_in_one_bundle_share_one_resource(self):
        """lab-msfc-lab-oru-1 has two Specimen entries with the same ifNoneExist: both answers
        name the one stored Specimen and the references to either entry point to it."""
        bundle = load_bundle("lab-msfc-lab-oru-1")
        specimens = [i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Specimen"]
        self.assertEqual(len(specimens), 2)
        r = self.fhir.transaction(bundle)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.fhir.count("Specimen"), 1)
        self.assertEqual(len({r.body["entry"][i]["response"]["location"] for i in specimens}), 1)
        self.assert_references_resolve()
        self.assertGreaterEqual(self.fhir.stats()["collapsedConditionalCreates"], 1)


class Rejection(ServerTest):
    def assert_refused_whole(self, bundle, entry, *words):
        r = self.fhir.transaction(bundle)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.body["resourceType"], "OperationOutcome")
        mine = [i for i in r.body["issue"] if i["details"]["text"].startswith("entry[%d] " % entry)]
        self.assertTrue(mine, r)
        self.assertTrue(all(i["severity"] == "error" for i in r.body["issue"]))
        text = " ".join(i["details"]["text"] + " " + " ".join(i.get("expression", [])) for i in mine)
        for word in words:
            self.assertIn(word, text)
        self.assertEqual(self.counts(), {t: 0 for t in TYPES}, "a refused Bundle stored something")
        self.assertEqual(self.fhir.stats()["rejected"], 1)

    def test_variant_without_code_and_category_refuses_the_bundle(self):
        bundle = load_bundle("genetic-brca-subid-dot-form")
        i = next(i for i, e in enumerate(bundle["entry"]) if VARIANT in profiles(e["resource"]))
        del bundle["entry"][i]["resource"]["code"]
        del bundle["entry"][i]["resource"]["category"]
        self.assert_refused_whole(bundle, i, "Bundle.entry[%d].resource.code" % i,
                                  "Bundle.entry[%d].resource.category" % i)

    def test_a_bad_entry_after_good_ones_refuses_the_bundle(self):
        bundle = load_bundle("genetic-somatic-cnv-tmb-msi")
        i = max(i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "DiagnosticReport")
        bundle["entry"][i]["resource"]["status"] = "done"  # not in the required value set
        self.assert_refused_whole(bundle, i, "status", "done")

    def test_profile_only_problem_refuses_the_bundle(self):
        """Valid base R4, invalid against the Variant profile (the LL1971-2 value binding)."""
        bundle = load_bundle("genetic-obr-nested")
        i = next(i for i, e in enumerate(bundle["entry"]) if VARIANT in profiles(e["resource"]))
        bundle["entry"][i]["resource"]["valueCodeableConcept"] = {"coding": [{"system": "http://loinc.org", "code": "LA6576-8"}]}
        self.assert_refused_whole(bundle, i, "value")

    def test_dangling_urn_uuid_refuses_the_bundle(self):
        bundle = load_bundle("xml-qci-two-variants")
        bundle["entry"][1]["resource"]["subject"]["reference"] = "urn:uuid:00000000-0000-4000-8000-000000000000"
        self.assert_refused_whole(bundle, 1, "does not resolve")

    def test_a_transaction_failing_during_execution_is_rolled_back(self):
        """Valid entries, but the last Variant's ifNoneExist matches two stored Observations: the
        server answers 412 after it executed the entries before it, and must undo them."""
        bundle = load_bundle("genetic-brca-subid-dot-form")
        i = max(i for i, e in enumerate(bundle["entry"]) if VARIANT in profiles(e["resource"]))
        types = {e["fullUrl"]: e["resource"]["resourceType"] for e in bundle["entry"]}
        twin = json.loads(json.dumps(bundle["entry"][i]["resource"]))
        for key in ("subject", "specimen"):
            if key in twin:
                twin[key]["reference"] = "%s/elsewhere" % types[twin[key]["reference"]]
        twin.pop("derivedFrom", None)
        for _ in range(2):
            self.assertEqual(self.fhir.create(twin).status, 201)
        r = self.fhir.transaction(bundle)
        self.assertEqual(r.status, 412, r)
        self.assertEqual(r.body["resourceType"], "OperationOutcome")
        expected = {t: 0 for t in TYPES}
        expected["Observation"] = 2
        self.assertEqual(self.counts(), expected)
        self.assertEqual(self.fhir.stats()["rolledBack"], 1)
        # The store is still usable and the journal holds no trace of the undone writes.
        self.fhir.kill()
        self.fhir.start()
        self.assertEqual(self.counts(), expected)


class SingleResources(ServerTest):
    def variant(self):
        bundle = load_bundle("xml-qci-two-variants")
        v = copy.deepcopy(next(e["resource"] for e in bundle["entry"] if VARIANT in profiles(e["resource"])))
        patient = self.fhir.create(bundle["entry"][0]["resource"])
        self.assertEqual(patient.status, 201, patient)
        v["subject"] = {"reference": "Patient/" + patient.body["id"]}
        v.pop("derivedFrom", None)
        return v

    def test_create_read_and_conditional_create(self):
        v = self.variant()
        ident = "%s|%s" % (v["identifier"][0]["system"], v["identifier"][0]["value"])
        r = self.fhir.create(v, if_none_exist="identifier=" + urllib.parse.quote(ident))
        self.assertEqual(r.status, 201, r)
        self.assertRegex(r.headers["Location"], r"^%s/Observation/%s/_history/" % (self.fhir.base_url, r.body["id"]))
        self.assertTrue(r.headers["Content-Type"].startswith("application/fhir+json"))
        again = self.fhir.create(v, if_none_exist="identifier=" + urllib.parse.quote(ident))
        self.assertEqual(again.status, 200, again)
        self.assertEqual(again.body["id"], r.body["id"])
        self.assertEqual(self.fhir.count("Observation"), 1)
        self.assertEqual(self.fhir.read("Observation/" + r.body["id"])["identifier"], v["identifier"])
        self.assertEqual(self.fhir.request("GET", "Observation/does-not-exist").status, 404)

    def test_identifier_search_is_exact(self):
        """Medplum's own token match ignores case; the server must not (see server.mjs)."""
        v = self.variant()
        system, value = v["identifier"][0]["system"], v["identifier"][0]["value"]
        self.assertEqual(self.fhir.create(v).status, 201)
        self.assertEqual(self.fhir.count("Observation", identifier="%s|%s" % (system, value)), 1)
        self.assertEqual(self.fhir.count("Observation", identifier="%s|%s" % (system.upper(), value)), 0)
        self.assertEqual(self.fhir.count("Observation", identifier="%s|%s" % (system, value.lower())), 0)
        self.assertEqual(self.fhir.count("Observation", identifier=value), 1)
        self.assertEqual(self.fhir.count("Observation", identifier="%s|" % system), 1)
        self.assertEqual(self.fhir.count("Observation", identifier="|%s" % value), 0)

    def test_invalid_resource_is_refused(self):
        v = self.variant()
        v["status"] = "done"
        r = self.fhir.create(v)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.body["resourceType"], "OperationOutcome")
        self.assertTrue(any("Observation.status" in i.get("expression", []) for i in r.body["issue"]), r)
        self.assertEqual(self.fhir.count("Observation"), 0)

    def test_update(self):
        v = self.variant()
        created = self.fhir.create(v).body
        created["status"] = "amended"
        r = self.fhir.request("PUT", "Observation/" + created["id"], created)
        self.assertEqual(r.status, 200, r)
        self.assertNotEqual(r.body["meta"]["versionId"], created["meta"]["versionId"])
        created["status"] = "done"
        self.assertEqual(self.fhir.request("PUT", "Observation/" + created["id"], created).status, 400)
        self.assertEqual(self.fhir.read("Observation/" + created["id"])["status"], "amended")

    def test_search_by_code_subject_component_and_summary(self):
        bundle = load_bundle("genetic-brca-subid-dot-form")
        r = self.fhir.transaction(bundle)
        patient = r.body["entry"][0]["response"]["location"]
        self.assertEqual(self.fhir.count("Observation", code=VARIANT_CODE, subject=patient), 2)
        self.assertEqual(self.fhir.count("Observation", code=VARIANT_CODE, subject="Patient/other"), 0)
        genes = self.fhir.resources("Observation", component_code="http://loinc.org|48018-6")
        self.assertTrue(genes)
        self.assertTrue(all(any(c["code"]["coding"][0]["code"] == "48018-6" for c in o["component"]) for o in genes))
        summary = self.fhir.search("Observation", _summary="count")
        self.assertNotIn("entry", summary)
        self.assertEqual(summary["total"], 4)
        full = self.fhir.search("Observation")
        self.assertEqual(len(full["entry"]), 4)

    def test_content_types_and_metadata(self):
        v = self.variant()
        r = self.fhir.request("POST", "Observation", json.dumps(v).encode(), headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 201, r)
        r = self.fhir.request("POST", "Observation", b"<Observation/>", headers={"Content-Type": "application/xml"})
        self.assertEqual(r.status, 415, r)
        r = self.fhir.request("POST", "Observation", b"{not json", headers={"Content-Type": "application/fhir+json"})
        self.assertEqual(r.status, 400, r)
        meta = self.fhir.request("GET", "metadata")
        self.assertEqual(meta.status, 200)
        self.assertEqual(meta.body["resourceType"], "CapabilityStatement")
        self.assertEqual(meta.body["fhirVersion"], "4.0.1")

    def test_prefer_return_minimal(self):
        bundle = load_bundle("xml-qci-two-variants")
        r = self.fhir.transaction(bundle, headers={"Prefer": "return=minimal"})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(all("resource" not in e and e["response"]["location"] for e in r.body["entry"]))
        r = self.fhir.create(self.variant(), headers={"Prefer": "return=minimal"})
        self.assertEqual((r.status, r.body), (201, None))
        self.assertIsNotNone(self.fhir.read(r.headers["Location"].split(self.fhir.base_url + "/")[1]))


class Bearer(ServerTest):
    server_options = {"require_bearer": "s3cret-token", "base_path": "/fhir/R4"}

    def test_requests_without_the_token_get_401(self):
        bundle = load_bundle("xml-qci-two-variants")
        for token in (False, "wrong"):
            r = self.fhir.transaction(bundle, token=token)
            self.assertEqual(r.status, 401, r)
            self.assertEqual(r.body["resourceType"], "OperationOutcome")
            self.assertEqual("error=" in r.headers["WWW-Authenticate"], bool(token), r.headers["WWW-Authenticate"])
            self.assertEqual(self.fhir.request("GET", "Observation", token=token).status, 401)
        self.assertEqual(self.fhir.stats()["unauthorized"], 4)
        self.assertEqual(self.counts(), {t: 0 for t in TYPES})
        self.assertEqual(self.fhir.transaction(bundle).status, 200)
        self.assertEqual(self.fhir.count("DiagnosticReport"), 1)

    def test_token_rotation(self):
        self.fhir.set_bearer("next-token")
        try:
            self.assertEqual(self.fhir.request("GET", "Patient", token="s3cret-token").status, 401)
            self.assertEqual(self.fhir.request("GET", "Patient").status, 200)
        finally:
            self.fhir.set_bearer("s3cret-token")

    def test_base_path(self):
        self.assertTrue(self.fhir.base_url.endswith("/fhir/R4"))
        url = "http://127.0.0.1:%d/Patient" % self.fhir.port
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": "Bearer s3cret-token"}))
        self.assertEqual(e.exception.code, 404)


class RestartAndFaults(ServerTest):
    def test_kill_and_restart_on_the_same_port_keeps_the_store(self):
        bundle = load_bundle("genetic-somatic-cnv-tmb-msi")
        self.assertEqual(self.fhir.transaction(bundle).status, 200)
        before = self.counts()
        port = self.fhir.port
        self.fhir.kill()
        self.fhir.start()
        self.assertEqual(self.fhir.port, port)
        self.assertEqual(self.counts(), before)
        self.assertEqual(self.fhir.transaction(bundle).status, 200)
        self.assertEqual(self.counts(), before)
        self.assert_references_resolve()

    def test_injected_faults(self):
        bundle = load_bundle("xml-qci-two-variants")
        self.fhir.inject({"status": 503, "retryAfter": 2}, {"status": 429, "retryAfter": 1})
        r = self.fhir.transaction(bundle)
        self.assertEqual((r.status, r.headers["Retry-After"]), (503, "2"))
        r = self.fhir.transaction(bundle)
        self.assertEqual((r.status, r.headers["Retry-After"]), (429, "1"))
        self.assertEqual(self.counts(), {t: 0 for t in TYPES})

        # Executed, then the connection is dropped: the client sees no answer but the data is in.
        self.fhir.inject({"afterCommit": True, "drop": True})
        with self.assertRaises((ConnectionError, urllib.error.URLError, http.client.HTTPException)):
            self.fhir.transaction(bundle)
        stored = self.counts()
        self.assertEqual(stored["DiagnosticReport"], 1)
        self.assertEqual(self.fhir.transaction(bundle).status, 200)
        self.assertEqual(self.counts(), stored)

        self.fhir.inject({"delayMs": 600})
        began = time.time()
        self.assertEqual(self.fhir.request("GET", "Patient").status, 200)
        self.assertGreaterEqual(time.time() - began, 0.6)

        # A slow server: the client gives up, the server still executes the request later.
        self.fhir.reset()
        self.fhir.inject({"delayMs": 1000})
        with self.assertRaises((TimeoutError, urllib.error.URLError)):
            self.fhir.transaction(bundle, timeout=0.3)
        self.assertEqual(self.fhir.count("DiagnosticReport"), 0)
        time.sleep(1.0)
        self.assertEqual(self.fhir.count("DiagnosticReport"), 1)
        self.assertEqual(self.fhir.stats()["faults"], 1)


if __name__ == "__main__":
    unittest.main()
