import fs from 'node:fs';
import { Validator } from './lib/validator.mjs';
let t = Date.now();
const v = new Validator();
console.log('load', Date.now() - t, 'ms', v.defs.adaptations.length, 'adaptations');
const dir = 'ig/package/example';
t = Date.now();
let n = 0, pass = 0;
const fails = {};
for (const f of fs.readdirSync(dir)) {
  const r = JSON.parse(fs.readFileSync(`${dir}/${f}`));
  const list = r.resourceType === 'Bundle' ? r.entry.map(e => e.resource) : [r];
  for (const res of list) {
    if (!(res.meta?.profile ?? []).some(p => p.includes('genomics-reporting'))) continue;
    n++;
    const issues = v.validateResource(res).filter(i => i.severity === (process.env.SEV || "error"));
    if (issues.length === 0) pass++;
    for (const i of issues) { const k = i.source.replace(/profile \S+/, 'profile') + ' | ' + i.message.replace(/"[^"]*"/g,'"…"'); (fails[k] ??= []).push(`${f}:${res.id} ${i.path}`); }
  }
}
console.log('validated', n, 'pass', pass, 'in', Date.now() - t, 'ms');
for (const [k, l] of Object.entries(fails).sort((a,b)=>b[1].length-a[1].length)) console.log(l.length, k, '\n     e.g.', l.slice(0,3).join(' ; '));
