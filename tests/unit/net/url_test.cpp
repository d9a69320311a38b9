// The strict URL parser of outbound destinations: what it accepts and, mostly, what it refuses.
#include "net/url.h"

#include <catch2/catch.hpp>

using namespace adapter;

namespace {

std::string refusal(std::string_view text) {
  auto url = net::parse_url(text);
  REQUIRE_FALSE(url);
  CHECK(url.error().code == Errc::bad_config);
  return url.error().message;
}

}  // namespace

TEST_CASE("a FHIR base URL is split into scheme host port and path", "[net][url]") {
  auto url = net::parse_url("HTTPS://FHIR.Example.org/fhir/R4");
  REQUIRE(url);
  CHECK(url->scheme == "https");
  CHECK(url->host == "fhir.example.org");
  CHECK(url->port == 443);
  CHECK(url->path == "/fhir/R4");  // the path keeps its case
  CHECK_FALSE(url->has_query);
  CHECK(url->authority() == "fhir.example.org:443");
  CHECK(url->host_header() == "fhir.example.org");
  CHECK_FALSE(url->host_is_ip());
}

TEST_CASE("ports addresses and queries are kept as given", "[net][url]") {
  auto plain = net::parse_url("http://127.0.0.1:8080");
  REQUIRE(plain);
  CHECK(plain->port == 8080);
  CHECK(plain->path == "/");
  CHECK(plain->host_is_ip());
  CHECK(plain->host_header() == "127.0.0.1:8080");

  auto v6 = net::parse_url("https://[::1]:8443/token?a=1&b=%2F");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->host_is_ip());
  CHECK(v6->authority() == "[::1]:8443");
  CHECK(v6->host_header() == "[::1]:8443");
  CHECK(v6->target() == "/token?a=1&b=%2F");

  auto default_port = net::parse_url("http://ehr:80/x");
  REQUIRE(default_port);
  CHECK(default_port->host_header() == "ehr");
  CHECK(default_port->same_origin(*net::parse_url("http://EHR/other")));
  CHECK_FALSE(default_port->same_origin(*net::parse_url("https://ehr/x")));
}

TEST_CASE("URLs that could mean something else are refused with the reason", "[net][url]") {
  CHECK_THAT(refusal("ftp://host/x"), Catch::Contains("http or https"));
  CHECK_THAT(refusal("fhir.example.org/r4"), Catch::Contains("absolute"));
  CHECK_THAT(refusal("https://user:secret@ehr/fhir"), Catch::Contains("credentials"));
  CHECK_THAT(refusal("https://ehr/fhir#part"), Catch::Contains("fragment"));
  CHECK_THAT(refusal("https://ehr/fhir r4"), Catch::Contains("percent-encoded"));
  CHECK_THAT(refusal("https://ehr/f%4"), Catch::Contains("percent-escape"));
  CHECK_THAT(refusal("https://ehr/f%zz"), Catch::Contains("percent-escape"));
  CHECK_THAT(refusal("https://ehr/a/../admin"), Catch::Contains("'..'"));
  CHECK_THAT(refusal("https://ehr/a/%2E%2e/admin"), Catch::Contains("'..'"));
  CHECK_THAT(refusal("https://ehr:0/"), Catch::Contains("port"));
  CHECK_THAT(refusal("https://ehr:65536/"), Catch::Contains("port"));
  CHECK_THAT(refusal("https://ehr:/"), Catch::Contains("port"));
  CHECK_THAT(refusal("https://ehr:44x/"), Catch::Contains("port"));
  CHECK_THAT(refusal("https:///fhir"), Catch::Contains("empty"));
  CHECK_THAT(refusal("https://127.1/"), Catch::Contains("IPv4"));
  CHECK_THAT(refusal("https://010.0.0.1/"), Catch::Contains("IPv4"));
  CHECK_THAT(refusal("https://256.0.0.1/"), Catch::Contains("IPv4"));
  CHECK_THAT(refusal("https://[fe80::1%25eth0]/"), Catch::Contains("zone"));
  CHECK_THAT(refusal("https://[::g]/"), Catch::Contains("IPv6"));
  CHECK_THAT(refusal("https://[::1/"), Catch::Contains("']'"));
  CHECK_THAT(refusal("https://eh_r/"), Catch::Contains("host name"));
  CHECK_THAT(refusal("https://-ehr/"), Catch::Contains("'-'"));
  CHECK_THAT(refusal("https://a..b/"), Catch::Contains("empty label"));
  CHECK_THAT(refusal("https://ehr/caf\xc3\xa9"), Catch::Contains("percent-encoded"));
}

TEST_CASE("relative targets stay on the same server", "[net][url]") {
  CHECK(net::check_relative_target("Patient?identifier=urn%3Aoid%3A1%7C42"));
  CHECK(net::check_relative_target("/metadata"));
  CHECK(net::check_relative_target("Observation/a:b"));
  CHECK_FALSE(net::check_relative_target("//other.example/x"));
  CHECK_FALSE(net::check_relative_target("mailto:x"));
  CHECK_FALSE(net::check_relative_target("Patient/../../admin"));
  CHECK_FALSE(net::check_relative_target("Patient?name=a b"));
  CHECK_FALSE(net::check_relative_target("Patient#x"));
}

TEST_CASE("a search written for a Bundle is percent-encoded where a request line needs it",
          "[net][url]") {
  CHECK(net::encode_query("identifier=urn:adapterd:identifier/genelab|LAB-990/variant/1a") ==
        "identifier=urn:adapterd:identifier/genelab%7CLAB-990/variant/1a");
  // What token() already escaped stays as it is; what the rules refuse is escaped.
  CHECK(net::encode_query("identifier=urn%3Ax|a%20b") == "identifier=urn%3Ax%7Ca%20b");
  CHECK(net::encode_query("a b\"<>\\^`{}") == "a%20b%22%3C%3E%5C%5E%60%7B%7D");
  CHECK(net::encode_query("x=\xc3\xa9&y=%zz") == "x=%C3%A9&y=%25zz");
  CHECK(net::encode_query("") == "");
  // Whatever it makes passes the checks requests go through.
  for (const char* q : {"identifier=s|v", "a b", "x=%zz", "\x01\x7f"}) {
    CHECK(net::check_relative_target("Observation?" + net::encode_query(q)));
  }
}
