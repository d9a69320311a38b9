// Turns the RESULT/INFO lines bench/run.sh collects into bench/RESULTS.md and a summary on stdout.
//
//   node bench/summarize.mjs RESULTS_TXT OUT_MD [--only translate]
//
// Figures are medians over the rounds; every ratio is computed within one round (both sides
// measured minutes apart on the same machine) and the median of those ratios is reported, as the
// project guide asks. Anything in the existing OUT_MD below the ANALYSIS_MARKER line is written by
// hand and is carried over unchanged.
//
// With --only translate (bench/run.sh --only translate: no MLLP rounds), only section 3 and the
// Translate row of the Targets table are rewritten in the existing OUT_MD; every other line is
// kept as it is. Section 3 carries its own date, commit, command and machine lines for that reason.
import fs from 'node:fs';

const [inPath, outPath, onlyFlag, onlyWhat] = process.argv.slice(2);
const only = onlyFlag === '--only' ? onlyWhat : undefined;
if (!inPath || !outPath || (onlyFlag !== undefined && only !== 'translate')) {
  console.error('usage: node summarize.mjs RESULTS_TXT OUT_MD [--only translate]');
  process.exit(2);
}
const ANALYSIS_MARKER = '<!-- Hand-written analysis below: kept by summarize.mjs across runs. -->';

const info = {};
const rows = [];
for (const line of fs.readFileSync(inPath, 'utf8').split('\n')) {
  if (line.startsWith('INFO ')) {
    const [k, ...v] = line.slice(5).split('\t');
    info[k] = v.join('\t');
  } else if (line.startsWith('RESULT ')) {
    const [kind, ...kv] = line.slice(7).trim().split(/\s+/);
    const r = { kind };
    for (const p of kv) {
      const i = p.indexOf('=');
      if (i > 0) r[p.slice(0, i)] = Number.isNaN(Number(p.slice(i + 1))) ? p.slice(i + 1) : Number(p.slice(i + 1));
    }
    rows.push(r);
  }
}

const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
const fix = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : 'n/a');
// Two significant digits below 0.1, where toFixed(2) would print 0.00x.
const sratio = (x) => (Number.isFinite(x) ? `${Math.abs(x) < 0.1 ? x.toPrecision(2) : x.toFixed(2)}x` : 'n/a');
const verdict = (ok) => (ok === undefined ? 'n/a' : ok ? 'met' : '**MISSED**');
const rounds = [...new Set(rows.map((r) => r.round).filter((x) => x !== undefined))].sort((a, b) => a - b);
const where = (pred) => rows.filter(pred);
const one = (pred) => rows.find(pred);

// --- parse ---------------------------------------------------------------------------------
const parseRounds = rounds.map((round) => {
  const pb = one((r) => r.kind === 'parse_bench' && r.round === round);
  const hp = one((r) => r.kind === 'peer_parse' && r.lib === 'hl7parser' && r.round === round);
  const mc = one((r) => r.kind === 'peer_parse' && r.lib === 'medplum_core' && r.round === round);
  if (!pb || !hp) return null;
  return { round, pb, hp, mc, walk: pb.walk_msgs_per_s / hp.get, ranges: pb.ranges_msgs_per_s / hp.get,
    get3: pb.get3_msgs_per_s / hp.get };
}).filter(Boolean);
const walkRatio = median(parseRounds.map((r) => r.walk));
const get3Ratio = median(parseRounds.map((r) => r.get3));
const rangesRatio = median(parseRounds.map((r) => r.ranges));
const med = (f) => median(parseRounds.map(f));

