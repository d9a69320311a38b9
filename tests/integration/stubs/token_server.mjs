// A test OAuth2 token endpoint (client credentials grant) on 127.0.0.1, Node builtins only.
//
// It checks the client the way a real authorisation server does:
//   client_secret_basic  Authorization: Basic base64(form(id):form(secret))   (RFC 6749 2.3.1)
//   client_secret_post   client_id and client_secret in the form body
//   private_key_jwt      client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
//                        and a client_assertion JWT (RFC 7523, SMART Backend Services): the
//                        signature with the public key (RS384, or ES384 as R||S), alg, kid, iss,
//                        sub, aud, exp (in the future, at most 5 minutes away) and jti (never reused)
// and answers {access_token, token_type: "Bearer", expires_in[, scope]}, or an OAuth error
// ({"error": "invalid_client", "error_description": ...}, 401; other errors 400).
//
// Usage:
//   node token_server.mjs --auth basic,post,jwt --client-id ID
//        [--client-secret S | --client-secret-file F]        (basic, post)
//        [--public-key PEM_FILE] [--kid K] [--alg RS384|ES384] (jwt; alg defaults from the key)
//        [--audience URL]  (default: the endpoint's own URL, http://127.0.0.1:PORT/token)
//        [--lifetime SECONDS] (expires_in of issued tokens, default 3600; 0 omits expires_in)
//        [--port N] (default 0: any free port)
//
// Prints one line when listening: {"event":"ready","port":N,"token_url":"..."} and nothing else
// on stdout (an undrained pipe must never block the server).
//
// Endpoints:
//   POST /token        the token endpoint
//   GET  /stats        {"token_requests", "tokens_issued", "rejected", "rejections": [last 20
//                       {"error", "reason"}], "active_tokens", "jti_seen"}
//   POST /introspect   form token=... -> {"active": true|false} (RFC 7662 shape, no client auth),
//                      for a test resource server that checks bearer tokens
//   POST /revoke-all   every issued token becomes inactive -> {"revoked": n}
//   POST /control      JSON {"lifetime": s, "fail_next": n, "fail_status": 503}: change the token
//                      lifetime, or answer the next n token requests with fail_status
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const MAX_ASSERTION_LIFETIME_S = 300;
const CLOCK_SKEW_S = 5;
const MAX_BODY_BYTES = 64 * 1024;
const KEPT_REJECTIONS = 20;

function parseArgs(argv) {
  const opts = { auth: [], port: 0, lifetime: 3600 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    const value = argv[i + 1];
    if (!key.startsWith('--') || value === undefined) throw new Error(`bad argument near ${key}`);
    switch (key) {
      case '--auth': opts.auth = value.split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--client-id': opts.clientId = value; break;
      case '--client-secret': opts.clientSecret = value; break;
      case '--client-secret-file':
        opts.clientSecret = fs.readFileSync(value, 'utf8').replace(/[\r\n]+$/, '');
        break;
      case '--public-key': opts.publicKey = crypto.createPublicKey(fs.readFileSync(value)); break;
      case '--kid': opts.kid = value; break;
      case '--alg': opts.alg = value; break;
      case '--audience': opts.audience = value; break;
      case '--lifetime': opts.lifetime = Number(value); break;
      case '--port': opts.port = Number(value); break;
      default: throw new Error(`unknown option ${key}`);
    }
  }
  for (const a of opts.auth) {
    if (!['basic', 'post', 'jwt'].includes(a)) throw new Error(`unknown --auth method ${a}`);
  }
  if (opts.auth.length === 0) throw new Error('--auth is required (basic, post, jwt)');
  if (!opts.clientId) throw new Error('--client-id is required');
  if ((opts.auth.includes('basic') || opts.auth.includes('post')) && !opts.clientSecret) {
    throw new Error('--client-secret or --client-secret-file is required for basic/post');
  }
  if (opts.auth.includes('jwt')) {
    if (!opts.publicKey) throw new Error('--public-key is required for jwt');
    const type = opts.publicKey.asymmetricKeyType;
    const curve = opts.publicKey.asymmetricKeyDetails?.namedCurve;
    const keyAlg = type === 'rsa' ? 'RS384' : type === 'ec' && curve === 'secp384r1' ? 'ES384' : null;
    if (!keyAlg) throw new Error(`--public-key must be RSA or EC P-384, not ${type} ${curve ?? ''}`);
    if (opts.alg && opts.alg !== keyAlg) throw new Error(`--alg ${opts.alg} does not fit the key`);
    opts.alg = keyAlg;
  }
  return opts;
}

// An OAuth error: status, error code and a description that says which check failed.
class OAuthError extends Error {
  constructor(status, error, description) {
    super(description);
    this.status = status;
    this.error = error;
  }
}
const invalidClient = (why) => new OAuthError(401, 'invalid_client', why);

