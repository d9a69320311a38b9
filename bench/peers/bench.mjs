// Peer HL7v2 parser micro-benchmark + feature probe.
// Usage (from a dir where the npm packages are installed, e.g. /tmp/peers):
//   node --expose-gc ../shared/bench/peers/bench.mjs [path/to/msg.hl7]
// (in this repository: cd bench/peers && npm ci && node --expose-gc bench.mjs)
// Measures, per library, on one 24-segment genomics ORU^R01 (2.2 KB):
//   parse      : messages/sec for parse only
//   parse+get  : messages/sec for parse + reading PID-3.1, OBX[15]-5 and the OBX count
//                (lazy parsers do little work in "parse", so this is the fairer number)
//   KB/msg     : retained JS heap per parsed+accessed message (2,000 kept alive)
// and probes correctness: repetitions, escape decoding, \X..\ hex, Z segments, MSH-2 custom delimiters.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(path.join(process.cwd(), 'noop.js'));
const here = path.dirname(new URL(import.meta.url).pathname);
// [adapterd bench/peers] Default input: the repository's copy of the peers' oru_r01_genomics.hl7.
const file = process.argv[2] || path.join(here, '../../fixtures/hl7v2/samples/bench_oru_r01_genomics.hl7');
const TEXT = fs.readFileSync(file, 'utf8').replace(/\r?\n/g, '\r').replace(/\r+$/, '');
// Same message with a non-default component separator declared in MSH-2 ("!~\&").
const CUSTOM = TEXT.replaceAll('^', '!');

const ver = (p) => { try { return JSON.parse(fs.readFileSync(path.join(process.cwd(), 'node_modules', p, 'package.json'), 'utf8')).version; } catch { return '?'; } };
const libs = [];
// [adapterd bench/peers] A parser that is not installed is skipped rather than fatal: bench/run.sh
// installs only the pinned required peers unless BENCH_ALL_PEERS=1 (see README.md).
async function optional(add) {
  try { await add(); } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND' && e.code !== 'ERR_MODULE_NOT_FOUND') throw e;
    console.log(`skipped (not installed): ${e.message.split('\n')[0]}`);
  }
}

await optional(async () => { const { Hl7Message } = require('@medplum/core');
  libs.push({ name: '@medplum/core (Hl7Message)', ver: ver('@medplum/core'),
    parse: (t) => Hl7Message.parse(t),
    pid31: (m) => m.getSegment('PID').getField(3).getComponent(1),
    pidRep2: (m) => m.getSegment('PID').getField(3).getComponent(1, undefined, 1),
    obx15: (m) => m.getAllSegments('OBX')[14].getField(5).getComponent(1),
    nte: (m) => m.getSegment('NTE').getField(3).getComponent(1),
    zRep2: (m) => m.getSegment('ZGX')?.getField(3).getComponent(1, undefined, 1),
    obxCount: (m) => m.getAllSegments('OBX').length }); });

await optional(async () => { const hv = await import(require.resolve('hl7v2'));
  libs.push({ name: 'hl7v2 (panates)', ver: ver('hl7v2'),
    parse: (t) => hv.HL7Message.parse(t),
    pid31: (m) => m.getSegment('PID').field(3).repetition(0).getValue(1),
    pidRep2: (m) => m.getSegment('PID').field(3).repetition(1).getValue(1),
    obx15: (m) => m.segments.filter((s) => s.segmentType === 'OBX')[14].field(5).repetition(0).getValue(),
    nte: (m) => m.getSegment('NTE').field(3).getValue(),
    zRep2: (m) => m.getSegment('ZGX')?.field(3).repetition(1).getValue(),
    obxCount: (m) => m.segments.filter((s) => s.segmentType === 'OBX').length }); });

await optional(async () => { const HL7 = require('hl7-standard');
  libs.push({ name: 'hl7-standard', ver: ver('hl7-standard'),
    parse: (t) => { const h = new HL7(t); h.transform(); return h; },
    pid31: (h) => h.get('PID.3.1', 0, 0),
    pidRep2: (h) => h.get('PID.3.1', 0, 1),
    obx15: (h) => h.get('OBX.5.1', 14, 0),
    nte: (h) => h.get('NTE.3'),
    zRep2: (h) => h.get('ZGX.3.1', 0, 1),
    obxCount: (h) => h.getSegments('OBX').length }); });