// --- translate -----------------------------------------------------------------------------
// Baselines, each from the same round as the translate figure: adapterd's own parse and
// parse+walk (parse_bench: the same bytes, the same build) and hl7parser parse+get (bench.mjs),
// the fastest JS parse-and-read of this message among the peers. No peer maps HL7 v2 to FHIR, so
// the last ratio sets a translation against reading three values, not against another mapper.
const TRANSLATE_TARGET = 20000;
const translateRounds = rounds.map((round) => {
  const tb = one((r) => r.kind === 'translate_bench' && r.round === round);
  const pb = one((r) => r.kind === 'parse_bench' && r.round === round);
  const hp = one((r) => r.kind === 'peer_parse' && r.lib === 'hl7parser' && r.round === round);
  if (!tb) return null;
  const t = tb.translate_per_s;
  const us = (perS) => 1e6 / perS;
  return { round, tb, pb, hp,
    vsParse: pb ? t / pb.parse_msgs_per_s : NaN, vsWalk: pb ? t / pb.walk_msgs_per_s : NaN, vsPeer: hp ? t / hp.get : NaN,
    // Stage costs: differences of the medians of successive workloads (each adds one step).
    stages: { parse: us(tb.parse_per_s), route: us(tb.route_per_s) - us(tb.parse_per_s),
      map: us(tb.map_per_s) - us(tb.route_per_s), serialize: us(tb.translate_per_s) - us(tb.map_per_s),
      total: us(tb.translate_per_s) } };
}).filter(Boolean);
const tmed = (f) => median(translateRounds.map(f));
const translatePerS = tmed((r) => r.tb.translate_per_s);
const translateVsPeer = tmed((r) => r.vsPeer);
const translateTarget = [
  'Translate: parse, route, map with the shipped templates and serialise the benchmark ORU^R01 to a FHIR Bundle, one thread (translate_bench, section 3)',
  `>= ${int(TRANSLATE_TARGET)}/s`,
  `${int(translatePerS)}/s, ${sratio(translatePerS / TRANSLATE_TARGET)} the target (${sratio(translateVsPeer)} hl7parser parse+get, ` +
    `${sratio(tmed((r) => r.vsWalk))} adapterd parse+walk)${only ? `; from the \`${info.command ?? '?'}\` run of ${info.date ?? '?'}` : ''}`,
  verdict(Number.isFinite(translatePerS) ? translatePerS >= TRANSLATE_TARGET : undefined),
];

function translateSection() {
  const out = [];
  const q = (...l) => out.push(...l);
  const first = translateRounds[0]?.tb;
  q('## 3. Translate: HL7 v2 to a FHIR Bundle (bench/translate_bench.cpp)', '');
  q(`Run: ${info.date ?? '?'}, commit ${info.commit ?? '?'}, command \`${info.command ?? '?'}\` (${translateRounds.length} round${translateRounds.length === 1 ? '' : 's'}); ` +
    `${info.cpu ?? '?'} (nproc ${info.nproc ?? '?'}), ${info.kernel ?? '?'}; ${info.compiler ?? '?'}; Node ${info.node ?? '?'}; ` +
    `load average before: ${info.load_before ?? '?'}, after: ${info.load_after ?? '?'}.`, '');
  q('- **One translation** is `app::Mapper::map`, the call `adapterd translate` and the daemon\'s mapping worker make per message, on ' +
    `the message's ${first?.bytes ?? '?'} bytes (CR line ends, as in section 1): \`Message::parse\`, header and route, \`$source\` ` +
    '(SHA-256 of the bytes among others), `map_hl7` with the shipped mappings/ (loaded once), then `Json::dump()` (compact, as the ' +
    'mapping worker stores it). Settings: the configuration compiled into adapterd (what `adapterd translate` uses without ' +
    '--config) and a fixed receipt (no arrival time, so `$source.received_at` is MSH-7; message id 0): the output is deterministic. ' +
    'One thread, timed like section 1 (400 ms warm-up, median of 5 x 1 s, batches of 100).');
  q(`- **Checked** before timing, in every round: the Bundle (${first?.entries ?? '?'} entries, ${int(first?.output_bytes)} bytes compact) ` +
    `${first?.checked ? 'equals what `adapterd translate` prints for the same bytes (compared as JSON values and as compact text)' : 'was NOT compared with `adapterd translate`'}, ` +
    `with no error issue (${first?.warnings ?? '?'} warnings; ${first?.unmapped ?? '?'} source values reported unmapped, as the CLI reports).`);
  q('- **Stages**: *parse* is `Message::parse`; *parse+route* adds `header_of` and `route_hl7`; *parse+map* is `Mapper::map` ' +
    '(adds `$source` and `map_hl7`); *translate* adds `dump()`. A stage\'s cost is the difference between the medians of two ' +
    'successive workloads. *serialize alone* dumps one ready Bundle, for comparison with the serialise step inside a translation.');
  q('- **Baselines**, measured in the same round: adapterd\'s parse and parse+walk (parse_bench, section 1: the same bytes, the same ' +
    'build; what reading the whole message costs without mapping it) and hl7parser parse+get (bench.mjs), the fastest JS ' +
    'parse-and-read of this message in bench/peers. No peer maps HL7 v2 to FHIR, so *translate / hl7parser* sets a whole ' +
    'translation against parsing and reading three values: context for the absolute figure, not a like-for-like comparison. ' +
    'hl7parser\'s parse-only figure (lazy: it splits nothing until read) is not used.');
  q('- **Allocations**: global operator new/delete replaced in translate_bench as in parse_bench; requested bytes; averaged over 5,000 calls.', '');
  q(`| Round | translate/s | vs ${int(TRANSLATE_TARGET)}/s | parse+map/s | parse+route/s | parse/s | serialize alone/s | ` +
    'parse_bench parse/s | parse_bench parse+walk/s | hl7parser parse+get/s | translate / parse | translate / parse+walk | translate / hl7parser |');
  q('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of translateRounds) {
    q(`| ${r.round} | ${int(r.tb.translate_per_s)} [${int(r.tb.translate_min)}-${int(r.tb.translate_max)}] | ${sratio(r.tb.translate_per_s / TRANSLATE_TARGET)} | ` +
      `${int(r.tb.map_per_s)} | ${int(r.tb.route_per_s)} | ${int(r.tb.parse_per_s)} | ${int(r.tb.serialize_per_s)} | ` +
      `${int(r.pb?.parse_msgs_per_s)} | ${int(r.pb?.walk_msgs_per_s)} | ${int(r.hp?.get)} | ${sratio(r.vsParse)} | ${sratio(r.vsWalk)} | ${sratio(r.vsPeer)} |`);
  }
  q(`| **median** | **${int(translatePerS)}** | **${sratio(translatePerS / TRANSLATE_TARGET)}** | ${int(tmed((r) => r.tb.map_per_s))} | ` +
    `${int(tmed((r) => r.tb.route_per_s))} | ${int(tmed((r) => r.tb.parse_per_s))} | ${int(tmed((r) => r.tb.serialize_per_s))} | ` +
    `${int(tmed((r) => r.pb?.parse_msgs_per_s))} | ${int(tmed((r) => r.pb?.walk_msgs_per_s))} | ${int(tmed((r) => r.hp?.get))} | ` +
    `${sratio(tmed((r) => r.vsParse))} | ${sratio(tmed((r) => r.vsWalk))} | **${sratio(translateVsPeer)}** |`, '');
  const st = (k) => tmed((r) => r.stages[k]);
  const total = st('total');
  const al = (k) => tmed((r) => r.tb[`${k}_allocs`]);
  const by = (k) => tmed((r) => r.tb[`${k}_bytes`]);
  q('Where a translation\'s time goes (medians over the rounds):', '');
  q('| Stage | us per translation | share | allocations | bytes allocated |', '|---|---|---|---|---|');
  const stageRow = (name, us, a, b) => q(`| ${name} | ${fix(us)} | ${Number.isFinite(us / total) ? `${(100 * us / total).toFixed(1)}%` : 'n/a'} | ${fix(a, 1)} | ${int(b)} |`);
  stageRow('parse (`Message::parse`)', st('parse'), al('parse'), by('parse'));
  stageRow('route (`header_of`, `route_hl7`)', st('route'), al('route') - al('parse'), by('route') - by('parse'));
  stageRow('map (`$source`, `map_hl7`)', st('map'), al('map') - al('route'), by('map') - by('route'));
  stageRow('serialize (`Json::dump`)', st('serialize'), al('translate') - al('map'), by('translate') - by('map'));
  q(`| **translation** | **${fix(total)}** | 100% | **${fix(al('translate'), 1)}** | **${int(by('translate'))}** |`);
  q(`| serialize alone (one ready Bundle) | ${fix(1e6 / tmed((r) => r.tb.serialize_per_s))} | | ${fix(al('serialize'), 1)} | ${int(by('serialize'))} |`, '');
  q('```sh', 'bench/run.sh --only translate          # parse + translate rounds; rewrites only this section and its Targets row',
    'build-bench/bench/translate_bench      # one run (without --expect it is not compared with adapterd translate)',
    'perf record -g build-bench/bench/translate_bench --loop 10   # translate only, for a profiler', '```', '');
  return out;
}

