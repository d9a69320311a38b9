"""MLLP over TLS and mutual TLS, with the npm client node-hl7-client (Node's TLS stack), and
what happens to clients that do not belong: no certificate, a certificate from another CA,
plain text or garbage instead of a handshake."""
import os
import socket
import ssl
import tempfile
import unittest

from harness import (Ack, Adapterd, Certificates, exchange, frame, listener, message, node_client,
                     write_message)


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tls-")
        cls.pki = Certificates(os.path.join(cls.tmp, "pki"))
        server = {"certificate_file": cls.pki.server, "private_key_file": cls.pki.server_key,
                  "handshake_timeout_seconds": 2}
        mutual = dict(server, client_ca_file=cls.pki.ca)
        cls.d = Adapterd(listeners=[listener("tls", tls=server), listener("mtls", tls=mutual)]).start()
        cls.msg = write_message(cls.tmp, "m.hl7", message("TLS-1"))

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def test_tls_with_server_certificate(self):
        [r] = node_client("node-hl7-client", self.d.ports["tls"], [self.msg], tls={"ca": self.pki.ca})
        self.assertNotIn("error", r, r)
        ack = Ack(r["ack"])
        self.assertEqual(ack.code, "AA")
        self.assertEqual(ack.control_id, "TLS-1")

    def test_mutual_tls_with_client_certificate(self):
        path = write_message(self.tmp, "m2.hl7", message("MTLS-1"))
        tls = {"ca": self.pki.ca, "cert": self.pki.client, "key": self.pki.client_key}
        [r] = node_client("node-hl7-client", self.d.ports["mtls"], [path], tls=tls)
        self.assertNotIn("error", r, r)
        self.assertEqual(Ack(r["ack"]).code, "AA")
        bad = write_message(self.tmp, "m3.hl7", message("MTLS-2", extra_segments=["garbage"]))
        [r] = node_client("node-hl7-client", self.d.ports["mtls"], [bad], tls=tls)
        ack = Ack(r["ack"])
        self.assertEqual(ack.code, "AR")
        self.assertTrue(ack.has("ERR"))

    def test_mutual_tls_refuses_missing_and_foreign_certificates(self):
        before = self.d.counter("tls_handshake_failures", "mtls")
        path = write_message(self.tmp, "m4.hl7", message("MTLS-NO"))
        [r] = node_client("node-hl7-client", self.d.ports["mtls"], [path], tls={"ca": self.pki.ca},
                          timeout_ms=3000)
        self.assertIn("error", r)
        rogue = {"ca": self.pki.ca, "cert": self.pki.rogue, "key": self.pki.rogue_key}
        [r] = node_client("node-hl7-client", self.d.ports["mtls"], [path], tls=rogue, timeout_ms=3000)
        self.assertIn("error", r)
        self.d.wait_counter("tls_handshake_failures", before + 2, "mtls")
        self.assertEqual(self.d.rows("SELECT count(*) FROM messages WHERE control_id = 'MTLS-NO'"), [(0,)])

    def test_python_ssl_client_with_certificate(self):
        # A second, independent TLS stack (Python's ssl) for the mutual case.
        ctx = ssl.create_default_context(cafile=self.pki.ca)
        ctx.load_cert_chain(self.pki.client, self.pki.client_key)
        with socket.create_connection(("127.0.0.1", self.d.ports["mtls"]), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(frame(message("MTLS-PY")))
                data = b""
                while b"\x1c\r" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
        self.assertEqual(Ack(data.strip(b"\x0b\x1c\r").decode()).code, "AA")

    def test_garbage_or_plain_text_instead_of_handshake(self):
        before = self.d.counter("tls_handshake_failures", "tls")
        exchange(self.d.ports["tls"], os.urandom(600), read=1, timeout=3)
        exchange(self.d.ports["tls"], frame(message("PLAIN-1")), read=1, timeout=3)
        self.d.wait_counter("tls_handshake_failures", before + 2, "tls")
        # A client that connects and says nothing is cut off at handshake_timeout_seconds.
        s = socket.create_connection(("127.0.0.1", self.d.ports["tls"]), timeout=10)
        s.settimeout(10)
        self.assertEqual(s.recv(100), b"", "the server closes a silent TLS client")
        s.close()
        self.d.wait_counter("tls_handshake_failures", before + 3, "tls")
        # ...and the listener keeps serving.
        [r] = node_client("node-hl7-client", self.d.ports["tls"], [self.msg], tls={"ca": self.pki.ca})
        self.assertEqual(Ack(r["ack"]).code, "AA")


if __name__ == "__main__":
    unittest.main()
