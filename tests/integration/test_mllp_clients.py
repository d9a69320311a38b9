"""Good, malformed, duplicate and enhanced-mode messages sent by real, independent MLLP clients:
Debian's mllp_send (python3-hl7) and the npm library @medplum/hl7. ACKs are read back with
python3-hl7's parser, not ours."""
import tempfile
import unittest

from harness import (Ack, Adapterd, listener, message, mllp_send, node_client, sample,
                     write_message)


class MllpClientsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mllp-clients-")
        cls.d = Adapterd(listeners=[
            listener("lab"),
            listener("orders-only", accept_message_types=["ORU^R01"]),
        ]).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def send(self, name, data, client="mllp_send", port=None):
        path = write_message(self.tmp, name, data)
        port = port or self.d.ports["lab"]
        if client == "mllp_send":
            return [Ack(a) for a in mllp_send(port, path)]
        results = node_client(client, port, [path])
        self.assertNotIn("error", results[0], results[0])
        return [Ack(results[0]["ack"])]

    def stored(self, control_id):
        return self.d.rows("SELECT state, ack_code, error, duplicate_count FROM messages "
                           "WHERE control_id = ? ORDER BY id", (control_id,))

    # -- good messages -------------------------------------------------------------------------
    def test_good_message_mllp_send_gets_AA_after_it_is_stored(self):
        [ack] = self.send("good.hl7", message("GOOD-1"))
        self.assertEqual(ack.code, "AA")
        self.assertEqual(ack.control_id, "GOOD-1")
        self.assertFalse(ack.has("ERR"))
        # Sender and receiver swapped, MSH-9 ACK^R01^ACK, version kept.
        self.assertEqual(ack.field("MSH", 3), "EHR")
        self.assertEqual(ack.field("MSH", 5), "LAB")
        self.assertEqual(ack.field("MSH", 6), "LABFAC")
        self.assertEqual(ack.field("MSH", 9), "ACK^R01^ACK")
        self.assertEqual(ack.field("MSH", 12), "2.5.1")
        self.assertNotEqual(ack.field("MSH", 10), "GOOD-1")
        self.assertEqual(self.stored("GOOD-1"), [("received", "AA", "", 0)])

    def test_every_parseable_sample_is_accepted_by_medplum_client(self):
        # (python-hl7's v2.4 sample reuses RMGEAD's sender and control ID with other content: it
        # would rightly be refused as a conflicting duplicate, so it is sent in another test.)
        names = ["msfc_ORU-R01-RMGEAD.hl7", "msfc_LAB-ORU-1.hl7", "msfc_ORU-R01-01.hl7",
                 "bench_oru_r01_genomics.hl7", "lfh_ORU-multiline-short.hl7"]
        results = node_client("medplum", self.d.ports["lab"], [sample(n) for n in names])
        for name, r in zip(names, results):
            self.assertNotIn("error", r, name)
            ack = Ack(r["ack"])
            # bench_oru_r01_genomics asks for enhanced mode (MSH-15 AL): commit accept CA.
            self.assertIn(ack.code, ("AA", "CA"), name)
            self.assertFalse(ack.has("ERR"), name)

    def test_enhanced_mode_sample_gets_commit_accept(self):
        results = node_client("medplum", self.d.ports["lab"], [sample("bench_oru_r01_genomics.hl7")])
        ack = Ack(results[0]["ack"])
        self.assertEqual(ack.code, "CA")
        self.assertEqual(ack.control_id, "MSG-000123")

    # -- malformed -----------------------------------------------------------------------------
    def test_malformed_segment_gets_AR_with_located_ERR_and_is_kept(self):
        data = message("BAD-SEG-1", extra_segments=["this line is not a segment"])
        for client in ("mllp_send", "medplum"):
            [ack] = self.send("bad-seg-%s.hl7" % client, data, client)
            self.assertEqual(ack.code, "AR", client)
            self.assertEqual(ack.control_id, "BAD-SEG-1", client)
            self.assertTrue(ack.has("ERR"), client)
            self.assertEqual(ack.field("ERR", 3, 1), "100")
            self.assertEqual(ack.field("ERR", 3, 3), "HL70357")
            self.assertEqual(ack.field("ERR", 4), "E")
            self.assertIn("segment 5", ack.field("ERR", 8))
        rows = self.stored("BAD-SEG-1")
        self.assertEqual(len(rows), 2, "every rejected copy is kept")
        self.assertTrue(all(r[0] == "rejected" and r[1] == "AR" for r in rows))
        self.assertIn("bad_segment", rows[0][2])

    def test_broken_delimiters_sample_gets_AR_naming_MSH_2(self):
        results = node_client("medplum", self.d.ports["lab"], [sample("lfh_sample_win.hl7")])
        ack = Ack(results[0]["ack"])
        self.assertEqual(ack.code, "CR")  # the sample asks for enhanced mode (MSH-15 AL)
        self.assertEqual(ack.control_id, "102")
        self.assertEqual(ack.field("ERR", 2), "MSH^1^2")
        self.assertEqual(ack.field("ERR", 3, 1), "102")

    def test_missing_control_id_gets_AR_naming_MSH_10(self):
        [ack] = self.send("no-id.hl7", message(""))
        self.assertEqual(ack.code, "AR")
        self.assertEqual(ack.field("ERR", 2), "MSH^1^10")
        self.assertEqual(ack.field("ERR", 3, 1), "101")

    def test_unknown_charset_gets_AR_naming_MSH_18(self):
        msh, rest = message("CHARSET-1").split(b"\r", 1)
        data = msh + b"||KLINGON\r" + rest  # MSH ends at MSH-16: add MSH-17 (empty) and MSH-18
        [ack] = self.send("charset.hl7", data)
        self.assertEqual(ack.code, "AR")
        self.assertEqual(ack.field("ERR", 2), "MSH^1^18")
        self.assertEqual(ack.field("ERR", 3, 1), "103")

    def test_type_not_accepted_gets_AE_and_is_kept(self):
        data = message("ADT-1", msg_type="ADT^A01^ADT_A01")
        [ack] = self.send("adt.hl7", data, port=self.d.ports["orders-only"])
        self.assertEqual(ack.code, "AE")
        self.assertEqual(ack.field("ERR", 3, 1), "200")
        self.assertEqual(ack.field("ERR", 2), "MSH^1^9")
        self.assertEqual(self.stored("ADT-1")[0][:2], ("rejected", "AE"))

    # -- duplicates ----------------------------------------------------------------------------
    def test_duplicate_gets_same_positive_ack_and_is_stored_once(self):
        data = message("DUP-1")
        [first] = self.send("dup-a.hl7", data)
        [second] = self.send("dup-b.hl7", data, client="medplum")
        # A resend with a new MSH-7 is still the same message.
        [third] = self.send("dup-c.hl7", data.replace(b"20260101120000+0000", b"20260101120500+0000"))
        for ack in (first, second, third):
            self.assertEqual(ack.code, "AA")
            self.assertEqual(ack.control_id, "DUP-1")
        self.assertEqual(self.stored("DUP-1"), [("received", "AA", "", 2)])

    def test_reused_control_id_with_other_content_gets_AE_205(self):
        self.assertEqual(self.send("c1.hl7", message("CONFLICT-1"))[0].code, "AA")
        [ack] = self.send("c2.hl7", message("CONFLICT-1", obx_value="negative"))
        self.assertEqual(ack.code, "AE")
        self.assertEqual(ack.field("ERR", 3, 1), "205")
        self.assertEqual(ack.field("ERR", 2), "MSH^1^10")
        rows = self.stored("CONFLICT-1")
        self.assertEqual([r[0] for r in rows], ["received", "rejected"])

    # -- enhanced mode -------------------------------------------------------------------------
    def test_enhanced_mode_always_CA_and_CR(self):
        [ack] = self.send("al.hl7", message("ENH-AL", msh15="AL", msh16="NE"), client="medplum")
        self.assertEqual(ack.code, "CA")
        bad = message("ENH-AL-BAD", msh15="AL", extra_segments=["bad segment"])
        [ack] = self.send("al-bad.hl7", bad, client="medplum")
        self.assertEqual(ack.code, "CR")
        self.assertTrue(ack.has("ERR"))

    def test_enhanced_mode_error_only_answers_errors(self):
        d = self.d
        sent_before = d.counter("acks_suppressed", "lab")
        # ER: a good message gets no commit ACK at all; the client times out waiting.
        path = write_message(self.tmp, "er-good.hl7", message("ENH-ER", msh15="ER"))
        [r] = node_client("medplum", d.ports["lab"], [path], timeout_ms=1500)
        self.assertIn("error", r)
        self.assertEqual(self.stored("ENH-ER")[0][0], "received", "stored although not acknowledged")
        self.assertEqual(d.counter("acks_suppressed", "lab"), sent_before + 1)
        # ...but an error is answered.
        [ack] = self.send("er-bad.hl7", message("ENH-ER-BAD", msh15="ER", extra_segments=["x"]), "medplum")
        self.assertEqual(ack.code, "CR")

    def test_enhanced_mode_never_and_success_only(self):
        path = write_message(self.tmp, "ne.hl7", message("ENH-NE", msh15="NE"))
        [r] = node_client("medplum", self.d.ports["lab"], [path], timeout_ms=1500)
        self.assertIn("error", r)
        self.assertEqual(self.stored("ENH-NE")[0][0], "received")
        [ack] = self.send("su.hl7", message("ENH-SU", msh15="SU"), "medplum")
        self.assertEqual(ack.code, "CA")
        path = write_message(self.tmp, "su-bad.hl7", message("ENH-SU-BAD", msh15="SU", extra_segments=["x"]))
        [r] = node_client("medplum", self.d.ports["lab"], [path], timeout_ms=1500)
        self.assertIn("error", r)  # SU: errors are not answered
        self.assertEqual(self.stored("ENH-SU-BAD")[0][0], "rejected")

    def test_v24_rejection_also_carries_ERR_1(self):
        data = message("OLD-1", version="2.4", extra_segments=["nonsense"])
        [ack] = self.send("old.hl7", data)
        self.assertEqual(ack.code, "AR")
        self.assertEqual(ack.field("MSH", 12), "2.4")
        self.assertTrue(ack.field("ERR", 1).startswith("^^^100"), ack.field("ERR", 1))

    def test_counters_match_what_was_sent(self):
        m = self.d.metrics()
        accepted = m[("adapterd_mllp_messages_accepted_total", "lab")]
        rejected = m[("adapterd_mllp_messages_rejected_total", "lab")]
        self.send("count-good.hl7", message("COUNT-1"))
        self.send("count-bad.hl7", message("COUNT-2", extra_segments=["bad"]))
        m = self.d.metrics()
        self.assertEqual(m[("adapterd_mllp_messages_accepted_total", "lab")], accepted + 1)
        self.assertEqual(m[("adapterd_mllp_messages_rejected_total", "lab")], rejected + 1)


if __name__ == "__main__":
    unittest.main()
