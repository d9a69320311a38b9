import { Validator } from './lib/validator.mjs';
const v = new Validator();
const sd = v.sd('http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/diagnostic-implication');
const ids = sd.snapshot.element.map(e=>e.id).filter(i=>i.startsWith('Observation.component'));
console.log(ids.slice(0,20));
const s = v.schema(sd);
console.log(Object.keys(s.elements).filter(k=>k.startsWith('component')), s.innerTypes.map(t=>t.name+':'+t.path));
const inner = s.innerTypes.find(t=>t.path==='Observation.component');
console.log(Object.keys(inner.elements), inner.elements.extension.slicing);
