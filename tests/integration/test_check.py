"""`adapterd check` (issues 3 and 6): the shipped configuration passes; each broken one exits 1
with the JSON pointer and the reason; nothing is opened (a port already in use does not matter)."""
import json
import os
import socket
import subprocess
import tempfile
import unittest

from harness import ADAPTERD, FIXTURES

REPO = os.path.dirname(os.path.abspath(FIXTURES))


def check(config_text, cwd=REPO, env=None):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(config_text)
        path = f.name
    try:
        out = subprocess.run([ADAPTERD, "check", "--config", path], cwd=cwd, capture_output=True,
                             timeout=60, env=env)
        return out.returncode, (out.stdout + out.stderr).decode(), path
    finally:
        os.unlink(path)


class Check(unittest.TestCase):
    def test_the_shipped_configuration_passes(self):
        out = subprocess.run([ADAPTERD, "check", "--config", os.path.join(REPO, "config", "adapterd.json")],
                             cwd=REPO, capture_output=True, timeout=60)
        text = (out.stdout + out.stderr).decode()
        self.assertEqual(out.returncode, 0, text)
        self.assertIn("configuration OK", text)
        self.assertRegex(text, r"mappings OK: \d+ route\(s\), \d+ template\(s\)")
        # The embedded default is the same file.
        out = subprocess.run([ADAPTERD, "check"], cwd=REPO, capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr.decode())

    def test_check_opens_no_listener(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        try:
            code, text, _ = check(json.dumps({"listeners": {"mllp": [{"name": "m", "port": port}]},
                                              "admin": {"port": port + 1 if port < 65535 else 1}}))
            self.assertEqual(code, 0, text)
        finally:
            busy.close()

    def test_each_broken_configuration_is_refused_with_its_pointer_and_reason(self):
        missing_env = dict(os.environ)
        missing_env.pop("ADAPTERD_CHECK_UNSET", None)
        cases = [
            ('{"listeners": {"mllp": [{"name": "m", "port": 70000}]}}',
             "/listeners/mllp/0/port: must be an integer in 0..65535"),
            ('{"listener": {}}', "/listener: unknown key"),
            ('{"io_threads": 0}', "/io_threads: must be an integer in 1..64"),
            ('{"listeners": {"mllp": [{"name": "a", "port": 2600}, {"name": "a", "port": 2600}]}}',
             "/listeners/mllp/1/name: duplicate listener name 'a'"),
            ('{"listeners": {"mllp": [{"name": "a", "port": 2600}, {"name": "b", "port": 2600}]}}',
             "/listeners/mllp/1/port: port 2600 is already used by another listener"),
            ('{"listeners": {"mllp": [{"name": "t", "tls": {"certificate_file": "/nonexistent.crt", '
             '"private_key_file": "/nonexistent.key"}}]}}',
             "/listeners/mllp/0/tls/certificate_file"),
            ('{"destinations": [{"name": "ehr", "base_url": "ftp://x"}]}', "/destinations/0/base_url"),
            ('{"destinations": [{"name": "ehr", "base_url": "http://x", "auth": {"type": "bearer", '
             '"token": "literal"}}]}', "/destinations/0/auth/token: must be \"${ENV_VAR}\""),
            ('{"instance": "${ADAPTERD_CHECK_UNSET}"}',
             "/instance: environment variable ADAPTERD_CHECK_UNSET is not set"),
            ('{"admin": {"bind": "0.0.0.0"}}', "/admin/token: is required when admin.bind is not a loopback"),
            ('{"mapping": {"default_timezone": "Mars/Olympus"}}', "/mapping/default_timezone: must be"),
            ('{"log": {"level": "chatty"}}', "/log/level: must be"),
            ('{"store": {"kind": "oracle"}}', "/store/kind: must be \"sqlite\""),
            ('{"listeners": {"http": {"feeds": [{"name": "open"}]}}}', "/listeners/http/feeds/0: a feed needs"),
            ('{"listeners": {"folders": [{"name": "f"}]}}', "/listeners/folders/0/path: must name a folder"),
            ('{"instance": "a",,}', ": 1:18: Missing a name for object member"),
        ]
        for text, expected in cases:
            code, out, path = check(text, env=missing_env)
            self.assertEqual(code, 1, "%s\n%s" % (text, out))
            self.assertIn(expected, out, text)
            self.assertIn(path + ":", out, "errors name the file: " + out)

    def test_a_broken_mapping_is_located(self):
        with tempfile.TemporaryDirectory() as d:
            mappings = os.path.join(d, "mappings")
            subprocess.run(["cp", "-r", os.path.join(REPO, "mappings"), mappings], check=True)
            with open(os.path.join(mappings, "partials", "broken.json"), "w") as f:
                f.write('{"$partial": "broken", "$params": [],\n  "x": "{{ OBX-5 +* }}"}\n')
            code, out, _ = check(json.dumps({"mapping": {"directory": mappings}}))
            self.assertEqual(code, 1, out)
            self.assertRegex(out, r"partials/broken\.json:2:\d+: ")

    def test_a_destination_filter_on_a_template_the_mappings_lack_is_refused(self):
        code, out, _ = check(json.dumps({
            "mapping": {"directory": os.path.join(REPO, "mappings")},
            "destinations": [{"name": "registry", "base_url": "http://127.0.0.1:9",
                              "filter": {"templates": ["oru-r01", "oru-r02"]}}]}))
        self.assertEqual(code, 1, out)
        self.assertIn("/destinations/0/filter/templates/1: no template is named 'oru-r02' "
                      "(the mappings have: ", out)
        self.assertNotIn("filter/templates/0", out)


if __name__ == "__main__":
    unittest.main()
