// Validation of FHIR R4 resources and transaction Bundles against base R4 and the Genomics
// Reporting IG STU3 (3.0.0) profiles.
//
// Engines:
//   - Medplum (@medplum/core validateTypedValue): structure, cardinality, types, fixed/pattern
//     values, FHIRPath invariants, slice cardinality. Against the base definition of the
//     resource type and against every declared IG profile.
//   - Slice-content and type-profile pass (this file): Medplum only counts slice members; it
//     does not check a member against its slice's own definition (e.g. that the gene-studied
//     component has a CodeableConcept value). Each member is validated with Medplum against a
//     StructureDefinition made from the slice's elements; elements whose type names a profile
//     (coded-annotation, SimpleQuantity...) and every extension with a known definition are
//     validated against that definition.
//   - Required bindings (terminology.mjs), for the values Medplum collects.
//   - FHIR.js (fhir@4.12.0): required bindings of the base resource definitions.
//   - Bundle checks (transaction shape, urn:uuid references).
import Fhir from 'fhir';
import {
  OperationOutcomeError,
  getNestedProperty,
  matchDiscriminant,
  parseStructureDefinition,
  validateResource,
  validateTypedValue,
  validationRegexes,
} from '@medplum/core';
import { IG_CANONICAL, IG_VERSION, adaptStructureDefinition, loadDefinitions, medplumView, stripVersion } from './definitions.mjs';
import { Terminology } from './terminology.mjs';

// Medplum limitation fixed here: its dateTime regex accepts a time without seconds or timezone
// ("2024-05-02T14:30", "2024-05-02T14:30:00"). FHIR R4 requires both when a time is given
// (http://hl7.org/fhir/R4/datatypes.html#dateTime); the adapter must be held to that (v2 DTM
// without a zone needs the configured default timezone). Replaced by the regex the R4 spec gives.
validationRegexes.dateTime =
  /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$/;

const IG_SD_PREFIX = `${IG_CANONICAL}/StructureDefinition/`;
const BASE_SD_PREFIX = 'http://hl7.org/fhir/StructureDefinition/';

function arrayify(v) {
  if (v === undefined) {
    return [];
  }
  return Array.isArray(v) ? v : [v];
}

/** Replace the schema root path at the start of `p` with the actual path of the value. */
function rebase(p, schemaRoot, actual) {
  if (!p || schemaRoot === actual) {
    return p ?? actual;
  }
  if (p === schemaRoot) {
    return actual;
  }
  if (p.startsWith(schemaRoot + '.') || p.startsWith(schemaRoot + '[')) {
    return actual + p.slice(schemaRoot.length);
  }
  return p;
}

function issueMessage(i) {
  let m = i.details?.text ?? i.diagnostics ?? 'validation issue';
  if (i.code === 'processing' && i.diagnostics) {
    m += ` (${i.diagnostics})`;
  }
  return m;
}

export class Validator {
  constructor(options = {}) {
    this.defs = loadDefinitions(options.igDir);
    this.term = new Terminology(this.defs.valueSets, this.defs.codeSystems);
    this.fhirjs = new Fhir.Fhir();
    this.schemas = new Map(); // SD (object) -> parsed Medplum schema of its medplumView
    this.views = new Map(); // SD (object) -> medplumView(SD)
    this.sliceSDs = new Map(); // `${url}#${sliceId}` -> synthetic SD
    this.adapted = new Map(); // url -> adapted copy of a non-IG StructureDefinition
  }

  /**
   * A StructureDefinition by canonical URL, or undefined. IG ones are adapted at load time;
   * others (core extensions, datatype profiles) are adapted here on first use, with the same
   * adaptations, which leave them unchanged unless they hit the same Medplum limits.
   */
  sd(url) {
    const u = stripVersion(url);
    const ig = this.defs.profiles.get(u);
    if (ig) {
      return ig;
    }
    if (!this.adapted.has(u)) {
      const raw = this.defs.structureDefinitions.get(u);
      this.adapted.set(u, raw?.snapshot ? adaptStructureDefinition(raw, this.defs.structureDefinitions, this.defs.adaptations) : undefined);
    }
    return this.adapted.get(u);
  }