// application/x-www-form-urlencoded decoding of one component ('+' is a space).
function formDecode(text) {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    throw invalidClient('credentials are not valid form encoding');
  }
}

function safeEqual(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

function base64urlPart(text, what) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw invalidClient(`assertion ${what} is not base64url`);
  return Buffer.from(text, 'base64url');
}

function jsonPart(text, what) {
  try {
    const value = JSON.parse(base64urlPart(text, what).toString('utf8'));
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error();
    return value;
  } catch (e) {
    if (e instanceof OAuthError) throw e;
    throw invalidClient(`assertion ${what} is not a JSON object`);
  }
}

class TokenServer {
  constructor(opts) {
    this.opts = opts;
    this.tokens = new Map(); // access token -> expiry (ms since epoch)
    this.jtis = new Map();   // jti -> exp (ms), forgotten after exp
    this.stats = { token_requests: 0, tokens_issued: 0, rejected: 0, rejections: [] };
    this.failNext = 0;
    this.failStatus = 503;
  }

  // Identifies the client from the request, or throws an OAuthError.
  authenticate(req, form) {
    const { opts } = this;
    const header = req.headers.authorization;
    if (header !== undefined) {
      if (!opts.auth.includes('basic')) throw invalidClient('client_secret_basic is not enabled');
      const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header);
      if (!m) throw invalidClient('malformed Basic authorization header');
      const decoded = Buffer.from(m[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw invalidClient('Basic credentials have no colon');
      const id = formDecode(decoded.slice(0, colon));
      const secret = formDecode(decoded.slice(colon + 1));
      if (form.has('client_secret') || form.has('client_assertion')) {
        throw new OAuthError(400, 'invalid_request', 'more than one client authentication method');
      }
      if (!safeEqual(id, opts.clientId)) throw invalidClient('unknown client_id (basic)');
      if (!safeEqual(secret, opts.clientSecret)) throw invalidClient('wrong client secret (basic)');
      return 'client_secret_basic';
    }
    if (form.has('client_assertion') || form.has('client_assertion_type')) {
      if (!opts.auth.includes('jwt')) throw invalidClient('private_key_jwt is not enabled');
      if (form.get('client_assertion_type') !== JWT_BEARER) {
        throw invalidClient('client_assertion_type is not jwt-bearer');
      }
      this.verifyAssertion(form.get('client_assertion') ?? '');
      return 'private_key_jwt';
    }
    if (form.has('client_secret')) {
      if (!opts.auth.includes('post')) throw invalidClient('client_secret_post is not enabled');
      if (!safeEqual(form.get('client_id') ?? '', opts.clientId)) {
        throw invalidClient('unknown client_id (post)');
      }
      if (!safeEqual(form.get('client_secret'), opts.clientSecret)) {
        throw invalidClient('wrong client secret (post)');
      }
      return 'client_secret_post';
    }
    throw invalidClient('no client authentication');
  }

  verifyAssertion(jwt) {
    const { opts } = this;
    const parts = jwt.split('.');
    if (parts.length !== 3) throw invalidClient('assertion is not a compact JWS');
    const header = jsonPart(parts[0], 'header');
    const claims = jsonPart(parts[1], 'claims');
    const signature = base64urlPart(parts[2], 'signature');
    if (header.alg !== opts.alg) throw invalidClient(`assertion alg ${header.alg} is not ${opts.alg}`);
    if (header.typ !== undefined && header.typ !== 'JWT') throw invalidClient('assertion typ is not JWT');
    if (opts.kid !== undefined && header.kid !== opts.kid) {
      throw invalidClient(`assertion kid ${header.kid} is not ${opts.kid}`);
    }
    const key = opts.alg === 'ES384' ? { key: opts.publicKey, dsaEncoding: 'ieee-p1363' } : opts.publicKey;
    if (opts.alg === 'ES384' && signature.length !== 96) {
      throw invalidClient(`ES384 signature is ${signature.length} bytes, not 96 (R||S)`);
    }
    const signingInput = Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii');
    if (!crypto.verify('sha384', signingInput, key, signature)) {
      throw invalidClient('assertion signature does not verify');
    }
    if (claims.iss !== opts.clientId) throw invalidClient('assertion iss is not the client_id');
    if (claims.sub !== opts.clientId) throw invalidClient('assertion sub is not the client_id');
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(opts.audience)) {
      throw invalidClient(`assertion aud is not ${opts.audience}`);
    }
    const now = Date.now() / 1000;
    if (!Number.isFinite(claims.exp)) throw invalidClient('assertion has no numeric exp');
    if (claims.exp <= now - CLOCK_SKEW_S) throw invalidClient('assertion has expired');
    if (claims.exp > now + MAX_ASSERTION_LIFETIME_S + CLOCK_SKEW_S) {
      throw invalidClient('assertion exp is more than 5 minutes away');
    }
    if (typeof claims.jti !== 'string' || claims.jti === '') throw invalidClient('assertion has no jti');
    this.forgetExpiredJtis();
    if (this.jtis.has(claims.jti)) throw invalidClient('assertion jti was already used');
    this.jtis.set(claims.jti, claims.exp * 1000);
  }

