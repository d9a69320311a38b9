// Basic HL7 v2 vocabulary shared by the parser, the encoder and the ACK builder.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/errc.h"

namespace adapter::hl7v2 {

// The delimiters a message declares in MSH-1 and MSH-2.
struct Delimiters {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';       // '\0' when MSH-2 declares none: escapes are then not decoded
  char subcomponent = '&';  // '\0' when MSH-2 has fewer than 4 characters
  char truncation = '\0';   // v2.7+ fifth MSH-2 character; '\0' when not declared

  // The MSH-2 text for these delimiters ("^~\&", or "^~\&#" with a truncation character).
  std::string encoding_characters() const;
  // Field, component, repetition, escape, subcomponent and truncation characters in MSH order
  // ('\0' for those not declared).
  static Delimiters from(const char (&chars)[6]) {
    Delimiters d;
    d.field = chars[0];
    d.component = chars[1];
    d.repetition = chars[2];
    d.escape = chars[3];
    d.subcomponent = chars[4];
    d.truncation = chars[5];
    return d;
  }
  // A character MSH-1/MSH-2 may declare: not a letter, digit, space, NUL, CR or LF, and ASCII (a
  // byte >= 0x80 is part of a multi-byte UTF-8 character, and 8859/1 text is converted to UTF-8
  // after the delimiters are read, so such a byte would stop matching).
  static bool usable(char c) {
    return !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == ' ' || c == '\r' || c == '\n' || c == '\0' ||
             static_cast<unsigned char>(c) >= 0x80);
  }
  bool is_delimiter(char c) const {
    return c == field || c == component || c == repetition ||
           (subcomponent != '\0' && c == subcomponent) || (escape != '\0' && c == escape) ||
           (truncation != '\0' && c == truncation);
  }
};

// Character sets of MSH-18 that the adapter converts to UTF-8.
enum class Charset : std::uint8_t { ascii, latin1, utf8 };
std::string_view hl7_name(Charset charset);  // "ASCII", "8859/1", "UNICODE UTF-8"

// A place in a message; numbers are 1-based and 0 means "not applicable".
struct Location {
  std::string segment;              // segment ID, e.g. "OBX"
  std::uint32_t segment_index = 0;  // position in the message (1 = MSH)
  std::uint32_t occurrence = 0;     // nth segment with this ID: OBX[4]
  std::uint32_t field = 0;
  std::uint32_t repetition = 0;
  std::uint32_t component = 0;
  std::uint32_t subcomponent = 0;

  // The path form used in every error: "OBX[4]-5.1", "PID-3[2].4.1", "segment 7".
  std::string to_string() const;
};

// A parse failure: what and where. Parsers return it as a value; they never throw on bad input.
struct ParseError {
  Errc code = Errc::not_hl7;
  std::string message;  // may quote the input: send it back to the sender, do not log it
  Location location;

  std::string to_string() const;
};

}  // namespace adapter::hl7v2