  /** The view of `sd` given to Medplum (adaptation 4, see definitions.mjs). */
  view(sd) {
    let v = this.views.get(sd);
    if (!v) {
      v = medplumView(sd);
      this.views.set(sd, v);
    }
    return v;
  }

  schema(sd) {
    let s = this.schemas.get(sd);
    if (!s) {
      s = parseStructureDefinition(this.view(sd));
      this.schemas.set(sd, s);
    }
    return s;
  }

  /**
   * A StructureDefinition made of one slice of `sd`: its root is the slice's root element (as a
   * plain, unsliced element), its elements are the slice's children with the slice name taken
   * out of their ids. Nested slicings inside the slice are kept.
   */
  sliceSD(sd, sliceRootId) {
    const key = `${sd.url}#${sliceRootId}`;
    if (this.sliceSDs.has(key)) {
      return this.sliceSDs.get(key);
    }
    const els = sd.snapshot.element;
    const root = els.find((e) => e.id === sliceRootId);
    const colon = sliceRootId.lastIndexOf(':');
    const plainId = sliceRootId.slice(0, colon);
    const children = els.filter((e) => e.id.startsWith(sliceRootId + '.'));
    if (children.length === 0) {
      // The slice does not constrain the inside of its members (e.g. the type slice
      // value[x]:valueCodeableConcept of Variant): the base type, which Medplum already checked
      // in the main pass, is all there is. Only the slice root (binding, type profile) applies.
      this.sliceSDs.set(key, null);
      return null;
    }
    const rewriteId = (id) => plainId + id.slice(sliceRootId.length);
    const rootCopy = { ...root, id: plainId, _origId: root._origId ?? root.id };
    delete rootCopy.sliceName;
    delete rootCopy.slicing;
    const typeCode = root.type?.length === 1 ? root.type[0].code : 'Element';
    const out = {
      resourceType: 'StructureDefinition',
      url: key,
      name: `${sd.name}_${root.sliceName}`.replace(/[^A-Za-z0-9_]/g, '_'),
      status: 'active',
      kind: 'complex-type',
      abstract: false,
      type: typeCode,
      derivation: 'constraint',
      snapshot: { element: [rootCopy, ...children.map((c) => ({ ...c, id: rewriteId(c.id), _origId: c._origId ?? c.id }))] },
    };
    this.sliceSDs.set(key, out);
    return out;
  }

  /**
   * Validates a typed value ({type, value, path}) against a StructureDefinition with Medplum,
   * then checks required bindings and runs the slice-content / type-profile pass.
   */
  validateAgainst(tv, sd, source, issues, depth = 0) {
    if (depth > 12) {
      return;
    }
    const schemaRoot = sd.snapshot.element[0].path;
    const tokens = {};
    let raw = [];
    try {
      raw = validateTypedValue({ type: tv.type, value: tv.value }, { profile: this.view(sd), collect: { tokens } });
    } catch (e) {
      if (e instanceof OperationOutcomeError) {
        raw = e.outcome.issue ?? [];
      } else {
        raw = [{ severity: 'error', code: 'processing', details: { text: `validator failure: ${e.message}` }, expression: [schemaRoot] }];
      }
    }
    for (const i of raw) {
      issues.push({
        severity: i.severity,
        path: rebase(i.expression?.[0], schemaRoot, tv.path),
        message: issueMessage(i),
        source,
      });
    }
    for (const [vs, values] of Object.entries(tokens)) {
      for (const v of values) {
        for (const r of this.term.checkRequired(vs, v)) {
          issues.push({ ...r, path: rebase(v.path, schemaRoot, tv.path), source: `${source} binding` });
        }
      }
    }
    this.deepPass(tv, sd, source, issues, depth);
  }

