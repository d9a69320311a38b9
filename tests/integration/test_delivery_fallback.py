"""Delivery mode "resources" (issue 4, part 3): for servers without transaction support, each
entry is POSTed on its own as a conditional create, in dependency order, with its urn:uuid
references rewritten to the ids the server returns; a reference cycle is closed by a PUT.

test_delivery.ResourceByResource shows the golden cases arriving once, resends creating nothing
twice, and a refused entry becoming a dead letter that names it. This file checks what those
counts cannot see, against the same real FHIR server (tests/fhir_server):
  - every resource is stored as the mapping made it, with every reference pointing at the
    resource the Bundle meant (the references cut to break a cycle are back);
  - a failure half-way (a 503, or an answer lost after the server stored the entry) is retried
    automatically, and the retry finds the entries already sent instead of creating them again;
  - the token refresh after a 401 works for each request of a sequence (OAuth2, SMART).
"""
import json
import re
import unittest

import test_delivery as delivery
from fhir_server import references
from test_delivery import STREAM_CASE, DeliveryCase, golden_bundle_cases, write_variant

LOCATION = re.compile(r"(?:^|/)([A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
# What the server adds to a resource's meta; everything else in meta must be as sent.
SERVER_META = {"versionId", "lastUpdated", "author", "project", "compartment", "account", "source"}


def typed_id(location):
    """"Observation/12" from "http://h/fhir/Observation/12/_history/1" or "Observation/12"."""
    m = LOCATION.search(location)
    return "%s/%s" % (m.group(1), m.group(2)) if m else None


def rewritten(value, ids):
    """`value` with every "reference" member found in `ids` (fullUrl -> "Type/id") replaced."""
    if isinstance(value, dict):
        return {k: ids.get(v, v) if k == "reference" and isinstance(v, str) else rewritten(v, ids)
                for k, v in value.items()}
    if isinstance(value, list):
        return [rewritten(v, ids) for v in value]
    return value


class ResourcesMode:
    """Mixed in before a DeliveryCase: its destinations take mode "resources"."""

    def destination(self, **overrides):
        return super().destination(mode="resources", **overrides)


class StoredAsSent(ResourcesMode, DeliveryCase):
    FEED = delivery.GoldenCasesArriveOnce.FEED  # every case sent, as there

    def latest_delivery(self, d):
        message_id, response = d.rows("SELECT message_id, response FROM deliveries WHERE state = 'delivered' "
                                      "ORDER BY message_id DESC LIMIT 1")[0]
        bundle = json.loads(d.rows("SELECT bundle FROM mappings WHERE message_id = ?", (message_id,))[0][0])
        return bundle, json.loads(response)

    def check_stored_as_sent(self, name, bundle, summary):
        entries = bundle["entry"]
        # The store's summary: one answer per entry, in Bundle order, as a transaction's would be.
        self.assertEqual(len(summary), len(entries), name)
        ids = {}
        for entry, answer in zip(entries, summary):
            self.assertIn(answer.get("status"), ("201 Created", "200 OK"), name)
            located = typed_id(answer.get("location", ""))
            self.assertIsNotNone(located, "%s: %r" % (name, answer))
            self.assertEqual(located.split("/")[0], entry["resource"]["resourceType"], name)
            ids[entry["fullUrl"]] = located
        compared = set()
        for entry, answer in zip(entries, summary):
            located = ids[entry["fullUrl"]]
            stored = self.fhir.read(located)
            self.assertIsNotNone(stored, "%s: %s is not on the server" % (name, located))
            # No urn:uuid left, and every reference resolves on the server.
            for ref in references(stored):
                self.assertFalse(ref.startswith("urn:uuid:"), "%s: %s keeps %s" % (name, located, ref))
                if LOCATION.fullmatch(ref) or re.fullmatch(r"[A-Za-z]+/[^/]+", ref):
                    self.assertIsNotNone(self.fhir.read(ref), "%s: %s -> %s dangles" % (name, located, ref))
            # Two entries of one Bundle may be one resource (the same ifNoneExist): the one that
            # created it is compared, the other was found.
            if answer["status"] != "201 Created" or located in compared:
                continue
            compared.add(located)
            sent = rewritten(entry["resource"], ids)
            plain = lambda r: {k: v for k, v in r.items() if k not in ("id", "meta")}  # noqa: E731
            self.assertEqual(plain(stored), plain(sent), "%s: %s" % (name, located))
            meta = {k: v for k, v in stored.get("meta", {}).items() if k not in SERVER_META}
            self.assertEqual(meta, sent.get("meta", {}), "%s: %s meta" % (name, located))

    def test_every_golden_case_is_stored_as_sent_with_its_references_rewritten(self):
        cases = golden_bundle_cases()
        self.assertGreater(len(cases), 8)
        cycles_closed = checked = 0
        with self.daemon() as d:
            for n, (name, expected) in enumerate(cases, start=1):
                # An empty server for each case: every entry is created by this delivery, so each
                # stored resource is this Bundle's.
                self.fhir.reset()
                self.send(d, write_variant(self.dir, name, name, name))
                self.wait_deliveries(d, "delivered", n)
                stats = self.fhir.stats()  # before this test's own reads, which count too
                bundle, summary = self.latest_delivery(d)
                self.check_stored_as_sent(name, bundle, summary)
                if any(delivery.VARIANT_PROFILE in e["resource"].get("meta", {}).get("profile", [])
                       for e in expected["entry"]):
                    # (It wants Variants to count: not every case has some.)
                    delivery.GoldenCasesArriveOnce.check_server_holds(self, [(name, expected)])
                    checked += 1
                self.assertEqual(stats["transactions"], 0, name)
                # One request per entry, plus one PUT per entry whose cycle was cut.
                updates = stats["requests"] - len(bundle["entry"])
                self.assertGreaterEqual(updates, 0, name)
                self.assertLess(updates, len(bundle["entry"]), name)
                cycles_closed += updates
        # The golden cases have ServiceRequest <-> Specimen cycles: the check above saw them closed.
        self.assertGreater(cycles_closed, 0)
        self.assertGreater(checked, 4)


class PartialFailures(ResourcesMode, DeliveryCase):
    """A failure after some entries are on the server. The retry sends the whole sequence again:
    the entries already there are found by their conditional create, not created twice."""

    FAILING_REQUEST = 4  # the first three entries (in dependency order) arrive before it

    def destination(self, **overrides):
        return super().destination(retry={"max_attempts": 5, "initial_delay_ms": 200, "max_delay_ms": 500},
                                   **overrides)

    def deliver_through(self, fault):
        bundle = dict(golden_bundle_cases())[STREAM_CASE]
        self.fhir.inject(*([{}] * (self.FAILING_REQUEST - 1) + [fault]))
        with self.daemon() as d:
            self.send(d, write_variant(self.dir, "partial", STREAM_CASE, "F1"))
            self.wait_deliveries(d, "delivered", 1)
            attempts = d.rows("SELECT number, status, outcome, error FROM delivery_attempts ORDER BY number")
            summary = json.loads(d.rows("SELECT response FROM deliveries")[0][0])
        self.assertEqual([a[2] for a in attempts], ["retry", "delivered"], attempts)
        # The second attempt found what the first had stored: as many entries as the first got
        # through ("200 OK", found by ifNoneExist), the rest created.
        statuses = [a["status"] for a in summary]
        self.assertEqual(len(statuses), len(bundle["entry"]))
        return attempts, statuses, bundle

    def assert_each_once(self, bundle):
        for e in bundle["entry"]:
            if e["resource"]["resourceType"] != "Provenance":
                self.assert_once(e["resource"]["resourceType"], e["request"]["ifNoneExist"])
        self.assertEqual(self.fhir.count("Provenance"), 1)
        totals = sum(self.fhir.count(t) for t in {e["resource"]["resourceType"] for e in bundle["entry"]})
        # (A ServiceRequest and its DiagnosticReport share an identifier: counted by type.)
        self.assertEqual(totals, len({(e["resource"]["resourceType"], e["request"]["ifNoneExist"])
                                      for e in bundle["entry"]}))

    def test_a_503_half_way_is_retried_and_the_retry_creates_nothing_twice(self):
        attempts, statuses, bundle = self.deliver_through({"status": 503})
        self.assertEqual(attempts[0][1], 503)
        self.assertRegex(attempts[0][3], r"^entry \d+ \([A-Za-z]+\): HTTP 503")
        self.assertEqual(statuses.count("200 OK"), self.FAILING_REQUEST - 1, statuses)
        self.assertEqual(statuses.count("201 Created"), len(statuses) - (self.FAILING_REQUEST - 1), statuses)
        self.assert_each_once(bundle)

    def test_an_answer_lost_after_the_entry_was_stored_is_retried_without_a_duplicate(self):
        # The server stores the fourth entry, then drops the connection without answering.
        attempts, statuses, bundle = self.deliver_through({"afterCommit": True, "drop": True})
        self.assertRegex(attempts[0][3], r"^entry \d+ \([A-Za-z]+\): ")
        self.assertEqual(statuses.count("200 OK"), self.FAILING_REQUEST, statuses)
        self.assert_each_once(bundle)


class TokenRefreshPerRequest(ResourcesMode, delivery.Authentication):
    """test_delivery.Authentication's scenarios in mode "resources": the token is fetched once
    and cached across every request of every sequence; after every token is revoked, the first
    request's 401 fetches a new one once and the sequence goes on within the same attempt."""

    def deliver_revoke_deliver(self, auth):
        super().deliver_revoke_deliver(auth)
        # It was sent resource by resource: no transaction reached the server.
        self.assertEqual(self.fhir.stats()["transactions"], 0)


if __name__ == "__main__":
    unittest.main()