// --- MLLP ----------------------------------------------------------------------------------
const mllp = where((r) => r.kind === 'mllp');
const runsOf = (target, c, rate = 0) => mllp.filter((r) => r.target === target && r.c === c && r.rate === rate);
const closed = (c) => {
  const per = rounds.map((round) => {
    const a = one((r) => r.kind === 'mllp' && r.target === 'adapterd' && r.c === c && r.rate === 0 && r.round === round);
    const p = one((r) => r.kind === 'mllp' && r.target === 'peer' && r.c === c && r.rate === 0 && r.round === round);
    return a && p ? { round, a, p, ratio: a.msgs_per_s / p.msgs_per_s } : null;
  }).filter(Boolean);
  return { per, ratio: median(per.map((x) => x.ratio)) };
};
const c1 = closed(1);
const c16 = closed(16);
const rateRuns = mllp.filter((r) => r.rate > 0);
const rateOf = (target) => rateRuns.filter((r) => r.target === target);
const ratedA = rateOf('adapterd');
const p99Rate = median(ratedA.map((r) => r.p99_ms));
const p99RateWorst = Math.max(...ratedA.map((r) => r.p99_ms));
const offered = ratedA[0]?.rate;
const rateConns = ratedA[0]?.c;
const achievedOk = ratedA.every((r) => r.msgs_per_s >= 0.98 * r.rate);
const rssA = one((r) => r.kind === 'rss' && r.target === 'adapterd');
const rssP = one((r) => r.kind === 'rss' && r.target === 'peer');
const disk = one((r) => r.kind === 'disk');
const js = one((r) => r.kind === 'js_client');
const failedRuns = mllp.filter((r) => r.rc !== 0 || r.errors > 0);
const shortRuns = mllp.filter((r) => r.rate === 0 && r.secs < 5);