  /** Finds Medplum's parsed element for a path relative to the schema root. */
  findSchemaElement(schema, rootPath, rel) {
    if (schema.elements[rel]) {
      return schema.elements[rel];
    }
    const full = `${rootPath}.${rel}`;
    let best;
    for (const inner of schema.innerTypes ?? []) {
      if (full.startsWith(inner.path + '.') && (!best || inner.path.length > best.path.length)) {
        const key = full.slice(inner.path.length + 1);
        if (inner.elements[key]) {
          best = inner;
        }
      }
    }
    return best?.elements[full.slice(best.path.length + 1)];
  }

  valuesAt(tv, rel) {
    const out = [];
    for (const v of getNestedProperty(tv, rel, { withPath: true })) {
      for (const x of arrayify(v)) {
        if (x && x.value !== undefined && x.value !== null) {
          out.push(x);
        }
      }
    }
    return out;
  }

  /**
   * The part of `sd` under a sliced element that is common to all its members (the element
   * without its slices), as a StructureDefinition rooted at that element. Used when that part
   * has slicings of its own (e.g. Observation.component.extension in the implication profiles),
   * which Medplum cannot parse inside the outer slicing (adaptation 4).
   */
  baseElementSD(sd, elementId) {
    const key = `${sd.url}#${elementId}`;
    if (this.sliceSDs.has(key)) {
      return this.sliceSDs.get(key);
    }
    const els = sd.snapshot.element;
    const root = els.find((e) => e.id === elementId);
    const children = els.filter((e) => e.id.startsWith(elementId + '.'));
    const rootCopy = { ...root };
    delete rootCopy.slicing;
    const out = {
      resourceType: 'StructureDefinition',
      url: key,
      name: `${sd.name}_${elementId}`.replace(/[^A-Za-z0-9_]/g, '_'),
      status: 'active',
      kind: 'complex-type',
      abstract: false,
      type: root.type?.length === 1 ? root.type[0].code : 'Element',
      derivation: 'constraint',
      snapshot: { element: [rootCopy, ...children] },
    };
    this.sliceSDs.set(key, out);
    return out;
  }

