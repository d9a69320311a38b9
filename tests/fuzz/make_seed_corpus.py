#!/usr/bin/env python3
"""Writes the hand-made seeds of fixtures/fuzz/mllp_frame and fixtures/fuzz/hl7v2_parse.

Seeds are small inputs that reach each interesting path at once, so fuzzing starts from there
instead of rediscovering MSH. Run from anywhere; it rewrites only the seed-*.bin / seed-*.hl7
files it names and leaves crash reproducers (regress-*) alone.

    python3 tests/fuzz/make_seed_corpus.py
"""
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "fuzz"
SAMPLES = ROOT / "fixtures" / "hl7v2" / "samples"

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"

# fuzz_mllp_frame input: [flags][chunk sizes][stream]; flags = (max index << 4) | len(sizes).
# Max indices (kMaxFrameBytes in fuzz_mllp_frame.cpp): 0 = 1 MiB, 1 = 0, 2 = 1, 9 = 16, 15 = 4096.
def mllp(max_index, sizes, stream):
    assert len(sizes) < 16
    return bytes([max_index << 4 | len(sizes)]) + bytes(sizes) + stream


def frame(payload):
    return VT + payload + FS + CR


MSG = (b"MSH|^~\\&|LAB|ACME|ADAPTERD|HOSP|20240102030405||ORU^R01^ORU_R01|MSG0001|P|2.5.1\r"
       b"PID|1||12345^^^HOSP^MR||DOE^JANE\r"
       b"OBR|1||ORD1|81247-9^Master HL7 genetic variant reporting panel^LN\r"
       b"OBX|1|CWE|48018-6^Gene studied^LN||HGNC:1100^BRCA1^HGNC||||||F\r")


def mllp_seeds():
    sample = (SAMPLES / "msfc_ORU-R01-01.hl7").read_bytes()
    return {
        "seed-one-frame.bin": mllp(0, [], frame(MSG)),
        "seed-two-frames-3-byte-reads.bin": mllp(0, [3], frame(MSG) + frame(b"MSH|^~\\&|B")),
        "seed-odd-splits.bin": mllp(0, [1, 7, 0, 2, 64], frame(MSG) + frame(b"") + frame(b"x")),
        "seed-split-at-fs-cr.bin": mllp(0, [5, 1, 1], frame(b"abcd") + frame(b"efgh")),
        "seed-oversize.bin": mllp(9, [], frame(b"A" * 40) + frame(b"after")),
        "seed-exact-max-then-over.bin": mllp(9, [4], frame(b"B" * 16) + frame(b"C" * 17)),
        "seed-oversize-across-reads.bin": mllp(9, [5, 0], VT + b"D" * 10 + b"E" * 10 + FS + CR),
        "seed-max-zero.bin": mllp(1, [], frame(b"") + frame(b"x")),
        "seed-max-one.bin": mllp(2, [1], frame(b"y") + frame(b"zz")),
        "seed-vt-inside-frame.bin": mllp(0, [], VT + b"half a mess" + frame(b"whole")),
        "seed-vt-in-next-read.bin": mllp(0, [8], VT + b"partial" + VT + b"new" + FS + CR),
        "seed-many-vts.bin": mllp(0, [], VT * 200 + b"tail"),
        "seed-fs-without-cr.bin": mllp(0, [], VT + b"one" + FS + VT + b"two" + FS + b"x"),
        "seed-stray-fs-cr-outside.bin": mllp(0, [2], FS + CR + CR + frame(b"p") + FS),
        "seed-noise-around-frames.bin": mllp(0, [], b"GET / HTTP/1.1\r\n" + frame(MSG) + b"\r\n"),
        "seed-partial-at-end.bin": mllp(0, [], frame(b"done") + VT + b"MSH|cut"),
        "seed-unframed-hl7.bin": mllp(0, [], MSG),
        "seed-lf-and-crlf-payload.bin": mllp(0, [6], frame(MSG.replace(b"\r", b"\r\n"))),
        "seed-sample-framed.bin": mllp(15, [0x40, 0x13], frame(sample) + frame(sample[:100])),
    }