const targets = [
  ['Parse + read every field/repetition/component/subcomponent with full escape decoding, vs hl7parser parse+get (bench.mjs)',
    '>= 3x', `${ratio(walkRatio)} (${int(med((r) => r.pb.walk_msgs_per_s))} vs ${int(med((r) => r.hp.get))} msg/s)`,
    verdict(Number.isFinite(walkRatio) ? walkRatio >= 3 : undefined)],
  translateTarget,
  ['MLLP, durable (SQLite, fsync on), 1 connection, vs non-storing @medplum/hl7 receiver, same client',
    '>= 1x', `${ratio(c1.ratio)} (${int(median(c1.per.map((x) => x.a.msgs_per_s)))} vs ${int(median(c1.per.map((x) => x.p.msgs_per_s)))} msg/s)`,
    verdict(Number.isFinite(c1.ratio) ? c1.ratio >= 1 : undefined)],
  ['MLLP, durable, 16 connections, same comparison',
    '>= 3x', `${ratio(c16.ratio)} (${int(median(c16.per.map((x) => x.a.msgs_per_s)))} vs ${int(median(c16.per.map((x) => x.p.msgs_per_s)))} msg/s)`,
    verdict(Number.isFinite(c16.ratio) ? c16.ratio >= 3 : undefined)],
  [`p99 ACK latency at ${int(offered)} msg/s offered (open loop, ${rateConns} connections, from scheduled send time)`,
    '< 5 ms', `${fix(p99Rate)} ms median of rounds (worst ${fix(p99RateWorst)} ms)${achievedOk ? '' : '; offered rate NOT achieved'}`,
    verdict(Number.isFinite(p99Rate) ? p99Rate < 5 && achievedOk : undefined)],
  ['adapterd peak resident memory (VmHWM at the end of the session)',
    '< 64 MB', rssA ? `${fix(rssA.vmhwm_kb / 1024, 1)} MB` : 'n/a',
    verdict(rssA ? rssA.vmhwm_kb / 1024 < 64 : undefined)],
];

const printTargets = (list) => {
  console.log('\nTargets (medians; ratios within each round):');
  for (const [what, target, measured, v] of list) console.log(`  ${v.replaceAll('*', '').padEnd(7)} ${target.padEnd(8)} ${measured}\n          ${what}`);
};