await optional(async () => { const sh = require('simple-hl7'); const p = new sh.Parser();
  libs.push({ name: 'simple-hl7', ver: ver('simple-hl7'),
    parse: (t) => p.parse(t),
    pid31: (m) => m.getSegment('PID').getComponent(3, 1),   // documented API; fails on repeating fields
    pidRep2: (m) => m.getSegment('PID').getField(3, 2),      // returns the whole repetition, not a component
    obx15: (m) => m.getSegments('OBX')[14].getField(5, 1),
    nte: (m) => m.getSegment('NTE').getField(3),
    zRep2: (m) => m.getSegment('ZGX')?.getField(3, 2),
    obxCount: (m) => m.getSegments('OBX').length }); });

await optional(async () => { const nc = require('node-hl7-client');
  libs.push({ name: 'node-hl7-client (Message)', ver: ver('node-hl7-client'),
    parse: (t) => new nc.Message({ text: t }),
    pid31: (m) => m.get('PID.3').get(0).get(0).toString(),
    pidRep2: (m) => m.get('PID.3').get(1).get(0).toString(),
    obx15: (m) => m.get('OBX').get(14).get(5).get(0).toString(),
    nte: (m) => m.get('NTE.3').toString(),
    zRep2: (m) => m.get('ZGX.3').get(1).toString(),
    obxCount: (m) => m.get('OBX').length }); });

await optional(async () => { const hp = require('hl7parser');
  libs.push({ name: 'hl7parser', ver: ver('hl7parser'),
    parse: (t) => hp.create(t),
    pid31: (m) => m.get('PID.3.1').toString(),
    pidRep2: (m) => m.get('PID.3').get(1).get(0).toString(),
    obx15: (m) => m.get('OBX').get(14).get(5).get(0).toString(),
    nte: (m) => m.get('NTE.3').toString(),
    zRep2: (m) => m.get('ZGX.3').get(1).toString(),
    obxCount: (m) => m.get('OBX').length }); });

await optional(async () => { const rx = require('@redoxengine/redox-hl7-v2'); const p = new rx.Parser();
  const oo = (j) => j.PATIENT_RESULT[0].ORDER_OBSERVATION[0];
  libs.push({ name: '@redoxengine/redox-hl7-v2', ver: ver('@redoxengine/redox-hl7-v2'),
    parse: (t) => p.parse(t),
    pid31: (j) => j.PATIENT_RESULT[0].PATIENT.PID['3'][0]['1'],
    pidRep2: (j) => j.PATIENT_RESULT[0].PATIENT.PID['3'][1]['1'],
    obx15: (j) => oo(j).OBSERVATION[14].OBX['5'][0],
    nte: (j) => oo(j).OBSERVATION[14].NTE[0]['3'][0],
    zRep2: (j) => (JSON.stringify(j).includes('DEPTH=312') ? 'DEPTH=312' : undefined),
    obxCount: (j) => oo(j).OBSERVATION.length }); });

await optional(async () => { const th = require('tiny-hl7'); const hl7 = th.default || th;
  const seg = (a, n, i = 0) => a.filter((s) => Object.keys(s)[0]?.startsWith(n + '.'))[i];
  libs.push({ name: 'tiny-hl7', ver: ver('tiny-hl7'),
    parse: (t) => hl7.parse(t),
    pid31: (a) => seg(a, 'PID')['PID.3.1'],
    pidRep2: () => undefined, // no repetition model: "PID.3.5" comes back as "MR~98765"
    obx15: (a) => seg(a, 'OBX', 14)['OBX.5'] ?? seg(a, 'OBX', 14)['OBX.5.1'],
    nte: (a) => seg(a, 'NTE')['NTE.3'],
    zRep2: (a) => seg(a, 'ZGX')?.['ZGX.3'],
    obxCount: (a) => a.filter((s) => Object.keys(s)[0]?.startsWith('OBX.')).length }); });

