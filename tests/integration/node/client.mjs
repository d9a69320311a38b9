// A thin command line over two independent npm MLLP client libraries, so the Python integration
// tests can drive adapterd with them and assert on the ACKs:
//   node client.mjs --lib medplum|node-hl7-client --port P [--host H] [--tls] [--ca F]
//        [--cert F] [--key F] [--timeout MS] FILE...
// Prints one JSON line per file: {"file": ..., "ack": "<ACK text, segments joined by \r>"} or
// {"file": ..., "error": "..."}. The libraries do the framing, sending and ACK matching.
import fs from 'node:fs';
import { Hl7Message } from '@medplum/core';
import { Hl7Client } from '@medplum/hl7';
import { Client, Message } from 'node-hl7-client';

const args = process.argv.slice(2);
const opt = { lib: 'medplum', host: '127.0.0.1', port: 2575, timeout: 10000, tls: false, files: [] };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--lib') opt.lib = args[++i];
  else if (a === '--host') opt.host = args[++i];
  else if (a === '--port') opt.port = Number(args[++i]);
  else if (a === '--timeout') opt.timeout = Number(args[++i]);
  else if (a === '--tls') opt.tls = true;
  else if (a === '--ca') opt.ca = fs.readFileSync(args[++i]);
  else if (a === '--cert') opt.cert = fs.readFileSync(args[++i]);
  else if (a === '--key') opt.key = fs.readFileSync(args[++i]);
  else opt.files.push(a);
}

// Files may use LF or CRLF line ends; HL7 wants CR.
const readMessage = (f) => fs.readFileSync(f, 'utf8').replace(/^\uFEFF/, '').replace(/\r?\n/g, '\r').replace(/\r+$/, '');
const print = (o) => process.stdout.write(JSON.stringify(o) + '\n');

async function withMedplum() {
  const client = new Hl7Client({ host: opt.host, port: opt.port });
  await client.connect();
  for (const f of opt.files) {
    try {
      const ack = await client.sendAndWait(Hl7Message.parse(readMessage(f)), { timeoutMs: opt.timeout });
      print({ file: f, ack: ack.toString() });
    } catch (e) {
      print({ file: f, error: String(e && e.message ? e.message : e) });
    }
  }
  await client.close();
}

async function withNodeHl7Client() {
  const tls = opt.tls ? { ca: opt.ca, cert: opt.cert, key: opt.key, servername: 'localhost' } : undefined;
  const client = new Client({ host: opt.host, tls, connectionTimeout: opt.timeout, maxConnectionAttempts: 1, maxTimeout: 1 });
  let pending = null;
  const conn = client.createConnection({ port: opt.port, waitAck: true }, async (res) => {
    if (pending) pending.resolve(res.getMessage().toString());
  });
  conn.on('client.error', (err) => { if (pending) pending.reject(err); });
  conn.on('error', (err) => { if (pending) pending.reject(err); });
  conn.on('client.close', () => { if (pending) pending.reject(new Error('connection closed')); });
  for (const f of opt.files) {
    try {
      const ack = await new Promise((resolve, reject) => {
        pending = { resolve, reject };
        const timer = setTimeout(() => reject(new Error('timeout waiting for ACK')), opt.timeout);
        pending.resolve = (v) => { clearTimeout(timer); resolve(v); };
        pending.reject = (e) => { clearTimeout(timer); reject(e); };
        conn.sendMessage(new Message({ text: readMessage(f) })).catch(pending.reject);
      });
      print({ file: f, ack });
    } catch (e) {
      print({ file: f, error: String(e && e.message ? e.message : e) });
    }
    pending = null;
  }
  try { await conn.close(); } catch { /* already closed */ }
}

const run = opt.lib === 'medplum' ? withMedplum : withNodeHl7Client;
run().then(() => process.exit(0), (e) => { print({ error: String(e && e.message ? e.message : e) }); process.exit(1); });
