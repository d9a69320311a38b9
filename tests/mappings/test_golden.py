"""Properties of the shipped mappings over the golden cases in fixtures/mappings, computed from
each input with a small parser of our own (not the adapter's), never from the expected files:

- every variant group of a genetic input becomes exactly one Variant, carrying the gene, HGVS and
  allele rows of its group (an HGVS row that is not HGVS becomes a note on that Variant);
- every OBX with a value in a laboratory input becomes an Observation, report text, or a line of
  the unmapped report;
- every <variant> of a QCI XML input becomes one Variant with its gene, HGVS, alleles, genotype
  and allele fraction (the percentage / 100), an implication where it has an assessment and a
  molecular consequence where it has a translation impact or function;
- every short variant, copy-number alteration and rearrangement of a FoundationOne ResultsReport
  becomes one Variant, TMB and MSI become MolecularBiomarkers, every therapy a
  TherapeuticImplication derived from a Variant of its gene, also after the attribute and
  namespace drift seen between report versions;
- translating the same input twice gives byte-identical output.

Run by CTest (tests/mappings/CMakeLists.txt) with ADAPTERD and REPO_ROOT set.
"""
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET
from decimal import Decimal

ADAPTERD = os.environ.get("ADAPTERD", "")
ROOT = os.environ.get("REPO_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
CASES = os.path.join(ROOT, "fixtures", "mappings")

# Rows that describe a variant (DOMAIN.md §2.3, §1.3): HGVS, alleles, positions, display name,
# variant assessment, ISCN, structural bounds. A sub-ID group holding one of them is a variant.
VARIANT_CODES = {"48004-6", "48005-3", "81290-9", "69547-8", "69551-0", "81254-5", "47998-0",
                 "69548-6", "81291-7", "81301-4", "81302-2"}
HGVS_CODES = {"48004-6", "48005-3", "81290-9"}
ALLELE_CODES = {"69547-8", "69551-0"}
GENE = "48018-6"
HGVS = re.compile(r"^([A-Za-z]{2,4}_?[0-9]+(\.[0-9]+)?(\([^)]*\))?:)?[cgmnrp]\.\S+$")
GR = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"


class Hl7:
    """Just enough HL7 v2: segments, fields, first-repetition components (delimiters from MSH)."""

    def __init__(self, data):
        text = data.decode("utf-8-sig")
        lines = [l for l in re.split(r"\r\n|\r|\n", text) if l.strip()]
        self.field_sep = lines[0][3]
        self.comp_sep, self.rep_sep = lines[0][4], lines[0][5]
        self.sub_sep = lines[0][7] if len(lines[0]) > 7 else "&"
        self.segments = []
        for line in lines:
            fields = line.split(self.field_sep)
            if fields[0] == "MSH":
                fields = ["MSH", self.field_sep] + fields[1:]
            self.segments.append(fields)

    def field(self, seg, n):
        return seg[n] if n < len(seg) else ""

    def component(self, seg, n, c):
        rep = self.field(seg, n).split(self.rep_sep)[0]
        parts = rep.split(self.comp_sep)
        return parts[c - 1] if c - 1 < len(parts) else ""

    def observations(self):
        """(order number, OBX ordinal in the message, segment) for every OBX."""
        order, ordinal = 0, 0
        for seg in self.segments:
            if seg[0] == "OBR":
                order += 1
            elif seg[0] == "OBX":
                ordinal += 1
                yield order, ordinal, seg


    def nested_suffixes(self):
        """OBR-nested grouping: order number -> identifier prefix of its variant groups ("" for a
        top-level order; "obr2" for the first child of its parent, and so on). A child names its
        parent in OBR-29 (placer ^ filler), matched against an earlier OBR-2.1 / OBR-3.1."""
        obrs = [s for s in self.segments if s[0] == "OBR"]
        parent, children, out = {}, {}, {}
        for i, obr in enumerate(obrs, start=1):
            placer, filler = self.sub(obr, 29, 1, 1), self.sub(obr, 29, 2, 1)
            for j, earlier in enumerate(obrs[:i - 1], start=1):
                if j in parent:
                    continue
                if (placer and placer == self.component(earlier, 2, 1)) or \
                        (filler and filler == self.component(earlier, 3, 1)):
                    parent[i] = j
                    children.setdefault(j, []).append(i)
                    break
        for i in range(1, len(obrs) + 1):
            out[i] = "obr%d" % (children[parent[i]].index(i) + 2) if i in parent else ""
        return out

    def sub(self, seg, n, c, s):
        parts = self.component(seg, n, c).split(self.sub_sep)
        return parts[s - 1] if s - 1 < len(parts) else ""


def read(path):
    with open(path, "rb") as f:
        return f.read()


def group_key(sub_id):
    """OBX-4 to its variant group: 2a -> 2a, 1a.a -> 1a, 1.a -> 1a."""
    head, _, rest = sub_id.partition(".")
    if head.isdigit() and rest:
        return head + rest.split(".")[0]
    return head


def translate(path, explain=True, supersedes=False):
    args = [ADAPTERD, "translate"] + (["--explain"] if explain else []) + (["--supersedes"] if supersedes else []) + [path]
    run = subprocess.run(args, cwd=ROOT, capture_output=True, timeout=60)
    return run.returncode, run.stdout, run.stderr.decode()


def unmapped_paths(stderr):
    """The unmapped report of `translate --explain`: 'OBX[4]-5.1', ... (the part before ' = ')."""
    out = []
    for line in stderr.splitlines():
        m = re.match(r"^.*?:   (\S+) = ", line)
        if m:
            out.append(m.group(1))
    return out


def cases(prefix):
    names = sorted(n for n in os.listdir(CASES) if n.startswith(prefix))
    out = []
    for n in names:
        for input_name in ("input.hl7", "input.xml"):
            path = os.path.join(CASES, n, input_name)
            if os.path.exists(path):
                out.append((n, path))
                break
    return out


def resources(bundle, kind):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def has_profile(resource, name):
    return GR + name in resource.get("meta", {}).get("profile", [])


def component(variant, code):
    return [c for c in variant.get("component", [])
            if any(x.get("code") == code for x in c["code"].get("coding", []))]


class GeneticCases(unittest.TestCase):
    def test_there_are_genetic_cases(self):
        self.assertGreaterEqual(len(cases("genetic-")), 5)

    def test_one_variant_per_variant_group_with_its_gene_hgvs_and_allele_rows(self):
        for name, path in cases("genetic-"):
            with self.subTest(case=name):
                msg = Hl7(read(path))
                groups = {}
                for order, _, obx in msg.observations():
                    key = (order, group_key(msg.field(obx, 4)))
                    groups.setdefault(key, []).append(obx)
                variant_groups = {k: rows for k, rows in groups.items()
                                  if any(msg.component(r, 3, 1) in VARIANT_CODES for r in rows)}
                self.assertGreater(len(variant_groups), 0)

                status, out, err = translate(path)
                self.assertEqual(status, 0, err)
                bundle = json.loads(out)
                variants = [o for o in resources(bundle, "Observation") if has_profile(o, "variant")]
                self.assertEqual(len(variants), len(variant_groups), "Variants vs variant groups")

                nested = msg.nested_suffixes()
                for (order, key), rows in variant_groups.items():
                    if nested.get(order):
                        key = nested[order] + ("-" + key if key else "")
                    matching = [v for v in variants
                                if any(i["value"].endswith("/variant/" + key) for i in v["identifier"])]
                    self.assertEqual(len(matching), 1, "group %s" % key)
                    v = matching[0]
                    notes = " ".join(n["text"] for n in v.get("note", []))
                    for r in rows:
                        code = msg.component(r, 3, 1)
                        coded = msg.field(r, 2) in ("CWE", "CE", "CNE")
                        value = msg.component(r, 5, 1) if coded else msg.field(r, 5)
                        if code == GENE and not value.startswith("HGNC:0000"):
                            codes = [c["code"] for comp in component(v, GENE)
                                     for c in comp["valueCodeableConcept"].get("coding", [])]
                            self.assertIn(value, codes, "gene in group %s" % key)
                        if code in HGVS_CODES and value:
                            if HGVS.match(value):
                                codes = [c["code"] for comp in component(v, code)
                                         for c in comp["valueCodeableConcept"]["coding"]]
                                self.assertEqual(codes, [value], "%s in group %s" % (code, key))
                            else:
                                self.assertEqual(component(v, code), [])
                                self.assertIn(value, notes, "non-HGVS %s kept as a note" % code)
                        if code in ALLELE_CODES and value not in ("", "."):
                            got = [c.get("valueString") for c in component(v, code)]
                            self.assertEqual(got, [value], "%s in group %s" % (code, key))

    def test_implications_derive_from_their_variant(self):
        for name, path in cases("genetic-"):
            with self.subTest(case=name):
                status, out, err = translate(path, explain=False)
                bundle = json.loads(out)
                urls = {e["fullUrl"] for e in bundle["entry"]
                        if has_profile(e["resource"], "variant")}
                for o in resources(bundle, "Observation"):
                    if has_profile(o, "diagnostic-implication"):
                        self.assertNotIn("valueCodeableConcept", o)
                        refs = [d["reference"] for d in o["derivedFrom"]]
                        self.assertTrue(refs and all(r in urls for r in refs))


class LaboratoryCases(unittest.TestCase):
    def test_there_are_laboratory_cases(self):
        self.assertGreaterEqual(len(cases("lab-")), 5)

    def test_every_obx_with_a_value_is_mapped_or_reported(self):
        for name, path in cases("lab-"):
            with self.subTest(case=name):
                msg = Hl7(read(path))
                with_value = [(order, n, obx) for order, n, obx in msg.observations()
                              if msg.field(obx, 5) not in ("", '""')]
                # Coded rows inside an order must be Observations (ED, an embedded document, goes
                # to the report); the rest (before any OBR, no code) may be text or reported.
                must_map = sum(1 for order, _, obx in with_value
                               if order > 0 and msg.component(obx, 3, 1) and msg.field(obx, 2) != "ED")
                status, out, err = translate(path)
                self.assertEqual(status, 0, err)
                bundle = json.loads(out)
                unmapped = unmapped_paths(err)
                observations = [o for o in resources(bundle, "Observation") if "meta" not in o]
                report_text = ""
                for r in resources(bundle, "DiagnosticReport"):
                    for form in r.get("presentedForm", []):
                        if form["contentType"].startswith("text/plain"):
                            report_text += base64.b64decode(form["data"]).decode()

                used = set()

                def observation_for(obx):
                    """An Observation not yet matched with this row's code and value."""
                    code = msg.component(obx, 3, 1)
                    value = msg.component(obx, 5, 2 if msg.field(obx, 2) == "SN" else 1)
                    for i, o in enumerate(observations):
                        if i in used or not any(c.get("code") == code for c in o["code"].get("coding", [])):
                            continue
                        q = o.get("valueQuantity", {}).get("value")
                        if (q is not None and same_number(q, value)) or (q is None and value in json.dumps(o)):
                            used.add(i)
                            return o
                    return None

                as_observation = as_text = as_unmapped = 0
                for _, n, obx in with_value:
                    label = "OBX-5" if n == 1 else "OBX[%d]-5" % n
                    if msg.component(obx, 3, 1) and observation_for(obx):
                        as_observation += 1
                    elif not msg.field(obx, 3) and msg.field(obx, 5) in report_text:
                        as_text += 1
                    elif any(p == label or p.startswith(label + ".") or p.startswith(label + "[")
                             for p in unmapped):
                        as_unmapped += 1
                    else:
                        self.fail("%s: OBX %d with a value is neither mapped nor reported" % (name, n))
                self.assertEqual(as_observation + as_text + as_unmapped, len(with_value))
                self.assertEqual(as_observation, must_map)
                # No Observation is invented: at most one per OBX.
                self.assertLessEqual(len(observations), sum(1 for _ in msg.observations()))


# QCI's genotype (DOMAIN.md §4.2): Het -> LA6706-1, Hom -> LA6705-3.
QCI_ALLELIC_STATES = {"het": "LA6706-1", "hom": "LA6705-3"}


def text_of(element, path):
    return (element.findtext(path) or "").strip()


class QciCases(unittest.TestCase):
    """QCI XML reports (root <report>), asserted from the input XML: one Variant per <variant>
    with its gene, HGVS, transcript, protein, alleles, genotype, allele fraction (QCI's
    percentage / 100) and total depth; one DiagnosticImplication per assessed variant, derived
    from it; one MolecularConsequence per variant with a translation impact or a function."""

    def qci_cases(self):
        return [(n, p) for n, p in cases("xml-") if ET.parse(p).getroot().tag == "report"]

    def test_there_are_qci_cases(self):
        self.assertGreater(len(self.qci_cases()), 0)
        # The full sample is among them: all 22 variants, not only a trimmed copy.
        self.assertIn(22, [len(ET.parse(p).getroot().findall("variant")) for _, p in self.qci_cases()])

    def check_variant(self, element, variant):
        self.assertEqual(component(variant, GENE)[0]["valueCodeableConcept"]["text"], text_of(element, "gene"))
        transcript = text_of(element, "transcriptchange/transcript")
        hgvs = component(variant, "48004-6")[0]["valueCodeableConcept"]["coding"][0]["code"]
        self.assertEqual(hgvs, transcript + ":" + text_of(element, "transcriptchange/change"))
        self.assertEqual(component(variant, "51958-7")[0]["valueCodeableConcept"]["coding"][0]["code"], transcript)
        protein = text_of(element, "proteinchange/protein")
        p_hgvs = component(variant, "48005-3")
        if protein:
            self.assertEqual(p_hgvs[0]["valueCodeableConcept"]["coding"][0]["code"],
                             protein + ":" + text_of(element, "proteinchange/change"))
        else:
            self.assertEqual(p_hgvs, [])
        # An empty <reference/> (insertion) or <alternate/> (deletion) gives no component.
        for code, path in (("69547-8", "reference"), ("69551-0", "alternate")):
            alleles = [c["valueString"] for c in component(variant, code)]
            self.assertEqual(alleles, [text_of(element, path)] if text_of(element, path) else [])
        state = component(variant, "53034-5")[0]["valueCodeableConcept"]["coding"][0]["code"]
        self.assertEqual(state, QCI_ALLELIC_STATES[text_of(element, "genotype").lower()])
        # The allele fraction is QCI's percentage / 100, exactly (decimal, not float, arithmetic).
        fraction = component(variant, "81258-6")[0]["valueQuantity"]
        self.assertEqual(fraction["value"], Decimal(text_of(element, "allelefraction")) / 100)
        self.assertEqual(fraction["code"], "1")
        self.assertEqual(component(variant, "81254-5")[0]["valueRange"]["low"]["value"],
                         Decimal(text_of(element, "position")))
        # readDepth is the total depth at the locus, not allelic-read-depth: a note.
        self.assertEqual(component(variant, "82121-5"), [])
        notes = [n["text"] for n in variant.get("note", [])]
        self.assertIn("Total read depth at the locus: " + text_of(element, "readDepth"), notes)
        if text_of(element, "dbsnp"):
            self.assertIn(text_of(element, "dbsnp"), [c["valueCodeableConcept"].get("coding", [{}])[0].get("code")
                                                      for c in component(variant, "81252-9")])

    def check_report(self, root, bundle):
        urls = {id(e["resource"]): e["fullUrl"] for e in bundle["entry"]}
        observations = resources(bundle, "Observation")
        variants = [o for o in observations if has_profile(o, "variant")]
        elements = root.findall("variant")
        self.assertEqual(len(variants), len(elements))
        for element, variant in zip(elements, variants):
            with self.subTest(gene=text_of(element, "gene")):
                self.check_variant(element, variant)

        implications = [o for o in observations if has_profile(o, "diagnostic-implication")]
        assessed = [(v, el) for v, el in zip(variants, elements) if text_of(el, "assessment")]
        self.assertEqual(len(implications), len(assessed))
        for implication, (variant, element) in zip(implications, assessed):
            self.assertEqual(implication["derivedFrom"], [{"reference": urls[id(variant)]}])
            self.assertNotIn("valueCodeableConcept", implication)
            significance = component(implication, "53037-8")[0]["valueCodeableConcept"]
            self.assertEqual(significance["text"], text_of(element, "assessment"))
            self.assertEqual([c["valueCodeableConcept"]["text"] for c in component(implication, "81259-4")],
                             [p.text.strip() for p in element.findall("phenotype")])

        consequences = [o for o in observations if has_profile(o, "molecular-consequence")]
        with_consequence = [v for v, el in zip(variants, elements)
                            if text_of(el, "proteinchange/translationimpact") or text_of(el, "function")]
        self.assertEqual([c["derivedFrom"] for c in consequences],
                         [[{"reference": urls[id(v)]}] for v in with_consequence])

        report = resources(bundle, "DiagnosticReport")[0]
        self.assertTrue(has_profile(report, "genomic-report"))
        self.assertEqual(report["status"], "final" if text_of(root, "review_state").upper() == "FINAL" else "preliminary")
        self.assertEqual(report.get("conclusion"), text_of(root, "interpretation") or None)
        results = [r["reference"] for r in report["result"]]
        self.assertEqual(set(results), {urls[id(o)] for o in variants + implications + consequences})
        self.assertEqual(len(results), len(set(results)))

    def test_every_variant_becomes_a_variant_with_its_implication(self):
        for name, path in self.qci_cases():
            with self.subTest(case=name):
                status, out, err = translate(path)
                self.assertEqual(status, 0, err)
                self.assertNotIn("error:", err)
                self.check_report(ET.parse(path).getroot(), json.loads(out, parse_float=Decimal))

    def test_allele_fractions_below_one_percent_and_not_numbers(self):
        """0.5 % is 0.005, not 0.5; a value that is no percentage gives a warning and no
        component, never a wrong fraction."""
        name, path = self.qci_cases()[0]
        text = read(path).decode()
        fractions = re.findall(r"<allelefraction>([^<]*)</allelefraction>", text)
        self.assertGreaterEqual(len(fractions), 2)
        edited = text.replace("<allelefraction>" + fractions[0] + "<", "<allelefraction>0.5<", 1)
        edited = edited.replace("<allelefraction>" + fractions[1] + "<", "<allelefraction>n/a<", 1)
        work = tempfile.mkdtemp()
        try:
            edited_path = os.path.join(work, "input.xml")
            with open(edited_path, "w") as f:
                f.write(edited)
            status, out, err = translate(edited_path)
            self.assertEqual(status, 0, err)
            variants = [o for o in resources(json.loads(out, parse_float=Decimal), "Observation")
                        if has_profile(o, "variant")]
            self.assertEqual(component(variants[0], "81258-6")[0]["valueQuantity"]["value"], Decimal("0.005"))
            self.assertEqual(component(variants[1], "81258-6"), [])
            self.assertIn("warning: allele fraction is not a percentage from 0 to 100", err)
        finally:
            shutil.rmtree(work)


FMI_RR = "{http://integration.foundationmedicine.com/reporting}"
FMI_CALLS = ("short-variant", "copy-number-alteration", "rearrangement")


def local(element):
    return element.tag.rpartition("}")[2]


def fmi_calls(root):
    """The variant-report's calls in document order, whatever namespace the variant-report is in."""
    return [e for e in root.iter() if local(e) in FMI_CALLS]


def fmi_gene(call):
    return call.get("gene") or call.get("targeted-gene") or call.get("target-gene")


class FoundationOneCases(unittest.TestCase):
    """FoundationOne ResultsReports (root rr:ResultsReport): asserted from the input XML."""

    def fmi_cases(self):
        return [(n, p) for n, p in cases("xml-")
                if ET.parse(p).getroot().tag == FMI_RR + "ResultsReport"]

    def test_there_is_a_foundation_one_case(self):
        self.assertGreater(len(self.fmi_cases()), 0)

    def check_report(self, root, bundle):
        urls = {id(e["resource"]): e["fullUrl"] for e in bundle["entry"]}
        observations = resources(bundle, "Observation")
        variants = [o for o in observations if has_profile(o, "variant")]
        calls = fmi_calls(root)
        self.assertGreater(len(calls), 0)
        self.assertEqual(len(variants), len(calls))
        for call, variant in zip(calls, variants):
            kind = local(call)
            genes = [c["valueCodeableConcept"]["text"] for c in component(variant, GENE)]
            self.assertEqual(genes[0], fmi_gene(call), kind)
            if kind == "short-variant":
                hgvs = component(variant, "48004-6")[0]["valueCodeableConcept"]["coding"][0]["code"]
                self.assertTrue(hgvs.endswith("c." + call.get("cds-effect")), hgvs)
                if call.get("allele-fraction"):
                    fraction = component(variant, "81258-6")[0]["valueQuantity"]["value"]
                    self.assertTrue(same_number(fraction, call.get("allele-fraction")))
            elif kind == "copy-number-alteration":
                copies = component(variant, "82155-3")[0]["valueQuantity"]["value"]
                self.assertTrue(same_number(copies, call.get("copy-number")))
                self.assertEqual(len(component(variant, "48019-4")), 1)
            else:
                other = call.get("other-gene")
                if other and other.upper() not in ("N/A", "NA"):
                    self.assertEqual(genes[1:], [other])
        report = resources(bundle, "DiagnosticReport")[0]
        self.assertTrue(has_profile(report, "genomic-report"))
        results = {r["reference"] for r in report["result"]}
        self.assertLessEqual({urls[id(v)] for v in variants}, results)

        biomarkers = [o for o in observations if has_profile(o, "molecular-biomarker")]
        codes = {o["code"]["coding"][0]["code"]: o for o in biomarkers}
        tmb = [e for e in root.iter() if local(e) == "tumor-mutation-burden"]
        msi = [e for e in root.iter() if local(e) == "microsatellite-instability"]
        self.assertEqual(len(biomarkers), len(tmb) + len(msi))
        for element in tmb:
            self.assertTrue(same_number(codes["94076-7"]["valueQuantity"]["value"], element.get("score")))
        for element in msi:
            self.assertEqual(codes["81695-9"]["valueCodeableConcept"]["text"], element.get("status"))
        self.assertLessEqual({urls[id(b)] for b in biomarkers}, results)

        # Every therapy of the FinalReport names an alteration the variant-report called (true of
        # the shipped sample): one TherapeuticImplication each, derived from a Variant of that gene.
        therapies = [(gene.findtext("Name"), t) for gene in root.iter("Gene") if gene.find("Name") is not None
                     for t in gene.iter("Therapy")]
        implications = [o for o in observations if has_profile(o, "therapeutic-implication")]
        self.assertEqual(len(implications), len(therapies))
        by_url = {urls[id(v)]: v for v in variants}
        for (gene, therapy), implication in zip(therapies, implications):
            source = by_url[implication["derivedFrom"][0]["reference"]]
            self.assertIn(gene, [c["valueCodeableConcept"]["text"] for c in component(source, GENE)])
            drug = component(implication, "51963-7")[0]["valueCodeableConcept"]["text"]
            self.assertEqual(drug, therapy.findtext("GenericName") or therapy.findtext("Name"))

    def test_every_call_becomes_a_variant_and_tmb_msi_biomarkers(self):
        for name, path in self.fmi_cases():
            with self.subTest(case=name):
                status, out, err = translate(path)
                self.assertEqual(status, 0, err)
                self.check_report(ET.parse(path).getroot(), json.loads(out))

    def test_report_version_drift_maps_the_same_calls(self):
        """ResultsReport 2.1 / variant-report 2.2 spellings: targeted-gene, no equivocal, no
        namespace on the variant-report, odd positions. Mapped without errors, same properties."""
        for name, path in self.fmi_cases():
            with self.subTest(case=name):
                text = read(path).decode()
                drifted = (text.replace('target-gene="', 'targeted-gene="')
                               .replace(' equivocal="false"', '')
                               .replace('xmlns="http://foundationmedicine.com/compbio/variant-report-external"', '')
                               .replace('position="chr1:', 'position="1:', 1)
                               .replace('pos1="ch17:', 'pos1="chr17:'))
                self.assertNotEqual(drifted, text)
                work = tempfile.mkdtemp()
                try:
                    drifted_path = os.path.join(work, "input.xml")
                    with open(drifted_path, "w") as f:
                        f.write(drifted)
                    status, out, err = translate(drifted_path)
                    self.assertEqual(status, 0, err)
                    self.assertNotIn("error:", err)
                    self.check_report(ET.parse(drifted_path).getroot(), json.loads(out))
                finally:
                    shutil.rmtree(work)


def same_number(a, b):
    try:
        return float(a) == float(b)
    except ValueError:
        return False


class Supersedes(unittest.TestCase):
    """`translate --supersedes` maps as the daemon maps a later message about a report already sent:
    exactly what the golden cases with {"supersedes": true} in their source.json expect, and
    different from the same input without it (results as conditional updates)."""

    def test_translate_supersedes_gives_the_cases_expected_bundle(self):
        found = 0
        for name, path in cases(""):
            source = os.path.join(CASES, name, "source.json")
            if not os.path.exists(source) or os.path.exists(os.path.join(CASES, name, "feed.json")):
                continue
            with open(source) as f:
                if not json.load(f).get("supersedes"):
                    continue
            found += 1
            with self.subTest(case=name):
                code, out, err = translate(path, explain=False, supersedes=True)
                self.assertEqual(code, 0, err)
                with open(os.path.join(CASES, name, "expected.json"), "rb") as f:
                    self.assertEqual(json.loads(out), json.loads(f.read()))
                plain = json.loads(translate(path, explain=False)[1])
                methods = [e["request"]["method"] for e in json.loads(out)["entry"]]
                self.assertIn("PUT", methods)
                self.assertNotIn("PUT", [e["request"]["method"] for e in plain["entry"]])
        self.assertGreaterEqual(found, 2)


class Determinism(unittest.TestCase):
    def test_translating_twice_gives_identical_bytes(self):
        for name, path in cases(""):
            with self.subTest(case=name):
                first = translate(path, explain=False)
                second = translate(path, explain=False)
                self.assertEqual(first[1], second[1])
                self.assertEqual(first[0], second[0])


if __name__ == "__main__":
    unittest.main()