// --only translate: section 3 and the Translate row of the Targets table replace their old
// versions in OUT_MD (or go where a full run puts them); nothing else in the file changes.
if (only === 'translate') {
  const section = translateSection();
  const row = `| ${translateTarget.join(' | ')} |`;
  let lines = fs.existsSync(outPath) ? fs.readFileSync(outPath, 'utf8').replace(/\n+$/, '').split('\n') : [];
  if (lines.length === 0) {
    lines = ['# Benchmark results', '', 'Only section 3 has been measured yet (`bench/run.sh --only translate`); `bench/run.sh` measures everything.', '',
      '## Targets', '', '| Requirement | Target | Measured | Verdict |', '|---|---|---|---|', '', ANALYSIS_MARKER];
  }
  const start = lines.findIndex((l) => l.startsWith('## 3. Translate'));
  if (start >= 0) {
    let end = lines.findIndex((l, i) => i > start && (l.startsWith('## ') || l === ANALYSIS_MARKER));
    if (end < 0) end = lines.length;
    lines.splice(start, end - start, ...section);
  } else {
    let at = lines.findIndex((l) => l.startsWith('## Reproduce'));
    if (at < 0) at = lines.indexOf(ANALYSIS_MARKER);
    if (at < 0) at = lines.length;
    lines.splice(at, 0, ...section);
  }
  const old = lines.findIndex((l) => l.startsWith('| Translate:'));
  if (old >= 0) {
    lines[old] = row;
  } else {
    // Second row, as a full run orders them (after the parse row), or the first if there is none.
    const sep = lines.findIndex((l, i) => l.startsWith('|---') && lines.slice(0, i).includes('## Targets'));
    if (sep < 0) throw new Error(`${outPath}: no Targets table to put the Translate row in`);
    lines.splice(lines[sep + 1]?.startsWith('| ') ? sep + 2 : sep + 1, 0, row);
  }
  fs.writeFileSync(outPath, lines.join('\n') + '\n');
  printTargets([translateTarget]);
  process.exit(0);
}

const md = [];
const p = (...l) => md.push(...l);
p('# Benchmark results', '');
p(`Last run: ${info.date ?? '?'}, commit ${info.commit ?? '?'}, command \`${info.command ?? 'bench/run.sh'}\` ` +
  `(${rounds.length} rounds). Figures are medians over the rounds; each ratio is taken within a round ` +
  '(both sides measured minutes apart on the same machine) and the median of those ratios is shown. ' +
  'Generated by bench/summarize.mjs; only the analysis at the end is written by hand.', '');
p('## Targets', '', '| Requirement | Target | Measured | Verdict |', '|---|---|---|---|');
for (const t of targets) p(`| ${t.join(' | ')} |`);
p('');
if (failedRuns.length || shortRuns.length || Number(info.failed_runs)) {
  p(`**Run problems:** ${failedRuns.length} MLLP run(s) with errors, ${shortRuns.length} closed-loop run(s) shorter than 5 s, ` +
    `failed_runs=${info.failed_runs}. Figures from such runs are not trustworthy.`, '');
}

p('## Machine', '', '| | |', '|---|---|');
p(`| CPU | ${info.cpu ?? '?'} (nproc ${info.nproc ?? '?'}) |`);
p(`| Memory | ${info.memory ?? '?'} |`);
p(`| Kernel / OS | ${info.kernel ?? '?'} / ${info.os ?? '?'} |`);
p(`| Disk (store) | ${info.disk ?? '?'}; one O_DSYNC 4 KiB write (dd): ${fix(disk?.dsync_append_us, 0)} us appending, ${fix(disk?.dsync_overwrite_us, 0)} us overwriting |`);
p(`| Toolchain | ${info.compiler ?? '?'}; Node ${info.node ?? '?'}; SQLite ${info.sqlite ?? '?'} |`);
p(`| Load average (1/5/15 min) | before: ${info.load_before ?? '?'}; after: ${info.load_after ?? '?'} |`);
p('');

p('## 1. Parse (bench/parse_bench.cpp beside bench/peers/bench.mjs)', '');
p('Message: fixtures/hl7v2/samples/bench_oru_r01_genomics.hl7 (the peers\' oru_r01_genomics.hl7, CR line ends: ' +
  `${parseRounds[0]?.pb.bytes ?? '?'} bytes, ${parseRounds[0]?.pb.segments ?? '?'} segments, ${parseRounds[0]?.pb.fields ?? '?'} fields, ` +
  `${parseRounds[0]?.pb.leaves ?? '?'} non-empty leaf values). Both sides: 400 ms warm-up, median of 5 x 1 s, batches of 100.`, '');
p('- **parse+walk** (the target workload): `Message::parse`, then every field, repetition, component and subcomponent of every segment, ' +
  'each leaf decoded (escapes, `\\X..\\`, formatting sequences) with `Value::text(scratch)`, which returns the raw bytes when there is ' +
  'nothing to decode and decodes into a reused `std::string` otherwise, in one pass over the message with `Message::for_each_leaf` ' +
  '(the API message.h offers for reading a whole message).');
