#include "xml/document.h"

#include <catch2/catch.hpp>
#include <string>

#include "xml/xpath.h"

using namespace adapter;

TEST_CASE("a well-formed document parses, with its root name and namespace", "[xml]") {
  auto doc = xml::parse(R"(<?xml version="1.0" encoding="UTF-8"?>
<rr:ResultsReport xmlns:rr="http://integration.foundationmedicine.com/reporting"><a/></rr:ResultsReport>)");
  REQUIRE(doc);
  CHECK(doc->root_name() == "ResultsReport");
  CHECK(doc->root_namespace() == "http://integration.foundationmedicine.com/reporting");
}

TEST_CASE("not well-formed XML is an error with line and column", "[xml]") {
  auto doc = xml::parse("<report>\n  <gene>BRCA1</gen>\n</report>");
  REQUIRE_FALSE(doc);
  CHECK(doc.error().code == Errc::not_xml);
  CHECK(doc.error().where == "XML line 2, column 20");
  CHECK(doc.error().message ==
        "not well-formed: Opening and ending tag mismatch: gene line 2 and gen");
}

TEST_CASE("external entities (XXE) are refused before anything is read", "[xml][security]") {
  auto doc = xml::parse(R"(<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<r>&xxe;</r>)");
  REQUIRE_FALSE(doc);
  CHECK(doc.error().code == Errc::xml_refused);
  CHECK(doc.error().where == "XML line 2");
  CHECK(doc.error().message.find("DOCTYPE declaration is not accepted") != std::string::npos);
}

TEST_CASE("entity expansion (billion laughs) is refused", "[xml][security]") {
  std::string bomb = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n";
  for (int i = 1; i <= 9; ++i) {
    bomb += "<!ENTITY lol" + std::to_string(i) + " \"";
    for (int j = 0; j < 10; ++j)
      bomb += "&lol" + (i == 1 ? std::string() : std::to_string(i - 1)) + ";";
    bomb += "\">\n";
  }
  bomb += "]>\n<lolz>&lol9;</lolz>";
  auto doc = xml::parse(bomb);
  REQUIRE_FALSE(doc);
  CHECK(doc.error().code == Errc::xml_refused);
}

TEST_CASE("an external DTD is refused, never fetched", "[xml][security]") {
  auto doc =
      xml::parse(R"(<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://192.0.2.1/evil.dtd"><r/>)");
  REQUIRE_FALSE(doc);
  CHECK(doc.error().code == Errc::xml_refused);
}

TEST_CASE("an undeclared entity reference is not well-formed", "[xml][security]") {
  auto doc = xml::parse("<r>&nope;</r>");
  REQUIRE_FALSE(doc);
  CHECK(doc.error().code == Errc::not_xml);
  CHECK(doc.error().message.find("nope") != std::string::npos);
}

TEST_CASE("size and depth limits", "[xml][security]") {
  xml::Limits limits;
  limits.max_bytes = 64;
  auto big = xml::parse("<r>" + std::string(100, 'x') + "</r>", limits);
  REQUIRE_FALSE(big);
  CHECK(big.error().message == "the document has 107 bytes; the limit is 64");

  limits = {};
  limits.max_depth = 10;
  std::string deep;
  for (int i = 0; i < 11; ++i) deep += "<a>";
  for (int i = 0; i < 11; ++i) deep += "</a>";
  auto nested = xml::parse(deep, limits);
  REQUIRE_FALSE(nested);
  CHECK(nested.error().code == Errc::xml_refused);
  CHECK(nested.error().message ==
        "elements are nested deeper than 10 levels at /a/a/a/a/a/a/a/a/a/a/a");
  CHECK(nested.error().where == "XML line 1, column 33");
  deep = deep.substr(3, deep.size() - 7);  // 10 deep: fine
  CHECK(xml::parse(deep, limits));
}

std::string nested_elements(int depth, const std::string& name) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "<" + name + ">";
  for (int i = 0; i < depth; ++i) s += "</" + name + ">";
  return s;
}

TEST_CASE("past libxml2's own depth cap (256) the refusal is still ours", "[xml][security]") {
  // libxml2 stops at 257 open elements with "Excessive depth in document"; the adapter's limit
  // must fire first, whatever the document's depth, with the adapter's message.
  auto deep = xml::parse(nested_elements(300, "a"));
  REQUIRE_FALSE(deep);
  CHECK(deep.error().code == Errc::xml_refused);
  CHECK(deep.error().message.rfind("elements are nested deeper than 128 levels at /a/a/", 0) == 0);
  CHECK(deep.error().where == "XML line 1, column 387");

  // A configured limit above libxml2's cap is capped at it, still with our message.
  xml::Limits generous;
  generous.max_depth = 1000;
  auto deeper = xml::parse(nested_elements(300, "a"), generous);
  REQUIRE_FALSE(deeper);
  CHECK(deeper.error().code == Errc::xml_refused);
  CHECK(deeper.error().message.rfind("elements are nested deeper than 256 levels at /a/a/", 0) ==
        0);
  CHECK(xml::parse(nested_elements(256, "a"), generous));

  // Long element names: the path in the message is abbreviated, not megabytes long.
  auto long_names = xml::parse(nested_elements(200, std::string(400, 'n')));
  REQUIRE_FALSE(long_names);
  CHECK(long_names.error().message.size() < 600);
  CHECK(long_names.error().message.find("/.../") != std::string::npos);
}

