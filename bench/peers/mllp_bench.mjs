// MLLP round-trip baseline with @medplum/hl7 (client + receiver on loopback only).
// Usage (from /tmp/peers): node ../shared/bench/peers/mllp_bench.mjs [messages] [connections] [host:port]
// With host:port (loopback only) it sends to that receiver instead of starting its own, so the same
// client measures another MLLP receiver (the adapter, say) in the same run.
// Receiver = @medplum/hl7 Hl7Connection on a net server bound to 127.0.0.1 (same wiring as Hl7Server,
// which itself listens on all interfaces), replying AA via Hl7Message.buildAck() (no storage: an upper bound).
// Sender = Hl7Client.sendAndWait() in original mode: one message in flight per connection.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(path.join(process.cwd(), 'noop.js'));
const { Hl7Message } = require('@medplum/core');
const { Hl7Client, Hl7Connection } = require('@medplum/hl7');
const here = path.dirname(new URL(import.meta.url).pathname);
// [adapterd bench/peers] Input: the repository's copy of the peers' oru_r01_genomics.hl7, or $BENCH_MESSAGE.
const FILE = process.env.BENCH_MESSAGE || path.join(here, '../../fixtures/hl7v2/samples/bench_oru_r01_genomics.hl7');
const TEXT = fs.readFileSync(FILE, 'utf8').replace(/\r?\n/g, '\r').replace(/\r+$/, '');
const N = Number(process.argv[2] || 3000);
const C = Number(process.argv[3] || 1);

const TARGET = process.argv[4];
let server = null;
let host = '127.0.0.1';
let port;
if (TARGET) {
  [host, port] = [TARGET.split(':')[0], Number(TARGET.split(':')[1])];
  if (!/^(127\.|localhost$|\[?::1\]?$)/.test(host)) throw new Error('loopback targets only');
} else {
  server = net.createServer((socket) => {
    const conn = new Hl7Connection(socket);
    conn.addEventListener('message', (ev) => conn.send(ev.message.buildAck()));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  port = server.address().port;
}
const RUN = Date.now().toString(36);

const lat = [];
let next = 0;
async function worker() {
  const client = new Hl7Client({ host, port });
  await client.connect();
  for (;;) {
    const i = next++;
    if (i >= N) break;
    const msg = Hl7Message.parse(TEXT.replace('MSG-000123', `MSG-${RUN}-${i}`));
    const t0 = process.hrtime.bigint();
    const ack = await client.sendAndWait(msg, { timeoutMs: 10000 });
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (ack.getSegment('MSA').getField(1).toString() !== 'AA') throw new Error('not AA');
  }
  await client.close();
}
// warm-up
{ const c = new Hl7Client({ host, port }); await c.connect();
  for (let i = 0; i < 300; i++) await c.sendAndWait(Hl7Message.parse(TEXT.replace('MSG-000123', `WARM-${RUN}-${i}`)), { timeoutMs: 10000 });
  await c.close(); }
const t0 = process.hrtime.bigint();
await Promise.all(Array.from({ length: C }, worker));
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
lat.sort((a, b) => a - b);
const q = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))].toFixed(2);
const who = TARGET ? `receiver ${TARGET}` : '@medplum/hl7 receiver (no storage)';
console.log(`${who}, @medplum/hl7 client, MLLP loopback, ${N} x ${TEXT.length}-byte ORU, ${C} connection(s): ` +
  `${(N / secs).toFixed(0)} msg/s, ACK latency p50 ${q(0.5)} ms p99 ${q(0.99)} ms, rss ${(process.memoryUsage().rss / 1048576).toFixed(0)} MB`);
if (server) server.close();
process.exit(0);