p('- **parse+ranges**: the same reads through nested `repetitions()` / `components()` / `subcomponents()` ranges; parse_bench checks that both walks ' +
  'see the same leaves and decoded text.');
p('- **parse+get3**: `Message::parse` and the same three reads bench.mjs does (PID-3.1, OBX[15]-5.1, OBX count), for a like-for-like line.');
p('- **parse**: `Message::parse` only (what intake does per frame). hl7parser\'s "parse" is lazy (it splits nothing until read), so only its parse+get is comparable.');
p('- Allocations: global operator new/delete replaced in parse_bench; bytes are requested bytes, averaged over 20,000 calls. ' +
  'bench.mjs reports *retained* JS heap per message instead (2,000 messages kept alive), a different measure shown for context.', '');
p('| Round | adapterd parse msg/s | parse+walk msg/s | parse+ranges msg/s | parse+get3 msg/s | allocs/msg (walk) | bytes allocated/msg (walk) | hl7parser parse+get msg/s | hl7parser heap KB/msg | @medplum/core parse+get msg/s | walk / hl7parser | ranges / hl7parser | get3 / hl7parser |');
p('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of parseRounds) {
  p(`| ${r.round} | ${int(r.pb.parse_msgs_per_s)} | ${int(r.pb.walk_msgs_per_s)} [${int(r.pb.walk_min)}-${int(r.pb.walk_max)}] | ${int(r.pb.ranges_msgs_per_s)} | ${int(r.pb.get3_msgs_per_s)} | ` +
    `${fix(r.pb.walk_allocs_per_msg)} | ${int(r.pb.walk_bytes_per_msg)} | ${int(r.hp.get)} [${int(r.hp.get_min)}-${int(r.hp.get_max)}] | ${fix(r.hp.heap_kb, 1)} | ` +
    `${int(r.mc?.get)} | ${ratio(r.walk)} | ${ratio(r.ranges)} | ${ratio(r.get3)} |`);
}
p(`| **median** | ${int(med((r) => r.pb.parse_msgs_per_s))} | ${int(med((r) => r.pb.walk_msgs_per_s))} | ${int(med((r) => r.pb.ranges_msgs_per_s))} | ${int(med((r) => r.pb.get3_msgs_per_s))} | ` +
  `${fix(med((r) => r.pb.walk_allocs_per_msg))} | ${int(med((r) => r.pb.walk_bytes_per_msg))} | ${int(med((r) => r.hp.get))} | ${fix(med((r) => r.hp.heap_kb), 1)} | ` +
  `${int(med((r) => r.mc?.get))} | **${ratio(walkRatio)}** | ${ratio(rangesRatio)} | ${ratio(get3Ratio)} |`, '');

p('## 2. Durable MLLP intake (bench/mllp_load.cpp against both receivers)', '');
p('adapterd: shipped defaults (2 I/O threads, group commit up to 512, SQLite WAL with synchronous=FULL: every ACK follows an fsync), ' +
  'fresh store on the disk above, log level warn. Peer: bench/peers/mllp_receiver.mjs, @medplum/hl7 answering AA without storing anything. ' +
  'Same client for both: mllp_load, original mode (MSH-15/16 emptied), one message in flight per connection, unique MSH-10 per message, ' +
  'every ACK checked (MSA-1 AA, MSA-2 = the control ID sent); 20 unmeasured messages per connection first. Closed-loop runs sized for ' +
  '>= 6 s from the previous round\'s rate. The client runs on the same 2 cores; its CPU per message is shown.', '');