  forgetExpiredJtis() {
    const now = Date.now();
    for (const [jti, exp] of this.jtis) {
      if (exp + CLOCK_SKEW_S * 1000 < now) this.jtis.delete(jti);
    }
  }

  issue(form) {
    const token = crypto.randomBytes(32).toString('base64url');
    const lifetime = this.opts.lifetime;
    this.tokens.set(token, lifetime > 0 ? Date.now() + lifetime * 1000 : Infinity);
    this.stats.tokens_issued += 1;
    const answer = { access_token: token, token_type: 'Bearer' };
    if (lifetime > 0) answer.expires_in = lifetime;
    if (form.has('scope')) answer.scope = form.get('scope');
    return answer;
  }

  handleToken(req, body, reply) {
    this.stats.token_requests += 1;
    if (this.failNext > 0) {
      this.failNext -= 1;
      return reply(this.failStatus, { error: 'temporarily_unavailable' });
    }
    try {
      const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (type !== 'application/x-www-form-urlencoded') {
        throw new OAuthError(400, 'invalid_request', 'content type must be application/x-www-form-urlencoded');
      }
      const form = new URLSearchParams(body);
      const method = this.authenticate(req, form);
      const grant = form.get('grant_type');
      if (grant !== 'client_credentials') {
        throw new OAuthError(400, 'unsupported_grant_type', `grant_type ${grant} is not client_credentials`);
      }
      return reply(200, this.issue(form), { 'x-client-auth-method': method });
    } catch (e) {
      if (!(e instanceof OAuthError)) throw e;
      this.stats.rejected += 1;
      this.stats.rejections.push({ error: e.error, reason: e.message });
      if (this.stats.rejections.length > KEPT_REJECTIONS) this.stats.rejections.shift();
      const headers = e.status === 401 && req.headers.authorization !== undefined
        ? { 'www-authenticate': 'Basic realm="token"' } : {};
      return reply(e.status, { error: e.error, error_description: e.message }, headers);
    }
  }

  active(token) {
    const exp = this.tokens.get(token);
    return exp !== undefined && exp > Date.now();
  }

  route(req, body, reply) {
    const path = new URL(req.url, 'http://localhost').pathname;
    if (req.method === 'POST' && path === '/token') return this.handleToken(req, body, reply);
    if (req.method === 'GET' && path === '/stats') {
      return reply(200, {
        ...this.stats,
        active_tokens: [...this.tokens.keys()].filter((t) => this.active(t)).length,
        jti_seen: this.jtis.size,
      });
    }
    if (req.method === 'POST' && path === '/introspect') {
      return reply(200, { active: this.active(new URLSearchParams(body).get('token') ?? '') });
    }
    if (req.method === 'POST' && path === '/revoke-all') {
      const revoked = this.tokens.size;
      this.tokens.clear();
      return reply(200, { revoked });
    }
    if (req.method === 'POST' && path === '/control') {
      let change;
      try {
        change = JSON.parse(body || '{}');
      } catch {
        return reply(400, { error: 'invalid_request', error_description: 'control body is not JSON' });
      }
      if (change.lifetime !== undefined) this.opts.lifetime = Number(change.lifetime);
      if (change.fail_next !== undefined) this.failNext = Number(change.fail_next);
      if (change.fail_status !== undefined) this.failStatus = Number(change.fail_status);
      return reply(200, { lifetime: this.opts.lifetime, fail_next: this.failNext, fail_status: this.failStatus });
    }
    return reply(404, { error: 'not_found' });
  }
}

const opts = parseArgs(process.argv.slice(2));
const server = new TokenServer(opts);

const httpServer = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
      res.end('{"error":"invalid_request","error_description":"body too large"}');
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (res.writableEnded) return;
    const reply = (status, json, headers = {}) => {
      res.writeHead(status, {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        pragma: 'no-cache',
        ...headers,
      });
      res.end(JSON.stringify(json));
    };
    try {
      server.route(req, Buffer.concat(chunks).toString('utf8'), reply);
    } catch (e) {
      reply(500, { error: 'server_error', error_description: String(e?.message ?? e) });
    }
  });
});

httpServer.listen(opts.port, '127.0.0.1', () => {
  const { port } = httpServer.address();
  const tokenUrl = `http://127.0.0.1:${port}/token`;
  opts.audience ??= tokenUrl;
  process.stdout.write(`${JSON.stringify({ event: 'ready', port, token_url: tokenUrl })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0)); // a test stub: no draining of keep-alive clients
}
