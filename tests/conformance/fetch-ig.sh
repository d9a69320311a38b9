#!/usr/bin/env bash
# Fetches the HL7 Genomics Reporting IG package (hl7.fhir.uv.genomics-reporting@3.0.0) from the
# npm registry into tests/conformance/ig/, verifies the tarball against the pinned integrity and
# unpacks it to ig/package/. Idempotent: does nothing when ig/package/ is already there from a
# verified tarball. `npm install` of this package fails (its FHIR dependencies are not on npm), so
# it is fetched with `npm pack` instead.
set -euo pipefail

PKG=hl7.fhir.uv.genomics-reporting
VER=3.0.0
# npm view hl7.fhir.uv.genomics-reporting@3.0.0 dist.integrity
INTEGRITY='sha512-XNjaWxZ7ZJ3pb7FuMxNqgGjPtssigYADLNEOcAYRV2niLABCMapDdIjPy+exTfCCZGd6SOuvezNizbCtAze3IA=='

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IG="$HERE/ig"
TGZ="$IG/$PKG-$VER.tgz"
STAMP="$IG/package/.verified-integrity"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$INTEGRITY" && -f "$IG/package/package.json" ]]; then
  exit 0
fi

mkdir -p "$IG"
if [[ ! -f "$TGZ" ]]; then
  echo "fetch-ig: npm pack $PKG@$VER" >&2
  (cd "$IG" && npm pack "$PKG@$VER" --silent --no-fund --no-audit >/dev/null)
fi
if [[ ! -f "$TGZ" ]]; then
  echo "fetch-ig: npm pack did not produce $TGZ" >&2
  exit 1
fi

actual="sha512-$(openssl dgst -sha512 -binary "$TGZ" | base64 | tr -d '\n')"
if [[ "$actual" != "$INTEGRITY" ]]; then
  echo "fetch-ig: INTEGRITY MISMATCH for $TGZ" >&2
  echo "  expected $INTEGRITY" >&2
  echo "  got      $actual" >&2
  mv -f "$TGZ" "$TGZ.rejected"
  echo "  (tarball moved to $TGZ.rejected; nothing unpacked)" >&2
  exit 1
fi

tmp=$(mktemp -d "$IG/.unpack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tar xzf "$TGZ" -C "$tmp"
if [[ ! -f "$tmp/package/package.json" ]] || ! grep -q "\"version\" *: *\"$VER\"" "$tmp/package/package.json"; then
  echo "fetch-ig: $TGZ does not hold $PKG $VER" >&2
  exit 1
fi
rm -rf "$IG/package"
mv "$tmp/package" "$IG/package"
printf '%s' "$INTEGRITY" >"$STAMP"
echo "fetch-ig: $PKG@$VER verified and unpacked into $IG/package" >&2