TEST_CASE("an empty body is not XML, not an internal error", "[xml]") {
  auto empty = xml::parse("");
  REQUIRE_FALSE(empty);
  CHECK(empty.error().code == Errc::not_xml);
  CHECK(empty.error().message == "empty document");
  CHECK(empty.error().where == "XML");
}

TEST_CASE("namespace errors are refused with their place", "[xml]") {
  auto undeclared = xml::parse("<u:report><u:gene x:a=\"1\">BRCA1</u:gene></u:report>");
  REQUIRE_FALSE(undeclared);
  CHECK(undeclared.error().code == Errc::not_xml);
  CHECK(undeclared.error().where == "XML line 1, column 10");
  CHECK(undeclared.error().message ==
        "namespace error at /u:report: Namespace prefix u on report is not defined");

  auto nested = xml::parse("<r xmlns:a=\"urn:a\">\n  <g/>\n  <g><a:x b:y=\"1\"/></g>\n</r>");
  REQUIRE_FALSE(nested);
  CHECK(nested.error().where == "XML line 3, column 18");
  CHECK(nested.error().message ==
        "namespace error at /r/g[2]/x: Namespace prefix b for y on x is not defined");

  for (const char* bad :
       {R"(<r xmlns:a="urn:s" xmlns:b="urn:s" a:v="1" b:v="2"/>)", R"(<r xmlns:q="::"/>)",
        R"(<r xmlns:xmlns="urn:x"/>)", R"(<r xmlns:p=""/>)", R"(<r xmlns:xml="urn:not-xml"/>)"}) {
    INFO(bad);
    auto doc = xml::parse(bad);
    REQUIRE_FALSE(doc);
    CHECK(doc.error().code == Errc::not_xml);
    CHECK(doc.error().message.rfind("namespace error at /r: ", 0) == 0);
    CHECK(doc.error().where.rfind("XML line 1, column ", 0) == 0);
  }
  // A relative namespace URI is deprecated, not an error (libxml2 only warns): accepted.
  CHECK(xml::parse(R"(<r xmlns="relative/ns"><x/></r>)"));
}

TEST_CASE("error messages are one line", "[xml]") {
  // They end up in HL7 ERR-8, OperationOutcome diagnostics and sidecar files; libxml2's message
  // for bad UTF-8 has a newline before the bytes it quotes.
  auto bad = xml::parse(
      "<report>\n  <gene>\xC0\xAF"
      "CA1</gene>\n</report>");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == Errc::not_xml);
  CHECK(bad.error().where == "XML line 2, column 9");
  CHECK(
      bad.error().message ==
      "not well-formed: Input is not proper UTF-8, indicate encoding ! Bytes: 0xC0 0xAF 0x43 0x41");
  CHECK(bad.error().message.find_first_of("\r\n\t") == std::string::npos);
}

// `text` (ASCII or BMP + astral characters) as UTF-16 with a byte-order mark.
std::string utf16(const std::u16string& text, bool big_endian) {
  std::string out = big_endian ? "\xFE\xFF" : "\xFF\xFE";
  for (char16_t unit : text) {
    const char high = static_cast<char>(unit >> 8);
    const char low = static_cast<char>(unit & 0xFF);
    out += big_endian ? std::string{high, low} : std::string{low, high};
  }
  return out;
}

TEST_CASE("UTF-16 with a byte-order mark is XML and parses to UTF-8", "[xml]") {
  for (bool big_endian : {false, true}) {
    INFO((big_endian ? "UTF-16BE" : "UTF-16LE"));
    const std::string body =
        utf16(u"\n <report><gene>\u00E9\u20AC\U0001D11E</gene></report>", big_endian);
    CHECK(xml::looks_like_xml(body));
    auto doc = xml::parse(body);
    REQUIRE(doc);
    xml::XPath xp(doc->get());
    auto gene = xp.evaluate("string(gene)", nullptr);
    REQUIRE(gene);
    CHECK(gene->text == "\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E");

    const std::string declared =
        utf16(u"<?xml version=\"1.0\" encoding=\"UTF-16\"?><r/>", big_endian);
    CHECK(xml::looks_like_xml(declared));
    CHECK(xml::parse(declared));
    CHECK(xml::parse(utf16(big_endian ? u"<?xml version='1.0' encoding='utf-16be'?><r/>"
                                      : u"<?xml version='1.0' encoding='utf-16le'?><r/>",
                           big_endian)));
  }
  CHECK_FALSE(xml::looks_like_xml(utf16(u"MSH|^~\\&|", false)));
  CHECK_FALSE(xml::looks_like_xml("\xFF\xFE"));
  CHECK_FALSE(xml::looks_like_xml("\xFE\xFF\x00"));
}

