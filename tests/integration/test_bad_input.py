"""Hostile and broken input keeps the daemon up and is answered correctly; a counter shows
each case: random bytes, bytes outside frames, truncated frames, an oversize frame, a sender
idling past the timeout, too many connections. Raw sockets here: these are fault injections."""
import os
import random
import socket
import time
import unittest

from harness import Ack, Adapterd, exchange, frame, listener, message, read_frames


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Adapterd(listeners=[
            listener("mllp", max_frame_bytes=4096, idle_timeout_seconds=1, max_connections=4),
        ]).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def assert_still_serving(self, control_id):
        self.d.wait_idle()  # max_connections is 4 here: let the earlier sessions end first
        [ack] = exchange(self.d.port, frame(message(control_id)))
        self.assertEqual(Ack(ack).code, "AA")

    def test_bytes_outside_frames_are_discarded_and_counted(self):
        before = self.d.counter("bytes_outside_frames")
        noise = b"hello there" + b"\x00\xff" * 10
        [ack] = exchange(self.d.port, noise + frame(message("OUTSIDE-1")) + b"trailing")
        self.assertEqual(Ack(ack).code, "AA")
        self.d.wait_counter("bytes_outside_frames", before + len(noise))

    def test_random_bytes_inside_a_frame_get_AR_and_are_kept(self):
        rnd = random.Random(7)
        payload = bytes(rnd.randrange(256) for _ in range(500)).replace(b"\x0b", b"").replace(b"\x1c", b"")
        [ack] = exchange(self.d.port, frame(payload))
        ack = Ack(ack)
        self.assertEqual(ack.code, "AR")
        self.assertEqual(ack.field("ERR", 3, 1), "100")
        rows = self.d.rows("SELECT state FROM messages WHERE raw = ?", (payload,))
        self.assertEqual(rows, [("rejected",)])

    def test_random_bytes_in_many_shapes_never_bring_it_down(self):
        rnd = random.Random(11)
        for i in range(30):
            blob = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 3000)))
            try:
                exchange(self.d.port, blob, read=False)
            except OSError:
                pass
        self.assert_still_serving("RANDOM-AFTER")

    def test_frames_split_across_writes_and_several_in_one_write(self):
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
        data = frame(message("SPLIT-1")) + frame(message("SPLIT-2")) + frame(message("SPLIT-3"))
        for i in range(0, len(data), 7):  # dribble it in 7-byte pieces
            s.sendall(data[i:i + 7])
            time.sleep(0.001)
        acks = [Ack(a) for a in read_frames(s, 3)]
        s.close()
        self.assertEqual([a.control_id for a in acks], ["SPLIT-1", "SPLIT-2", "SPLIT-3"])
        self.assertTrue(all(a.code == "AA" for a in acks))

    def test_truncated_frame_is_counted_and_kept(self):
        before = self.d.counter("frames_truncated")
        partial = message("TRUNC-1")[:40]
        exchange(self.d.port, b"\x0b" + partial, read=False)
        self.d.wait_counter("frames_truncated", before + 1)
        # A start block inside a frame also cuts the first frame off.
        [ack] = exchange(self.d.port, b"\x0b" + message("TRUNC-2")[:30] + frame(message("TRUNC-3")))
        self.assertEqual(Ack(ack).control_id, "TRUNC-3")
        self.d.wait_counter("frames_truncated", before + 2)
        time.sleep(0.2)
        kept = self.d.rows("SELECT state, error FROM messages WHERE raw = ?", (partial,))
        self.assertEqual(len(kept), 1)
        self.assertEqual(kept[0][0], "rejected")
        self.assertIn("truncated", kept[0][1])

    def test_a_stream_of_start_blocks_is_noise_not_thousands_of_records(self):
        before_rows = self.d.rows("SELECT count(*) FROM messages")[0][0]
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
        try:
            s.sendall(b"\x0bx" * 5000)  # every VT cuts the previous frame off
        except OSError:
            pass
        s.settimeout(5)
        try:
            self.assertEqual(s.recv(100), b"", "the server hangs up on a noisy peer")
        except ConnectionResetError:
            pass
        s.close()
        time.sleep(0.3)
        kept = self.d.rows("SELECT count(*) FROM messages")[0][0] - before_rows
        self.assertLessEqual(kept, 16)
        self.assert_still_serving("AFTER-VT-FLOOD")

    def test_oversize_frame_is_answered_with_an_error_and_the_connection_closed(self):
        before = self.d.counter("frames_oversize")
        big = message("BIG-1", obx_value="x" * 10000)
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
        try:
            s.sendall(frame(big) + frame(message("AFTER-BIG")))
        except OSError:
            pass  # the server may close while we are still writing
        frames = read_frames(s, 2)
        rest = b""
        try:
            rest = s.recv(100)
        except OSError:
            pass
        s.close()
        self.assertEqual(len(frames), 1, frames)
        ack = Ack(frames[0])
        self.assertEqual(ack.code, "AR")
        self.assertEqual(ack.control_id, "BIG-1")  # read from the frame's start
        self.assertIn("larger", ack.field("ERR", 8))
        self.assertEqual(rest, b"", "connection closed after the error")
        self.d.wait_counter("frames_oversize", before + 1)
        self.assert_still_serving("AFTER-OVERSIZE")

    def test_idle_sender_is_disconnected(self):
        before = self.d.counter("idle_timeouts")
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
        s.sendall(b"\x0b" + message("IDLE-1")[:20])  # starts a frame, then goes quiet
        t0 = time.time()
        self.assertEqual(s.recv(100), b"")
        self.assertLess(time.time() - t0, 4.5)
        s.close()
        self.d.wait_counter("idle_timeouts", before + 1)

    def test_connections_over_the_limit_are_refused(self):
        before = self.d.counter("connections_refused")
        held = [socket.create_connection(("127.0.0.1", self.d.port), timeout=5) for _ in range(4)]
        try:
            self.d.wait_counter("connections_active", 4)
            extra = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
            extra.settimeout(5)
            self.assertEqual(extra.recv(10), b"")
            extra.close()
            self.d.wait_counter("connections_refused", before + 1)
        finally:
            for s in held:
                s.close()
        time.sleep(0.3)
        self.assert_still_serving("AFTER-LIMIT")


if __name__ == "__main__":
    unittest.main()
