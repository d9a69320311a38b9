"""Durability under SIGKILL: senders stream messages continuously (python3-hl7's MLLPClient, a
real client library) while adapterd is killed with SIGKILL several times and restarted.
Afterwards every control ID that received a positive ACK is in the store exactly once.

Senders behave like real lab systems: a message without an ACK (the daemon died) is sent
again after reconnecting, so the duplicate path across crashes is exercised too."""
import random
import socket
import threading
import time
import unittest

import hl7.client

from harness import Adapterd, listener, message

SENDERS = 4
KILLS = 5


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Sender(threading.Thread):
    def __init__(self, index, port, stop):
        super().__init__(daemon=True)
        self.index, self.port, self.stop = index, port, stop
        self.acked = set()  # control IDs answered AA
        self.sent = 0

    def run(self):
        n = 0
        client = None
        pending = None
        while not self.stop.is_set():
            if pending is None:
                n += 1
                pending = "CRASH-%d-%d" % (self.index, n)
            try:
                if client is None:
                    client = hl7.client.MLLPClient("127.0.0.1", self.port)
                    client.socket.settimeout(5)
                reply = client.send_message(message(pending))
                self.sent += 1
                text = reply.decode("utf-8", "replace")
                # Count only a complete ACK frame that says AA for this very message.
                if text.endswith("\x1c\r") and ("\rMSA|AA|%s\r" % pending) in text:
                    self.acked.add(pending)
                    pending = None
                elif not reply:
                    raise OSError("closed")
            except (OSError, hl7.client.MLLPException):
                if client is not None:
                    client.close()
                client = None
                time.sleep(0.05)  # daemon down: retry the same message after reconnecting
        if client is not None:
            client.close()


class CrashTest(unittest.TestCase):
    def test_every_acknowledged_message_survives_sigkill_exactly_once(self):
        port = free_port()
        d = Adapterd(listeners=[listener("mllp", port=port)]).start()
        stop = threading.Event()
        senders = [Sender(i, port, stop) for i in range(SENDERS)]
        for s in senders:
            s.start()
        rnd = random.Random(2026)
        try:
            for _ in range(KILLS):
                time.sleep(rnd.uniform(0.6, 1.5))
                d.kill()
                time.sleep(rnd.uniform(0.05, 0.3))
                d.start()
            time.sleep(1.0)
        finally:
            stop.set()
            for s in senders:
                s.join(timeout=10)
            d.stop()

        acked = set().union(*(s.acked for s in senders))
        self.assertGreater(len(acked), 200, "the senders should have got many messages through")
        rows = d.rows("SELECT control_id, count(*) FROM messages WHERE state = 'received' "
                      "AND control_id LIKE 'CRASH-%' GROUP BY control_id")
        counts = dict(rows)
        missing = sorted(acked - counts.keys())
        self.assertEqual(missing, [], "acknowledged but not stored")
        doubles = sorted(c for c, k in counts.items() if k != 1)
        self.assertEqual(doubles, [], "stored more than once")
        self.assertEqual(d.rows("PRAGMA integrity_check"), [("ok",)])
        print("\ncrash test: %d acknowledged, %d stored, %d kills" % (len(acked), len(counts), KILLS))


if __name__ == "__main__":
    unittest.main()