  deepPass(tv, sd, source, issues, depth) {
    const els = sd.snapshot.element;
    const rootPath = els[0].path;
    // Paths of the sliced elements that are not themselves inside a slice.
    const slicedPaths = els.filter((e) => e.slicing && !e.id.includes(':') && els.some((s) => s.sliceName && s.path === e.path && s.id.startsWith(e.id + ':'))).map((e) => e.path);
    const underSliced = (p) => slicedPaths.some((sp) => p.startsWith(sp + '.'));
    let schema;
    for (let k = 1; k < els.length; k++) {
      const e = els[k];
      if (e.id.includes(':')) {
        continue; // inside a slice: handled by validating the slice member against the slice
      }
      const rel = e.path.slice(rootPath.length + 1);
      if (e.path.endsWith('[x]') && e.type?.length) {
        // Medplum resolves a choice element (value[x], effective[x]...) by the JSON key and never
        // checks that the type is one the profile allows: valueString on the gene-studied
        // component (CodeableConcept only) or effectivePeriod on GenomicReport (dateTime only)
        // pass. Checked here, for every value at this path.
        const allowed = new Set(e.type.map((t) => t.code));
        for (const v of this.valuesAt(tv, rel)) {
          if (!allowed.has(v.type)) {
            issues.push({ severity: 'error', path: v.path, message: `type ${v.type} is not allowed for ${e._origId ?? e.id} (allowed: ${[...allowed].join(', ')})`, source });
          }
        }
      }
      if (underSliced(e.path)) {
        continue; // handled by validating each member against baseElementSD (below)
      }
      if (e.binding?.strength === 'extensible' && e.binding.valueSet) {
        for (const v of this.valuesAt(tv, rel)) {
          this.checkExtensible(e.binding.valueSet, v, e._origId ?? e.id, source, issues);
        }
      }
      if (e._conformancePattern || e._conformanceFixed) {
        // Adaptation 3: fixed/pattern of a repeating element, checked on every repetition.
        const spec = e._conformancePattern ?? e._conformanceFixed;
        for (const v of this.valuesAt(tv, rel)) {
          const ok = e._conformancePattern ? jsonIncludes(v.value, spec.value) : jsonEquals(v.value, spec.value);
          if (!ok) {
            issues.push({ severity: 'error', path: v.path, message: `value does not match the ${e._conformancePattern ? 'pattern' : 'fixed value'} ${spec.type} ${JSON.stringify(spec.value)} required by ${e._origId ?? e.id}`, source });
          }
        }
      }
      if (slicedPaths.includes(e.path)) {
        const sliceRoots = els.filter((s) => s.sliceName && s.path === e.path && s.id.startsWith(e.id + ':') && !s.id.slice(e.id.length + 1).includes('.') && !s.id.slice(e.id.length + 1).includes(':'));
        schema ??= this.schema(sd);
        const slicing = this.findSchemaElement(schema, rootPath, rel)?.slicing;
        if (!slicing) {
          issues.push({ severity: 'warning', path: `${tv.path}.${rel}`, message: `slice contents of ${e.id} not checked (slicing not found in parsed schema)`, source });
          continue;
        }
        // Does the common part of the element hold anything Medplum's main pass cannot see?
        const inner = els.filter((x) => x.id.startsWith(e.id + '.'));
        const needsBase = inner.some((x) => x.sliceName || x._conformancePattern || x._conformanceFixed || x.type?.some((t) => t.profile?.length && t.code !== 'Extension'));
        for (const v of this.valuesAt(tv, rel)) {
          if (needsBase) {
            this.validateAgainst(v, this.baseElementSD(sd, e.id), source, issues, depth + 1);
          }
          const name = this.matchSlice(v, slicing);
          if (!name) {
            if (slicing.rule === 'closed') {
              issues.push({ severity: 'error', path: v.path, message: `value does not match any slice of closed slicing ${e.id}`, source });
            }
            continue;
          }
          const sliceRoot = sliceRoots.find((s) => s.sliceName === name);
          if (!sliceRoot) {
            continue;
          }
          const sliceSource = `${source} slice ${name}`;
          // Extension slices are validated here against what the slice adds; the extension
          // itself is validated against its definition by validateExtensions.
          const ssd = this.sliceSD(sd, sliceRoot.id);
          if (ssd) {
            this.validateAgainst(v, ssd, sliceSource, issues, depth + 1);
          }
          if (sliceRoot.binding?.strength === 'required' && sliceRoot.binding.valueSet) {
            for (const r of this.term.checkRequired(sliceRoot.binding.valueSet, v)) {
              issues.push({ ...r, path: v.path, source: `${sliceSource} binding` });
            }
          } else if (sliceRoot.binding?.strength === 'extensible' && sliceRoot.binding.valueSet) {
            this.checkExtensible(sliceRoot.binding.valueSet, v, sliceRoot._origId ?? sliceRoot.id, sliceSource, issues);
          }
          const profiled = (sliceRoot.type ?? []).find((t) => t.profile?.length && (t.code === v.type || sliceRoot.type.length === 1));
          if (profiled && profiled.code !== 'Extension' && v.type !== 'Extension') {
            this.validateTypeProfiles(v, profiled.profile, sliceSource, issues, depth);
          }
        }
      } else {
        // Element whose type names a profile (not an extension: see validateExtensions).
        const profiledTypes = (e.type ?? []).filter((t) => t.profile?.length && t.code !== 'Extension');
        if (profiledTypes.length === 0) {
          continue;
        }
        for (const v of this.valuesAt(tv, rel)) {
          const t = profiledTypes.find((pt) => pt.code === v.type) ?? (profiledTypes.length === 1 && e.type.length === 1 ? profiledTypes[0] : undefined);
          if (t) {
            this.validateTypeProfiles(v, t.profile, source, issues, depth);
          }
        }
      }
    }
  }

