"""Drop folders (issue 5): files left in a watched folder are stored, then moved to done/ or to
error/ with a sidecar saying why; never read into the pipeline twice, never lost when the daemon
is killed in the middle of a batch. The kill test delivers into the real FHIR server of the
delivery tests and checks that every file's report arrived exactly once."""
import json
import os
import shutil
import tempfile
import time
import unittest

from fhir_server import FhirServer
from harness import Adapterd, FIXTURES
from test_delivery import STREAM_CASE, write_variant

REPO = os.path.dirname(os.path.abspath(FIXTURES))
FOUNDATION = os.path.join(FIXTURES, "mappings", "xml-foundation-one", "input.xml")
HL7_CASE = os.path.join(FIXTURES, "mappings", "genetic-vcf2hl7v2-example1", "input.hl7")


def read(path):
    with open(path, "rb") as f:
        return f.read()


class FolderCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="adapterd-folder-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.mappings = os.path.join(self.dir, "mappings")
        shutil.copytree(os.path.join(REPO, "mappings"), self.mappings)
        self.drop = os.path.join(self.dir, "drop")
        os.makedirs(self.drop)

    def daemon(self, destinations=(), **folder):
        f = {"name": "labdrop", "path": self.drop, "poll_interval_ms": 100, "settle_time_ms": 200,
             "max_file_bytes": 1024 * 1024, "settings": {"sender": "fmi"}}
        f.update(folder)
        os.makedirs(os.path.join(self.dir, "adapterd"), exist_ok=True)
        d = Adapterd(workdir=os.path.join(self.dir, "adapterd"),
                     listeners=[{"name": "mllp", "bind": "127.0.0.1", "port": 0}],
                     mapping={"directory": self.mappings, "default_timezone": "UTC"},
                     destinations=list(destinations))
        d.config["listeners"]["folders"] = [f]
        with open(d.config_path, "w") as out:
            json.dump(d.config, out, indent=2)
        return d

    def listing(self, sub=""):
        path = os.path.join(self.drop, sub)
        return sorted(n for n in os.listdir(path) if os.path.isfile(os.path.join(path, n)))

    def wait_for(self, predicate, timeout=30, what=""):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        self.fail("timed out waiting for %s; folder: %r done: %r error: %r processing: %r" % (
            what, self.listing(), self.listing("done"), self.listing("error"), self.listing("processing")))


class Files(FolderCase):
    def test_each_file_is_stored_then_moved_with_its_reason(self):
        with open(FOUNDATION, "rb") as f:
            report = f.read()
        files = {
            "fmi-1.xml": report,
            "fmi-1-again.xml": report,                       # the same document: stored once
            "variants.hl7": read(HL7_CASE),
            "broken.xml": b"<rr:ResultsReport xmlns:rr='x'><a></rr:ResultsReport>",
            "xxe.xml": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
            "big.xml": b"<a>" + b"x" * (2 * 1024 * 1024) + b"</a>",
        }
        for name, data in files.items():
            with open(os.path.join(self.drop, name), "wb") as f:
                f.write(data)
        # Still being written, or hidden: left alone.
        for name in ("upload.xml.part", "upload.tmp", ".hidden.xml"):
            with open(os.path.join(self.drop, name), "wb") as f:
                f.write(report)
        done = ["fmi-1-again.xml", "fmi-1.xml", "variants.hl7"]
        # A sidecar is written as NAME.error.json.tmp and renamed, then the file follows it: wait for
        # the final listing, not for a count that a sidecar still being written would satisfy.
        error = ["big.xml", "big.xml.error.json", "broken.xml", "broken.xml.error.json", "xxe.xml",
                 "xxe.xml.error.json"]
        with self.daemon() as d:
            self.wait_for(lambda: self.listing("done") == done and self.listing("error") == error,
                          what="every file moved, each refused one with its sidecar")
            self.assertEqual(self.listing(), [".hidden.xml", "upload.tmp", "upload.xml.part"])
            self.assertEqual(self.listing("processing"), [])
            # A file moves unchanged.
            with open(os.path.join(self.drop, "done", "fmi-1.xml"), "rb") as f:
                self.assertEqual(f.read(), report)
            sidecars = {}
            for name in ("broken.xml", "xxe.xml", "big.xml"):
                with open(os.path.join(self.drop, "error", name + ".error.json")) as f:
                    sidecars[name] = json.load(f)
            self.assertEqual(sidecars["broken.xml"]["status"], 400)
            self.assertIn("not well-formed: Opening and ending tag mismatch",
                          sidecars["broken.xml"]["outcome"]["issue"][0]["diagnostics"])
            self.assertRegex(sidecars["broken.xml"]["status_url"], r"^/messages/\d+$")
            self.assertIn("DOCTYPE", sidecars["xxe.xml"]["outcome"]["issue"][0]["diagnostics"])
            self.assertEqual(sidecars["big.xml"]["status"], 413)
            # The store: the same document once (its second file is a resubmission), the
            # refused ones kept as rejected, all under the folder's name.
            rows = d.rows("SELECT state, message_type, duplicate_count FROM messages WHERE listener = 'labdrop' "
                          "ORDER BY id")
            received = [r for r in rows if r[0] == "received"]
            self.assertEqual(sorted(r[1] for r in received), ["ORU^R01^ORU_R01", "XML ResultsReport"], rows)
            self.assertEqual([r[2] for r in received if r[1] == "XML ResultsReport"], [1])
            self.assertEqual(len([r for r in rows if r[0] == "rejected"]), 3)
            # Mapped with the folder's own $feed settings (sender "fmi").
            self.wait_for(lambda: d.rows("SELECT count(*) FROM mappings WHERE state = 'mapped'")[0][0] == 2,
                          what="both mapped")
            bundle = d.rows("SELECT m.bundle FROM mappings m JOIN messages g ON g.id = m.message_id "
                            "WHERE g.message_type = 'XML ResultsReport'")[0][0]
            self.assertIn("urn:adapterd:identifier/fmi", bundle)
            # The same file name again later: kept beside the first, not overwritten.
            with open(os.path.join(self.drop, "fmi-1.xml"), "wb") as f:
                f.write(report)
            self.wait_for(lambda: "fmi-1.xml.1" in self.listing("done"), what="the second fmi-1.xml")
        log = d.log_text()
        for name in files:
            self.assertNotIn(name, log)  # file names may name patients: not logged


