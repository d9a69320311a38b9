// Validation of one JSON document: a Bundle (every entry's resource, plus the Bundle itself as a
// transaction) or a single resource. Shared by validate.mjs and selftest.mjs.
import fs from 'node:fs';
import { OperationOutcomeError, validateResource } from '@medplum/core';
import { checkTransactionBundle } from './validator.mjs';
import { IG_CANONICAL } from './definitions.mjs';

const GR_SD_PREFIX = `${IG_CANONICAL}/StructureDefinition/`;

/**
 * Returns a list of issues:
 *   { file, entry (index or null), resourceType, label, severity, path, message, source }
 * Options:
 *   requireTransaction (default true): a Bundle must be a transaction. With false, a Bundle of
 *     another type gets only the entry and reference checks.
 *   requireProfile (default false): every Observation and DiagnosticReport must declare a
 *     Genomics Reporting profile in meta.profile (without one it is only checked against base R4).
 */
export function validateDocument(validator, doc, file, { requireTransaction = true, requireProfile = false } = {}) {
  const out = [];
  const push = (entry, resource, fallbackLabel, i) =>
    out.push({
      file,
      entry,
      resourceType: resource?.resourceType ?? null,
      label: `${resource?.resourceType ?? 'Resource'}/${resource?.id || fallbackLabel || '-'}`,
      severity: i.severity,
      path: i.path,
      message: i.message,
      source: i.source,
    });

  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    push(null, null, '-', { severity: 'error', path: '$', message: 'not a FHIR resource (JSON object expected)', source: 'json' });
    return out;
  }

  const profileCheck = (resource, entry, label) => {
    if (requireProfile && (resource?.resourceType === 'Observation' || resource?.resourceType === 'DiagnosticReport') && !(resource.meta?.profile ?? []).some((p) => String(p).startsWith(GR_SD_PREFIX))) {
      push(entry, resource, label, { severity: 'error', path: `${resource.resourceType}.meta.profile`, message: 'no Genomics Reporting profile declared in meta.profile (--require-profile)', source: 'profile' });
    }
  };

  if (doc.resourceType !== 'Bundle') {
    profileCheck(doc, null, '-');
    for (const i of validator.validateResource(doc)) {
      push(null, doc, '-', i);
    }
    return out;
  }

  // The Bundle itself: base definition and invariants (bdl-*), evaluated on the whole Bundle.
  // Issues inside an entry's resource are left out here: each resource is validated on its own
  // below, and its issues are reported once, against its entry.
  const entries = Array.isArray(doc.entry) ? doc.entry : [];
  let bundleIssues;
  try {
    bundleIssues = validateResource(doc);
  } catch (e) {
    if (!(e instanceof OperationOutcomeError)) {
      throw e;
    }
    bundleIssues = e.outcome.issue ?? [];
  }
  for (const i of bundleIssues) {
    const p = i.expression?.[0] ?? 'Bundle';
    if (/^Bundle\.entry\[\d+\]\.resource[.[]/.test(p)) {
      continue;
    }
    push(null, doc, '-', { severity: i.severity, path: p, message: i.details?.text ?? i.diagnostics, source: 'base' });
  }
  for (const i of checkTransactionBundle(doc, { requireTransaction })) {
    const e = i.entry === undefined ? undefined : entries[i.entry];
    if (e) {
      push(i.entry, e.resource, e.fullUrl, i);
    } else {
      push(null, doc, '-', i);
    }
  }

  // fullUrl -> Type/id, to let the reference type checks see through urn:uuid references.
  const refMap = new Map();
  for (const e of entries) {
    if (e?.fullUrl && e.resource?.resourceType) {
      const id = e.resource.id ?? e.fullUrl.replace(/^.*[:/]/, '');
      refMap.set(e.fullUrl, `${e.resource.resourceType}/${id}`);
    }
  }
  entries.forEach((e, idx) => {
    if (!e?.resource) {
      return;
    }
    profileCheck(e.resource, idx, e.fullUrl);
    for (const i of validator.validateResource(e.resource, { refMap })) {
      push(idx, e.resource, e.fullUrl, i);
    }
  });
  return out;
}

/** Reads and validates one file. A failure of the validator itself is reported as an error. */
export function validateFile(validator, file, options) {
  const fail = (message, source) => [{ file, entry: null, resourceType: null, label: '-', severity: 'error', path: '$', message, source }];
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return fail(`cannot read JSON: ${e.message}`, 'json');
  }
  try {
    return validateDocument(validator, doc, file, options);
  } catch (e) {
    return fail(`validator failure: ${e.stack ?? e}`, 'validator');
  }
}

/** One line per issue: `<file> entry[<i>] <Type>/<id or fullUrl> <severity> <path>: <message> [<source>]` */
export function formatIssue(i) {
  return `${i.file} entry[${i.entry ?? '-'}] ${i.label} ${i.severity} ${i.path ?? '-'}: ${i.message} [${i.source}]`;
}