  /**
   * Extensible binding: codes should come from the value set when one fits. A warning (as the
   * HL7 validator gives) when codings are present, the value set can be fully evaluated here,
   * and none of the codings is in it. Text-only values are accepted.
   */
  checkExtensible(vsUrl, v, elementId, source, issues) {
    let codings;
    if (v.type === 'CodeableConcept') {
      codings = v.value?.coding ?? [];
    } else if (v.type === 'Coding') {
      codings = [v.value];
    } else {
      return;
    }
    codings = codings.filter((c) => c?.code);
    if (codings.length === 0) {
      return;
    }
    const results = codings.map((c) => this.term.checkMembership(vsUrl, c.system, c.code));
    if (results.every((r) => r === 'no')) {
      const shown = codings.map((c) => `${c.system ?? '(no system)'}#${c.code}`).join(', ');
      issues.push({ severity: 'warning', path: v.path, message: `${shown} is not in the extensible value set ${stripVersion(vsUrl)} bound to ${elementId}`, source: `${source} binding` });
    }
  }

  validateTypeProfiles(v, profileUrls, source, issues, depth) {
    for (const p of profileUrls) {
      const psd = this.sd(p);
      if (!psd) {
        issues.push({ severity: 'warning', path: v.path, message: `type profile ${p} not available: value not checked against it`, source });
        continue;
      }
      if (psd.type !== v.type && !(psd.type === 'Quantity' && v.type === 'SimpleQuantity')) {
        continue;
      }
      this.validateAgainst({ ...v, type: psd.type }, psd, `${source} > ${psd.id ?? psd.name}`, issues, depth + 1);
    }
  }

  matchSlice(v, slicing) {
    for (const slice of slicing.slices) {
      if (
        slicing.discriminator.every((d) =>
          arrayify(getNestedProperty(v, d.path)).some((x) => matchDiscriminant(x, d, slice))
        )
      ) {
        return slice.name;
      }
    }
    return undefined;
  }

  /**
   * Every extension (at any depth, not inside Bundle entries) whose URL is absolute is validated
   * against its definition; an unknown definition is a warning (as the HL7 validator does for
   * extensions outside hl7.org).
   */
  validateExtensions(resource, rootPath, issues) {
    const walk = (obj, p) => {
      if (Array.isArray(obj)) {
        obj.forEach((x, i) => walk(x, `${p}[${i}]`));
        return;
      }
      if (!obj || typeof obj !== 'object') {
        return;
      }
      for (const [k, val] of Object.entries(obj)) {
        if ((k === 'extension' || k === 'modifierExtension') && Array.isArray(val)) {
          val.forEach((ext, i) => {
            const ep = `${p}.${k}[${i}]`;
            if (typeof ext?.url === 'string' && /^(https?|urn):/.test(ext.url)) {
              const sd = this.sd(ext.url);
              if (!sd || sd.type !== 'Extension') {
                const hl7 = ext.url.startsWith('http://hl7.org/');
                issues.push({ severity: hl7 ? 'error' : 'warning', path: ep, message: `unknown extension ${ext.url}${hl7 ? '' : ': not validated'}`, source: 'extensions' });
              } else {
                this.validateAgainst({ type: 'Extension', value: ext, path: ep }, sd, `extension ${sd.id ?? sd.name}`, issues, 1);
              }
            }
            walk(ext, ep);
          });
        } else if (k !== 'resource' || rootPath !== 'Bundle') {
          walk(val, `${p}.${k}`);
        }
      }
    };
    walk(resource, rootPath);
  }