TEST_CASE("UTF-16 that cannot be read fails with an encoding message", "[xml]") {
  // The declaration contradicts the byte-order mark: libxml2 would switch decoders mid-stream
  // and report garbage ("Couldn't find end of Start Tag rep\xE6\xBC\x80...").
  auto latin1 =
      xml::parse(utf16(u"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><report/>", false));
  REQUIRE_FALSE(latin1);
  CHECK(latin1.error().code == Errc::not_xml);
  CHECK(latin1.error().where == "XML");
  CHECK(latin1.error().message ==
        "encoding error: the byte-order mark says UTF-16LE but the XML declaration says "
        "encoding=\"ISO-8859-1\"");
  auto other_endian = xml::parse(utf16(u"<?xml version='1.0' encoding='UTF-16LE'?><r/>", true));
  REQUIRE_FALSE(other_endian);
  CHECK(other_endian.error().message ==
        "encoding error: the byte-order mark says UTF-16BE but the XML declaration says "
        "encoding=\"UTF-16LE\"");
  auto utf8_declared = xml::parse(utf16(u"<?xml version='1.0' encoding='UTF-8'?><r/>", false));
  REQUIRE_FALSE(utf8_declared);
  CHECK(utf8_declared.error().code == Errc::not_xml);

  // An odd number of bytes cannot be UTF-16 (libxml2 would drop the last byte silently).
  auto odd = xml::parse(utf16(u"<r/>", false) + std::string(1, '\0'));
  REQUIRE_FALSE(odd);
  CHECK(odd.error().code == Errc::not_xml);
  CHECK(odd.error().message ==
        "encoding error: the byte-order mark says UTF-16LE but the document has an odd number "
        "of bytes (11)");

  // A lone surrogate: libxml2's converter fails (and would print to stderr); its reason is
  // reported, not the "Premature end of data" that follows from it.
  std::string lone =
      utf16(u"<r>", false) + std::string("\x00\xD8", 2) + utf16(u"</r>", false).substr(2);
  auto surrogate = xml::parse(lone);
  REQUIRE_FALSE(surrogate);
  CHECK(surrogate.error().code == Errc::not_xml);
  CHECK(surrogate.error().message.rfind("encoding error: ", 0) == 0);
  CHECK(surrogate.error().message.find("0x00 0xD8") != std::string::npos);
}

TEST_CASE("the size limit counts bytes of input, whatever the encoding", "[xml]") {
  const std::string doc = utf16(u"<report><gene>BRCA1</gene></report>", false);
  REQUIRE(doc.size() == 72);
  xml::Limits limits;
  limits.max_bytes = doc.size();
  CHECK(xml::parse(doc, limits));
  limits.max_bytes = doc.size() - 1;
  auto refused = xml::parse(doc, limits);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message == "the document has 72 bytes; the limit is 71");
}

TEST_CASE("looks_like_xml tells XML from HL7 v2", "[xml]") {
  CHECK(xml::looks_like_xml("\xEF\xBB\xBF  \n<?xml version='1.0'?><r/>"));
  CHECK(xml::looks_like_xml("<report/>"));
  CHECK_FALSE(xml::looks_like_xml("MSH|^~\\&|"));
  CHECK_FALSE(xml::looks_like_xml(""));
}

TEST_CASE("XPath selects nodes, texts, numbers and booleans, with namespaces", "[xml][xpath]") {
  auto doc = xml::parse(
      R"(<v:report xmlns:v="urn:test"><v:variant gene="BRCA1"><v:vaf>0.48</v:vaf></v:variant>
<v:variant gene="TP53"/></v:report>)");
  REQUIRE(doc);
  xml::XPath xp(doc->get());
  xp.register_namespace("t", "urn:test");
  auto nodes = xp.evaluate("t:variant", nullptr);
  REQUIRE(nodes);
  REQUIRE(nodes->nodes.size() == 2);
  CHECK(xml::node_path(nodes->nodes[1]) == "/report/variant[2]");
  auto attr = xp.evaluate("@gene", nodes->nodes[0]);
  REQUIRE(attr);
  REQUIRE(attr->nodes.size() == 1);
  CHECK(xml::node_path(attr->nodes[0]) == "/report/variant[1]/@gene");
  auto count = xp.evaluate("count(//t:variant)", nullptr);
  REQUIRE(count);
  CHECK(count->kind == xml::XPathValue::Kind::number);
  CHECK(count->number == 2);
  auto text = xp.evaluate("string(t:variant/t:vaf)", nullptr);
  REQUIRE(text);
  CHECK(text->text == "0.48");

  auto unknown_prefix = xp.evaluate("x:variant", nullptr);
  REQUIRE_FALSE(unknown_prefix);
  CHECK(unknown_prefix.error().to_string().find("x:variant") != std::string::npos);
}

TEST_CASE("check_xpath reports syntax errors", "[xml][xpath]") {
  CHECK(xml::check_xpath("/report/variant[1]/gene").empty());
  CHECK(xml::check_xpath("/report/variant[") == "XPath '/report/variant[': Invalid expression");
}