class KilledMidway(FolderCase):
    def test_every_file_is_delivered_once_and_moved_after_a_sigkill(self):
        fhir = FhirServer(workdir=os.path.join(self.dir, "fhir"), validate=False)
        os.makedirs(os.path.join(self.dir, "fhir"))
        self.addCleanup(fhir.stop)
        fhir.start()
        total = 60
        staging = os.path.join(self.dir, "staging")
        os.makedirs(staging)
        for n in range(total):
            path = write_variant(staging, "drop-%03d" % n, STREAM_CASE, "D%03d" % n,
                                 replace=(("GL-4410", "GL-D%03d" % n), ("SPEC-4410", "SPEC-D%03d" % n)))
            os.rename(path, os.path.join(self.drop, os.path.basename(path)))
        destination = {"name": "ehr", "base_url": fhir.base_url,
                       "retry": {"max_attempts": 100, "initial_delay_ms": 100, "max_delay_ms": 1000}}
        d = self.daemon(destinations=[destination], settle_time_ms=0, poll_interval_ms=50)
        d.start()
        # Kill it once some files are through and others are not.
        self.wait_for(lambda: len(self.listing("done")) >= 5, what="5 files done")
        d.kill()
        done_at_kill = len(self.listing("done"))
        claimed_at_kill = len(self.listing("processing"))
        print("\nkilled with %d of %d files done, %d claimed (in processing/)" % (done_at_kill, total, claimed_at_kill))
        self.assertLess(done_at_kill, total, "the kill came after the whole batch: nothing was tested")
        d.start()
        try:
            self.wait_for(lambda: len(self.listing("done")) == total, timeout=60, what="every file done")
            deadline = time.time() + 90
            while time.time() < deadline:
                if d.rows("SELECT count(*) FROM deliveries WHERE state = 'delivered'")[0][0] >= total:
                    break
                time.sleep(0.2)
            self.assertEqual(self.listing(), [])
            self.assertEqual(self.listing("processing"), [])
            self.assertEqual(self.listing("error"), [])
            self.assertEqual(len(self.listing("done")), total)  # no file moved twice (no ".1" copies)
            self.assertEqual(d.rows("SELECT count(*) FROM messages WHERE listener = 'labdrop'")[0][0], total)
            self.assertEqual(d.rows("SELECT count(*) FROM deliveries WHERE state = 'delivered'")[0][0], total)
        finally:
            d.stop()
        self.assertEqual(fhir.search("DiagnosticReport", _summary="count").get("total"), total)
        for n in range(total):
            found = fhir.search("DiagnosticReport",
                                params=[("identifier", "urn:adapterd:identifier/genelab2|GL-D%03d" % n)])
            self.assertEqual(found.get("total"), 1, n)


if __name__ == "__main__":
    unittest.main()