  fhirJs(resource, issues) {
    let res;
    try {
      res = this.fhirjs.validate(resource);
    } catch (e) {
      issues.push({ severity: 'error', path: resource.resourceType, message: `FHIR.js failed: ${e.message}`, source: 'fhir.js' });
      return;
    }
    for (const m of res.messages ?? []) {
      // FHIR.js reports every preferred/extensible/example binding miss as a warning or info:
      // only its errors (required bindings, structure) are kept.
      if (m.severity !== 'error') {
        continue;
      }
      // FHIR.js does not see a primitive given only by its `_name` sibling (e.g. a required
      // MessageHeader.source.endpoint carrying just a data-absent-reason extension) and reports
      // "Missing property": valid FHIR JSON, and Medplum checks the cardinality itself.
      if (m.message === 'Missing property' && hasPrimitiveExtensionOnly(resource, m.location)) {
        continue;
      }
      issues.push({ severity: 'error', path: m.location, message: m.message, source: 'fhir.js' });
    }
  }

  /**
   * Validates one resource (not the Bundle wrapper): base definition, declared profiles,
   * extensions, FHIR.js. Returns issues (severity, path, message, source).
   */
  validateResource(original, { refMap } = {}) {
    const issues = [];
    const rt = original?.resourceType;
    // Inside a Bundle, urn:uuid references are replaced (in a copy) by `Type/id` of the entry
    // they point to, so that Medplum's reference target-type check sees the real type.
    const resource = refMap?.size ? rewriteReferences(original, refMap) : original;
    if (typeof rt !== 'string' || !this.defs.structureDefinitions.has(BASE_SD_PREFIX + rt)) {
      issues.push({ severity: 'error', path: String(rt ?? '(no resourceType)'), message: `unknown resource type ${JSON.stringify(rt)}`, source: 'base' });
      return issues;
    }
    const tv = { type: rt, value: resource, path: rt };
    {
      // (a) base R4 definition of the type
      try {
        for (const i of validateResource(resource)) {
          issues.push({ severity: i.severity, path: i.expression?.[0] ?? rt, message: issueMessage(i), source: 'base' });
        }
      } catch (e) {
        if (!(e instanceof OperationOutcomeError)) {
          throw e;
        }
        for (const i of e.outcome.issue ?? []) {
          issues.push({ severity: i.severity, path: i.expression?.[0] ?? rt, message: issueMessage(i), source: 'base' });
        }
      }
      this.deepPass(tv, this.sd(BASE_SD_PREFIX + rt), 'base', issues, 0);
    }
    // (b) declared profiles
    for (const [pi, raw] of (resource.meta?.profile ?? []).entries()) {
      const p = String(raw);
      const url = stripVersion(p);
      const version = p.includes('|') ? p.slice(p.indexOf('|') + 1) : undefined;
      const where = `${rt}.meta.profile[${pi}]`;
      let sd;
      if (url.startsWith(IG_SD_PREFIX)) {
        if (version !== undefined && version !== IG_VERSION) {
          issues.push({ severity: 'error', path: where, message: `profile not found: ${p} (only version ${IG_VERSION} of the Genomics Reporting IG is loaded)`, source: 'profile' });
          continue;
        }
        sd = this.defs.profiles.get(url);
      } else if (url.startsWith(BASE_SD_PREFIX)) {
        sd = this.sd(url);
      }
      if (!sd) {
        issues.push({ severity: 'error', path: where, message: `profile not found: ${p}`, source: 'profile' });
        continue;
      }
      if (sd.type !== rt) {
        issues.push({ severity: 'error', path: where, message: `profile ${url} is for ${sd.type}, not ${rt}`, source: 'profile' });
        continue;
      }
      if (sd.url === BASE_SD_PREFIX + rt) {
        continue; // the base definition, already checked
      }
      this.validateAgainst(tv, sd, `profile ${sd.id}`, issues, 0);
    }
    // extensions
    this.validateExtensions(resource, rt, issues);
    // empty values (Medplum misses them behind choice names such as valueString: "")
    checkEmpty(original, rt, issues);
    // (c) FHIR.js
    this.fhirJs(original, issues);
    for (let k = issues.length - 1; k >= 0; k--) {
      // A urn:uuid reference is resolved (or reported as dangling) by the Bundle checks; outside
      // a Bundle it cannot be resolved. Medplum's "Invalid reference: got "urn:uuid:..."" is
      // noise in both cases.
      if (/^Invalid reference: got "urn:/.test(issues[k].message)) {
        issues.splice(k, 1);
      }
    }
    for (const i of issues) {
      // Medplum reports a reference to the wrong resource type as a warning "to avoid breaking
      // existing code"; the HL7 validator makes it an error, and so do we when the type is
      // known (a literal `Type/id` reference, or a urn:uuid resolved inside the Bundle).
      const m = /^Invalid reference: got "([A-Za-z]+)"/.exec(i.message);
      if (i.severity === 'warning' && m && this.defs.structureDefinitions.has(BASE_SD_PREFIX + m[1])) {
        i.severity = 'error';
      }
    }
    return dedupe(issues);
  }
}

