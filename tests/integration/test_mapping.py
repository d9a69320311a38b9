"""The daemon's mapping step, end to end: golden fixtures sent with Debian's mllp_send to
`adapterd serve` are mapped after their ACK, and the store records each Bundle (equal to the
golden expected.json but for the Provenance, whose receipt time is the real one), the template and
its version. A message no route accepts is kept as mapping_failed with its issue; after the
mappings are fixed and the daemon restarted, `adapterd replay --failed` maps it."""
import json
import re
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import ADAPTERD, FIXTURES, Adapterd, mllp_send

REPO = os.path.dirname(os.path.abspath(FIXTURES))
CASES = os.path.join(FIXTURES, "mappings")


def hl7_cases():
    """The HL7 v2 cases the daemon maps with its own settings: a case with a feed.json of its own
    needs other $feed settings than the others, and one with a source.json an earlier message
    about its report (test-mappings and mappings:golden run those)."""
    out = []
    for name in sorted(os.listdir(CASES)):
        path = os.path.join(CASES, name)
        if (os.path.exists(os.path.join(path, "input.hl7")) and os.path.exists(os.path.join(path, "expected.json"))
                and not os.path.exists(os.path.join(path, "feed.json"))
                and not os.path.exists(os.path.join(path, "source.json"))):
            out.append(name)
    return out


def without_provenance(bundle):
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Provenance"]


class MappingAfterAck(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="adapterd-map-")
        self.mappings = os.path.join(self.dir, "mappings")
        shutil.copytree(os.path.join(REPO, "mappings"), self.mappings)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def daemon(self):
        return Adapterd(workdir=self.dir, mapping={"directory": self.mappings, "default_timezone": "UTC"})

    def unique_control_id(self, name):
        """The case's input with MSH-10 made unique: several cases share a header (and so a
        control ID), which the daemon rightly refuses as a reuse with different content. MSH-10
        reaches only the Provenance, which the comparison leaves out."""
        with open(os.path.join(CASES, name, "input.hl7"), "rb") as f:
            data = f.read()
        # mllp_send --loose finds messages by "MSH" at a line start: a byte-order mark hides it.
        data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        segments = [s for s in re.split(rb"\r\n|\r|\n", data) if s.strip()]
        fields = segments[0].split(b"|")
        fields[9] = fields[9] + b"-" + name.encode()
        segments[0] = b"|".join(fields)
        path = os.path.join(self.dir, name + ".hl7")
        with open(path, "wb") as f:
            f.write(b"\r".join(segments))
        return path

    def wait_mappings(self, d, count, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            rows = d.rows("SELECT count(*) FROM mappings WHERE state <> 'pending'")
            if rows[0][0] >= count:
                return
            time.sleep(0.05)
        self.fail("only %s of %d messages mapped" % (d.rows("SELECT count(*) FROM mappings")[0][0], count))

    def test_every_golden_case_is_mapped_after_its_ack_as_in_its_expected_file(self):
        names = hl7_cases()
        self.assertGreater(len(names), 8)
        with self.daemon() as d:
            for name in names:
                acks = mllp_send(d.port, self.unique_control_id(name))
                self.assertEqual(len(acks), 1, name)
                self.assertRegex(acks[0], r"MSA\|(AA|CA)\|", name)
            self.wait_mappings(d, len(names))
            rows = d.rows("SELECT m.control_id, p.state, p.template, p.template_version, p.bundle, p.issues, "
                          "p.unmapped FROM messages m JOIN mappings p ON p.message_id = m.id ORDER BY m.id")
        self.assertEqual(len(rows), len(names))
        for name, (control_id, state, template, version, bundle, issues, unmapped) in zip(names, rows):
            with self.subTest(case=name):
                self.assertEqual(state, "mapped", issues)
                self.assertEqual((template, version), ("oru-r01", "1.0.0"))
                with open(os.path.join(CASES, name, "expected.json")) as f:
                    expected = json.load(f)
                got = json.loads(bundle)
                self.assertEqual(without_provenance(got), without_provenance(expected))
                # The unmapped report is kept with the message, as test-mappings records it.
                report_path = os.path.join(CASES, name, "expected-report.txt")
                want = []
                if os.path.exists(report_path):
                    with open(report_path) as f:
                        want = sorted(l[len("unmapped "):].rstrip("\n") for l in f if l.startswith("unmapped "))
                self.assertEqual(sorted(json.loads(unmapped)), want)
                provenance = [e["resource"] for e in got["entry"] if e["resource"]["resourceType"] == "Provenance"]
                self.assertEqual(len(provenance), 1)
                # The receipt time is the daemon's, in UTC, not the message's MSH-7.
                self.assertTrue(provenance[0]["recorded"].endswith("+00:00"), provenance[0]["recorded"])

    def test_a_message_without_a_route_is_kept_failed_and_replayed_once_routed(self):
        routes = os.path.join(self.mappings, "routes.json")
        with open(routes) as f:
            original = f.read()
        # A new sender nobody has routed yet.
        with open(routes, "w") as f:
            f.write(original.replace('"match": {"message_type": ["ORU^R01"]}',
                                     '"match": {"message_type": ["ORU^R01"], "sending_application": ["NOBODY"]}'))
        case = os.path.join(CASES, "genetic-somatic-cnv-tmb-msi")
        d = self.daemon()
        with d:
            acks = mllp_send(d.port, os.path.join(case, "input.hl7"))
            # Stored and acknowledged (CA: the message asks for enhanced mode) whatever follows.
            self.assertRegex(acks[0], r"MSA\|(AA|CA)\|")
            self.wait_mappings(d, 1)
            state, issues, bundle = d.rows("SELECT state, issues, bundle FROM mappings")[0]
        self.assertEqual(state, "mapping_failed")
        self.assertEqual(bundle, "")
        issue = json.loads(issues)[0]
        self.assertEqual(issue["severity"], "error")
        self.assertTrue(issue["message"].startswith("no route for message type ORU^R01 from "), issue)
        # No patient data in the log: the issue text stays in the store.
        self.assertNotIn("no route", d.log_text())

        with open(routes, "w") as f:
            f.write(original)
        d2 = self.daemon()
        with d2:
            replay = subprocess.run([ADAPTERD, "replay", "--config", d2.config_path, "--failed"],
                                    capture_output=True, timeout=30)
            self.assertEqual(replay.returncode, 0, replay.stderr)
            self.assertEqual(replay.stdout.decode().strip(), "1 message(s) queued for mapping")
            deadline = time.time() + 20
            while time.time() < deadline and d2.rows("SELECT state FROM mappings")[0][0] != "mapped":
                time.sleep(0.05)
            state, attempts, bundle = d2.rows("SELECT state, attempts, bundle FROM mappings")[0]
        self.assertEqual((state, attempts), ("mapped", 2))
        with open(os.path.join(case, "expected.json")) as f:
            self.assertEqual(without_provenance(json.loads(bundle)), without_provenance(json.load(f)))

    def test_replay_of_an_unknown_message_says_so(self):
        with self.daemon() as d:
            replay = subprocess.run([ADAPTERD, "replay", "--config", d.config_path, "999"],
                                    capture_output=True, timeout=30)
        self.assertEqual(replay.returncode, 1)
        self.assertEqual(replay.stdout.decode().strip(), "0 message(s) queued for mapping")


if __name__ == "__main__":
    unittest.main()
