// MSH-18 character set names.
#include "hl7v2/charset.h"

#include <catch2/catch.hpp>

#include <string_view>

using namespace adapter;
using namespace adapter::hl7v2;

TEST_CASE("charset: the listed spellings in any case", "[hl7v2][charset]") {
  struct Case {
    std::string_view name;
    Charset charset;
  };
  const Case cases[] = {
      {"ASCII", Charset::ascii},
      {"ascii", Charset::ascii},
      {"Ascii", Charset::ascii},
      {"8859/1", Charset::latin1},
      {"ISO-8859-1", Charset::latin1},
      {"iso-8859-1", Charset::latin1},
      {"ISO_8859-1", Charset::latin1},
      {"iso_8859-1", Charset::latin1},
      {"LATIN1", Charset::latin1},
      {"latin1", Charset::latin1},
      {"Latin1", Charset::latin1},
      {"UNICODE UTF-8", Charset::utf8},
      {"unicode utf-8", Charset::utf8},
      {"Unicode UTF-8", Charset::utf8},
      {"UTF-8", Charset::utf8},
      {"utf-8", Charset::utf8},
      {"UTF8", Charset::utf8},
      {"utf8", Charset::utf8},
      {" UTF-8 ", Charset::utf8},  // padding spaces are tolerated
      // Spellings the implementation accepts beyond the header's list.
      {"us-ascii", Charset::ascii},
      {"ISO8859-1", Charset::latin1},
      {"latin-1", Charset::latin1},
      {"UNICODE_UTF-8", Charset::utf8},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const auto cs = charset_from_name(c.name);
    REQUIRE(cs.has_value());
    CHECK(*cs == c.charset);
  }
  // The HL7 name of each set is accepted back.
  for (Charset cs : {Charset::ascii, Charset::latin1, Charset::utf8}) {
    CHECK(charset_from_name(hl7_name(cs)) == cs);
  }
}

TEST_CASE("charset: other names are rejected", "[hl7v2][charset]") {
  for (std::string_view name : {"",
                                " ",
                                "UNICODE",
                                "UTF-16",
                                "UNICODE UTF-16",
                                "UNICODE UTF-32",
                                "8859/15",
                                "8859/2",
                                "8859/1x",
                                "ISO-8859-15",
                                "LATIN2",
                                "ISO IR87",
                                "GB 18030-2000",
                                "KS X 1001",
                                "BIG-5",
                                "CNS 11643-1992",
                                "EBCDIC",
                                "UTF 8",
                                "UTF-8 BOM",
                                "UNICODEUTF-8",
                                "ASCII7",
                                "8859"}) {
    INFO("'" << name << "'");
    CHECK_FALSE(charset_from_name(name).has_value());
  }
}
