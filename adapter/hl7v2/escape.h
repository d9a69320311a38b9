// HL7 v2 escape sequences: decoding field text to UTF-8 and encoding text back.
//
// Decoding rules (documented in README.md, "HL7 v2 escape sequences"):
//   \F\ \S\ \T\ \R\ \E\ (\P\ in v2.7+)  -> the delimiter character itself
//   \Xhh..\                              -> the bytes, read in the message's character set;
//                                           bytes that are not valid there stay as written
//   \.br\                                -> line feed
//   \.sp\, \.spN\                        -> line feed (N + 0 blank lines are not synthesised)
//   \.fi\ \.nf\ \.in±N\ \.ti±N\ \.skN\ \.ce\ -> removed: layout only, no text
//   \H\ \N\                              -> removed: highlighting only; the text between them is
//                                           kept intact (never "HxN" as some parsers produce)
//   \Cxxyy\ \Mxxyyzz\ \Zxx\ and any other or unterminated sequence
//                                        -> kept verbatim, escape characters included, so no
//                                           information is lost
#pragma once

#include <string>
#include <string_view>

#include "hl7v2/types.h"

namespace adapter::hl7v2 {

// Appends the decoded text of `raw` (one field, component or subcomponent, already split).
void append_decoded(std::string& out, std::string_view raw, const Delimiters& d, Charset cs);

// True when `raw` contains the escape character, i.e. decoding may change it.
inline bool needs_decoding(std::string_view raw, const Delimiters& d) {
  return d.escape != '\0' && raw.find(d.escape) != std::string_view::npos;
}

// Appends `text` escaped so that it can sit in a field, component or subcomponent: delimiters
// become \F\ \S\ \T\ \R\ \E\ (\P\), a line feed becomes \.br\ and a carriage return \X0D\.
// Without an escape character (MSH-2 declares none) delimiters, CR and LF become spaces.
void append_escaped(std::string& out, std::string_view text, const Delimiters& d);

}  // namespace adapter::hl7v2