def hl7_seeds():
    msh = b"MSH|^~\\&|LAB|ACME|ADAPTERD|HOSP|20240102030405||ORU^R01^ORU_R01|%s|P|2.5.1"
    full_oru = (msh % b"FULL" + b"|||AL|NE||UNICODE UTF-8\r"
                b"SFT|Acme|1.0\rZSW|x\r"
                b"PID|1||P1\rPD1|\rPRT|1|AD\rNTE|1||patient note\rNK1|1|DOE^JOHN\rPV1|1|O\r"
                b"PV2|\rPRT|2|AD\rZPI|p\r"
                b"ORC|RE|ORD1\rOBR|1|ORD1||81247-9^panel^LN\rNTE|1||order note\rPRT|3|AD\r"
                b"TQ1|1\rTQ2|1\rCTD|1\r"
                b"OBX|1|ST|a^b^LN||value||||||F\rPRT|4|AD\rNTE|1||obs note\rZOB|z\r"
                b"FT1|1\rCTI|1\rSPM|1|S1\rOBX|2|NM|c^d^LN||4.5\rNTE|1||spm obs note\r"
                b"OBR|2|ORD2\rOBX|1|ST|e||f\rPID|2||P2\rOBR|1|ORD3\rDSC|1\rZEN|end\r")
    misplaced = (msh % b"MISPLACED" + b"\r"
                 b"OBX|1|ST|orphan\rSPM|1\rNTE|1||nobody\rPV1|1\rPD1|\rNK1|1\r"
                 b"ORC|1\rOBX|1|ST|no OBR\rORC|2\rNTE|1\rOBR|1\rTQ2|1\rTQ1|1\rNTE|late\r"
                 b"CTD|1\rCTD|2\rOBX|1\rFT1|1\rOBX|2\rSPM|1\rFT1|2\rPID|1\rPD1|\rPD1|\rPV1|\r"
                 b"PV1|\rPV2|\rPV2|\rSFT|late\rPRT|x\rOBX|3\rNTE|n\rPRT|late\rSPM|2\rPRT|s\r"
                 b"DSC|1\rOBX|after dsc\rDSC|2\r")
    escapes = (msh % b"ESC\\E\\1" + b"\r"
               b"OBX|1|FT|esc||\\F\\\\S\\\\T\\\\R\\\\E\\\\P\\ \\X41\\ \\XE9\\ \\XC3A9\\ \\X4\\ "
               b"\\XZZ\\ \\.br\\\\.sp2\\\\.in+4\\\\.ti-2\\\\.sk3\\\\.ce\\\\.fi\\\\.nf\\ "
               b"\\H\\bold\\N\\ \\C2842\\ \\M244241\\ \\Zvendor\\ \\\\ \\unterminated\r")
    return {
        "seed-minimal.hl7": msh % b"1" + b"\r",
        "seed-oru-every-group.hl7": full_oru,
        "seed-oru-misplaced.hl7": misplaced,
        "seed-escapes.hl7": escapes,
        "seed-truncation-char-v27.hl7":
            b"MSH|^~\\&#|A|B|C|D|20240101||ORU^R01|T27|P|2.7\rOBX|1|ST|x||a\\P\\b#c\r",
        "seed-msh2-three-chars.hl7": b"MSH|^~\\|A|B|C|D|20240101||ORU^R01|M3|P|2.5.1\rPID|1||a&b\r",
        "seed-msh2-two-chars.hl7": b"MSH|^~|A|B|C|D|20240101||ADT^A01|M2|P|2.3\rPID|1||a\\b\r",
        "seed-msh2-six-chars.hl7": b"MSH|^~\\&#!|A|B|C|D|20240101||ADT^A01|M6|P|2.3\r",
        "seed-msh2-duplicate.hl7": b"MSH|^^\\&|A|B|C|D|20240101||ADT^A01|D|P|2.3\r",
        "seed-msh2-letter.hl7": b"MSH|A~\\&|A|B|C|D|20240101||ADT^A01|L|P|2.3\r",
        "seed-msh1-missing.hl7": b"MSH\rPID|1\r",
        "seed-msh1-letter.hl7": b"MSHX^~\\&XAXB\r",
        "seed-other-field-sep.hl7": b"MSH#^~\\&#A#B#C#D#20240101##ORU^R01#OF#P#2.4\rPID#1##x|y\r",
        "seed-bom.hl7": b"\xef\xbb\xbf" + msh % b"BOM" + b"\r",
        "seed-blank-lines-lf.hl7": b"\n\r\n" + (msh % b"LF" + b"\nPID|1\n\nOBX|1\n"),
        "seed-crlf.hl7": (msh % b"CRLF" + b"\r\nPID|1\r\n"),
        "seed-latin1-declared.hl7":
            msh % b"L\xe91" + b"||||||8859/1\rPID|1||M\xfcller^J\xf6rg\rNTE|1||\xa9\\XE9\\\r",
        "seed-latin1-undeclared.hl7": msh % b"LU" + b"\rPID|1||M\xfcller\r",
        "seed-utf8-control-id.hl7": msh % b"\xc3\xa9\xe2\x82\xac" + b"||||||UNICODE UTF-8\r",
        "seed-utf8-invalid.hl7": msh % b"BAD" + b"\rPID|1||\xed\xa0\x80\xc0\xaf\r",
        "seed-charset-unsupported.hl7": msh % b"CS" + b"||||||EBCDIC~UTF-8\r",
        "seed-charset-ascii-spaced.hl7": msh % b"CSA" + b"||||||  ascii \r",
        "seed-enhanced-v23.hl7":
            b"MSH|^~\\&|A|B|C|D|20240101||ORU^R01|E23|P|2.3|||ER|AL\rOBX|1\r",
        "seed-quoted-nulls.hl7": msh % b"QN" + b"\rPID|1|\"\"|\"\"^\"\"~x|\r",
        "seed-repetitions-subcomponents.hl7":
            msh % b"RS" + b"\rPID|1||a1&a2^b~c1&c2&c3^d^e~~f&|\rOBX|1|CX|||r1~r2~r3^x&y\r",
        "seed-bad-segment-id.hl7": msh % b"BS" + b"\rpid|1\rPI|x\rP\r",
        "seed-segment-no-fields.hl7": msh % b"NF" + b"\rPID\rZZ1\rNTE|\r",
        "seed-second-msh.hl7": msh % b"A" + b"\rPID|1\r" + msh % b"B" + b"\rPID|2\r",
        "seed-batch-in-message.hl7": msh % b"BIM" + b"\rBTS|1\r",
        "seed-batch-file.hl7": (b"FHS|^~\\&|A|B\rBHS|^~\\&|A|B\r" + msh % b"B1" + b"\rPID|1\r" +
                                msh % b"B2" + b"\rPID|2\rBTS|2\rFTS|1\r"),
        "seed-batch-bhs-only.hl7": b"BHS|^~\\&\r" + msh % b"B1" + b"\rBTS|1\r",
        "seed-batch-count-wrong.hl7": b"BHS|^~\\&\r" + msh % b"B1" + b"\rBTS|7\r",
        "seed-batch-count-not-number.hl7": b"BHS|^~\\&\r" + msh % b"B1" + b"\rBTS|x1\r",
        "seed-batch-nested-bhs.hl7": b"BHS|\rBHS|\r" + msh % b"N" + b"\rBTS|\rBTS|\r",
        "seed-batch-bts-alone.hl7": msh % b"X" + b"\rBTS|1\r",
        "seed-batch-msh-outside-bhs.hl7": b"FHS|^~\\&\r" + msh % b"O" + b"\rFTS|0\r",
        "seed-batch-after-fts.hl7": b"FHS|\rBHS|\r" + msh % b"F" + b"\rBTS|1\rFTS|1\rPID|1\r",
        "seed-batch-other-sep.hl7": b"BHS#^~\\&\rMSH#^~\\&#A\rBTS#1\r",
        "seed-batch-segment-before-msh.hl7": b"BHS|\rPID|1\r" + msh % b"S" + b"\rBTS|1\r",
        "seed-not-hl7.hl7": b"{\"resourceType\": \"Bundle\"}\n",
        "seed-empty.hl7": b"",
        "seed-only-newlines.hl7": b"\r\n\r\n",
    }


def write(directory, seeds):
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in seeds.items():
        (directory / name).write_bytes(data)


if __name__ == "__main__":
    write(FIXTURES / "mllp_frame", mllp_seeds())
    write(FIXTURES / "hl7v2_parse", hl7_seeds())