/** Is `Type.a[0].b` (a FHIR.js location) given in `resource` only as `_b`? */
function hasPrimitiveExtensionOnly(resource, location) {
  const segs = String(location ?? '').split('.').slice(1);
  if (segs.length === 0) {
    return false;
  }
  let cur = resource;
  for (const seg of segs.slice(0, -1)) {
    const m = /^([^[]+)(?:\[(\d+)\])?$/.exec(seg);
    if (!m || !cur || typeof cur !== 'object') {
      return false;
    }
    cur = cur[m[1]];
    if (m[2] !== undefined) {
      cur = Array.isArray(cur) ? cur[Number(m[2])] : undefined;
    }
  }
  const last = segs.at(-1);
  return !!cur && typeof cur === 'object' && cur[last] === undefined && cur['_' + last] !== undefined;
}

/**
 * FHIR JSON forbids empty strings, objects and arrays (and whitespace-only strings).
 * Bundle entries' resources are not descended into (they are validated on their own).
 */
function checkEmpty(resource, rootPath, issues) {
  const walk = (v, p) => {
    if (typeof v === 'string') {
      if (v.trim() === '') {
        issues.push({ severity: 'error', path: p, message: v === '' ? 'empty string value (not allowed in FHIR)' : 'string value has only whitespace (not allowed in FHIR)', source: 'json' });
      }
    } else if (Array.isArray(v)) {
      if (v.length === 0) {
        issues.push({ severity: 'error', path: p, message: 'empty array (not allowed in FHIR)', source: 'json' });
      }
      v.forEach((x, i) => walk(x, `${p}[${i}]`));
    } else if (v && typeof v === 'object') {
      if (Object.keys(v).length === 0) {
        issues.push({ severity: 'error', path: p, message: 'empty object (not allowed in FHIR)', source: 'json' });
      }
      for (const [k, x] of Object.entries(v)) {
        if (!(rootPath === 'Bundle' && k === 'resource')) {
          walk(x, `${p}.${k}`);
        }
      }
    }
  };
  walk(resource, rootPath);
}

function rewriteReferences(obj, refMap) {
  if (Array.isArray(obj)) {
    return obj.map((x) => rewriteReferences(x, refMap));
  }
  if (!obj || typeof obj !== 'object') {
    return obj;
  }
  const out = {};
  for (const [k, v] of Object.entries(obj)) {
    out[k] = k === 'reference' && typeof v === 'string' && refMap.has(v) ? refMap.get(v) : rewriteReferences(v, refMap);
  }
  return out;
}

/** FHIR pattern matching on JSON: every property of the pattern is present with a matching value. */
function jsonIncludes(value, pattern) {
  if (Array.isArray(pattern)) {
    return Array.isArray(value) && pattern.every((p) => value.some((v) => jsonIncludes(v, p)));
  }
  if (pattern && typeof pattern === 'object') {
    return !!value && typeof value === 'object' && !Array.isArray(value) && Object.entries(pattern).every(([k, p]) => jsonIncludes(value[k], p));
  }
  return value === pattern;
}

function jsonEquals(a, b) {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEquals(x, b[i]));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => jsonEquals(a[k], b[k]));
  }
  return a === b;
}