p(`Receivers: ${info.receivers ?? '?'}.`, '');
p('| Round | Connections | Receiver | Messages | Seconds | msg/s | p50 ms | p99 ms | max ms | receiver CPU us/msg | client CPU us/msg | adapterd / peer |');
p('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const [c, res] of [[1, c1], [16, c16]]) {
  for (const x of res.per) {
    for (const r of [x.a, x.p]) {
      p(`| ${x.round} | ${c} | ${r.target} | ${int(r.ok)} | ${fix(r.secs, 1)} | ${int(r.msgs_per_s)} | ${fix(r.p50_ms, 3)} | ${fix(r.p99_ms, 3)} | ` +
        `${fix(r.max_ms, 1)} | ${fix(r.receiver_cpu_us_per_msg, 0)} | ${fix(r.client_cpu_us_per_msg, 0)} | ${r === x.a ? ratio(x.ratio) : ''} |`);
    }
  }
  const ra = runsOf('adapterd', c);
  const rp = runsOf('peer', c);
  p(`| **median** | ${c} | adapterd / peer | | | ${int(median(ra.map((r) => r.msgs_per_s)))} / ${int(median(rp.map((r) => r.msgs_per_s)))} | ` +
    `${fix(median(ra.map((r) => r.p50_ms)), 3)} / ${fix(median(rp.map((r) => r.p50_ms)), 3)} | ${fix(median(ra.map((r) => r.p99_ms)), 3)} / ${fix(median(rp.map((r) => r.p99_ms)), 3)} | | ` +
    `${fix(median(ra.map((r) => r.receiver_cpu_us_per_msg)), 0)} / ${fix(median(rp.map((r) => r.receiver_cpu_us_per_msg)), 0)} | | **${ratio(res.ratio)}** |`);
}
p('');
p(`### Offered load: ${int(offered)} msg/s over ${rateConns} connections, open loop`, '');
p('Latency counts from each message\'s scheduled send time, so a stall is charged to every message it delays (no coordinated omission).', '');
p('| Round | Receiver | Messages | Achieved msg/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | receiver CPU us/msg |');
p('|---|---|---|---|---|---|---|---|---|---|');
for (const r of [...rateRuns].sort((a, b) => a.round - b.round || (a.target < b.target ? -1 : 1))) {
  p(`| ${r.round} | ${r.target} | ${int(r.ok)} | ${fix(r.msgs_per_s, 1)} | ${fix(r.p50_ms, 3)} | ${fix(r.p90_ms, 3)} | ${fix(r.p99_ms, 3)} | ` +
    `${fix(r.p999_ms, 3)} | ${fix(r.max_ms, 1)} | ${fix(r.receiver_cpu_us_per_msg, 0)} |`);
}
p('');
p('### Memory and store', '');
if (rssA) {
  p(`- adapterd: VmHWM ${fix(rssA.vmhwm_kb / 1024, 1)} MB, VmRSS at the end ${fix(rssA.vmrss_kb / 1024, 1)} MB; ` +
    `${int(rssA.accepted)} messages accepted (metrics), store failures ${rssA.store_failures}, store on disk ${fix(rssA.store_bytes / 1048576, 0)} MB ` +
    `(${int(rssA.store_bytes / rssA.accepted)} bytes per ${parseRounds[0]?.pb.bytes ?? '?'}-byte message).`);
}
if (rssP) p(`- @medplum/hl7 receiver (node): VmHWM ${fix(rssP.vmhwm_kb / 1024, 1)} MB.`);
if (js) {
  p(`- Reference only (different client, not used in any ratio): the peers' mllp_bench.mjs (@medplum/hl7 JS client) against the same peer receiver: ` +
    `${int(js.msgs_per_s)} msg/s at 1 connection, p50 ${js.p50_ms} ms, p99 ${js.p99_ms} ms.`);
}
p('');
for (const l of translateSection()) p(l);

p('## Reproduce', '');
p('```sh', 'bench/run.sh                  # ~10 min on 2 cores; knobs at the top of the script',
  'bench/run.sh --only translate # ~5 min: parse + translate rounds; rewrites only section 3 and its Targets row', '```', '');
p('Single pieces (after a Release build in build-bench/ and `cd bench/peers && npm ci --omit=optional`):', '');
p('```sh', 'build-bench/bench/parse_bench', 'build-bench/bench/translate_bench', '(cd bench/peers && node --expose-gc bench.mjs)',
  'build-bench/bench/mllp_load 127.0.0.1 PORT 20000 16            # closed loop',
  'build-bench/bench/mllp_load 127.0.0.1 PORT 12000 16 --rate 1000 # open loop', '```', '');

let analysis = '';
if (fs.existsSync(outPath)) {
  const old = fs.readFileSync(outPath, 'utf8');
  const i = old.indexOf(ANALYSIS_MARKER);
  if (i >= 0) analysis = old.slice(i + ANALYSIS_MARKER.length).replace(/^\n+/, '');
}
p(ANALYSIS_MARKER, '');
if (analysis) md.push(analysis.trimEnd());
fs.writeFileSync(outPath, md.join('\n') + '\n');

printTargets(targets);