const EXPECT = {
  pid31: 'MRN12345', pidRep2: '98765', obxCount: 15, zRep2: 'DEPTH=312',
  obx15: 'Pathogenic BRCA1 variant & BRCA2 VUS detected.', // prefix check: \T\ decoded
  nte: 'Escapes: field | comp ^ rep ~ esc \\ sub & hex A end',
};
const safe = (f) => { try { return f(); } catch (e) { return `ERR:${e.message.slice(0, 40)}`; } };

function probe(l) {
  const m = l.parse(TEXT);
  const r = {};
  r.rep = safe(() => l.pidRep2(m)) === EXPECT.pidRep2;
  const o = String(safe(() => l.obx15(m)));
  r.escT = o.startsWith(EXPECT.obx15);
  const n = String(safe(() => l.nte(m)));
  r.escAll = n === EXPECT.nte;
  r.escBasic = n.startsWith('Escapes: field | comp ^ rep ~ esc \\ sub &');
  r.z = safe(() => l.zRep2(m)) === EXPECT.zRep2;
  r.count = safe(() => l.obxCount(m)) === EXPECT.obxCount;
  r.custom = safe(() => l.pid31(l.parse(CUSTOM))) === EXPECT.pid31;
  r.nteRaw = n; r.obxRaw = o;
  return r;
}

function opsPerSec(fn, ms) {
  let n = 0; const t0 = process.hrtime.bigint(); let el = 0;
  do { for (let i = 0; i < 100; i++) fn(); n += 100; el = Number(process.hrtime.bigint() - t0) / 1e6; } while (el < ms);
  return (n * 1000) / el;
}
function measure(fn) {
  opsPerSec(fn, 400); // warm-up (JIT)
  const runs = [];
  for (let i = 0; i < 5; i++) runs.push(opsPerSec(fn, 1000));
  runs.sort((a, b) => a - b);
  return { med: runs[2], min: runs[0], max: runs[4] };
}
function heapPerMsg(l) {
  if (!global.gc) return NaN;
  global.gc(); global.gc();
  const h0 = process.memoryUsage().heapUsed; const keep = [];
  for (let i = 0; i < 2000; i++) { const m = l.parse(TEXT); l.pid31(m); l.obx15(m); l.obxCount(m); keep.push(m); }
  global.gc(); global.gc();
  const h1 = process.memoryUsage().heapUsed;
  return (h1 - h0) / keep.length / 1024;
}

console.log(`node ${process.version}; message ${file} (${TEXT.length} bytes, ${TEXT.split('\r').length} segments)`);
const rows = [];
for (const l of libs) {
  const pr = probe(l);
  const a = measure(() => l.parse(TEXT));
  const b = measure(() => { const m = l.parse(TEXT); l.pid31(m); l.obx15(m); l.obxCount(m); });
  const kb = heapPerMsg(l);
  rows.push({ l, pr, a, b, kb });
  console.log(`${l.name}@${l.ver}: parse ${a.med.toFixed(0)}/s [${a.min.toFixed(0)}-${a.max.toFixed(0)}], ` +
    `parse+get ${b.med.toFixed(0)}/s [${b.min.toFixed(0)}-${b.max.toFixed(0)}], heap ${kb.toFixed(1)} KB/msg; ` +
    `rep=${pr.rep} escT=${pr.escT} escBasic=${pr.escBasic} escAll(+hex)=${pr.escAll} Zrep=${pr.z} obxCount=${pr.count} customDelim=${pr.custom}`);
  console.log(`   NTE-3 -> ${JSON.stringify(pr.nteRaw)}`);
  console.log(`   OBX15-5 -> ${JSON.stringify(pr.obxRaw.slice(0, 90))}`);
}
console.log('\n| library | version | parse msg/s (median of 5) | parse+get msg/s | heap KB/msg | repetitions | \\T\\ etc. decoded | \\X41\\ decoded | Z seg kept | MSH-2 custom delims |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
const yn = (b) => (b ? 'yes' : 'no');
for (const { l, pr, a, b, kb } of rows) {
  console.log(`| ${l.name} | ${l.ver} | ${a.med.toFixed(0)} | ${b.med.toFixed(0)} | ${kb.toFixed(1)} | ${yn(pr.rep)} | ${yn(pr.escBasic)} | ${yn(pr.escAll)} | ${yn(pr.z)} | ${yn(pr.custom)} |`);
}