/** Drops exact duplicates (same severity, path and message) keeping the first source. */
function dedupe(issues) {
  const seen = new Set();
  const out = [];
  for (const i of issues) {
    const k = `${i.severity}\u0000${i.path}\u0000${i.message}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(i);
    }
  }
  return out;
}

const UUID_RE = /^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Collects every Reference.reference string in a resource, with its JSON path. */
function collectReferences(obj, p, out) {
  if (Array.isArray(obj)) {
    obj.forEach((x, i) => collectReferences(x, `${p}[${i}]`, out));
    return out;
  }
  if (!obj || typeof obj !== 'object') {
    return out;
  }
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'reference' && typeof v === 'string') {
      out.push({ path: `${p}.reference`, reference: v });
    } else {
      collectReferences(v, `${p}.${k}`, out);
    }
  }
  return out;
}

/**
 * Transaction-bundle checks. Returns issues, each with `entry` (index or undefined).
 * With `requireTransaction: false`, a Bundle of another type only gets the reference checks.
 */
export function checkTransactionBundle(bundle, { requireTransaction = true } = {}) {
  const issues = [];
  const add = (entry, severity, path, message) => issues.push({ entry, severity, path, message, source: 'bundle' });
  const isTx = bundle.type === 'transaction';
  if (!isTx && requireTransaction) {
    add(undefined, 'error', 'Bundle.type', `Bundle.type is ${JSON.stringify(bundle.type)}, expected "transaction"`);
  }
  const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
  if (entries.length === 0) {
    add(undefined, 'error', 'Bundle.entry', 'Bundle has no entries');
  }
  const fullUrls = new Map();
  entries.forEach((e, i) => {
    const p = `Bundle.entry[${i}]`;
    if (!e?.resource) {
      add(i, 'error', `${p}.resource`, 'entry has no resource');
    }
    if (isTx || requireTransaction) {
      if (!e?.fullUrl) {
        add(i, 'error', `${p}.fullUrl`, 'entry has no fullUrl');
      }
      if (!e?.request?.method) {
        add(i, 'error', `${p}.request.method`, 'entry has no request.method');
      }
      if (!e?.request?.url) {
        add(i, 'error', `${p}.request.url`, 'entry has no request.url');
      }
      if (e?.request?.method === 'POST' && e?.resource?.resourceType && e.request.url && e.request.url.split('?')[0] !== e.resource.resourceType) {
        add(i, 'error', `${p}.request.url`, `POST url "${e.request.url}" does not name the resource type ${e.resource.resourceType}`);
      }
    }
    if (e?.fullUrl) {
      if (e.fullUrl.startsWith('urn:uuid:') && !UUID_RE.test(e.fullUrl)) {
        add(i, 'error', `${p}.fullUrl`, `malformed urn:uuid fullUrl "${e.fullUrl}"`);
      }
      if (fullUrls.has(e.fullUrl)) {
        add(i, 'error', `${p}.fullUrl`, `duplicate fullUrl "${e.fullUrl}" (also entry[${fullUrls.get(e.fullUrl)}])`);
      } else {
        fullUrls.set(e.fullUrl, i);
      }
    }
  });
  entries.forEach((e, i) => {
    if (!e?.resource) {
      return;
    }
    for (const r of collectReferences(e.resource, e.resource.resourceType ?? 'Resource', [])) {
      if (r.reference.startsWith('urn:uuid:') || r.reference.startsWith('urn:oid:')) {
        if (!fullUrls.has(r.reference)) {
          add(i, 'error', r.path, `reference "${r.reference}" does not resolve to any entry's fullUrl`);
        }
      }
    }
  });
  return issues;
}
