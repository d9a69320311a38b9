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
  CHECK(nested.error().message == "elements are nested 11 deep; the limit is 10");
  deep = deep.substr(3, deep.size() - 7);  // 10 deep: fine
  CHECK(xml::parse(deep, limits));
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
