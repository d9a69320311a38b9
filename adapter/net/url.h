// Absolute http(s) URLs of the servers the adapter calls: the FHIR base URL, an OAuth2 token
// endpoint, a same-origin link a server returns. Deliberately strict instead of lenient: a URL
// either means exactly one origin and path or is refused with the reason, so a typo in the
// configuration fails at startup instead of sending patient data somewhere unexpected.
//
// Refused: schemes other than http and https, credentials in the URL (configure authentication
// instead, so no secret ends up in a logged URL), fragments, whitespace, control and non-ASCII
// bytes (they must be percent-encoded), malformed percent-escapes, "." and ".." path segments,
// ambiguous IPv4 forms ("127.1", "010.0.0.1"), IPv6 zone identifiers, port 0 or above 65535.
//
// Boost.URL would parse the same grammar, but it is a compiled library the daemon would have to
// ship; these few rules are all the adapter needs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace adapter::net {

struct Url {
  std::string scheme;      // "http" or "https", lowercased
  std::string host;        // lowercased name, dotted IPv4, or IPv6 without brackets
  std::uint16_t port = 0;  // the explicit port or the scheme's default (80, 443)
  std::string path;        // starts with '/'; "/" when the URL has none
  std::string query;       // after '?', without it; empty when absent
  bool has_query = false;  // "http://h/p?" has an empty query, which is still a query

  bool is_https() const { return scheme == "https"; }
  bool host_is_ip() const;
  // "host:port" with IPv6 in brackets: how errors and logs name the destination.
  std::string authority() const;
  // The Host header value: the port is left out when it is the scheme's default.
  std::string host_header() const;
  // path and query as sent in the request line.
  std::string target() const;
  bool same_origin(const Url& other) const {
    return scheme == other.scheme && host == other.host && port == other.port;
  }
};

// Parses an absolute http:// or https:// URL. Errors are Errc::bad_config and name the problem,
// never the whole URL (it may carry an identifier in its query).
Result<Url> parse_url(std::string_view text);

// Checks a path-and-query that is relative to a base (no scheme, no authority), with the same
// character rules as parse_url; a leading '/' is allowed.
Status check_relative_target(std::string_view target);

// A query as a request line may carry it: each byte the rules above refuse in a query ('|',
// spaces, quotes, controls, non-ASCII...) percent-encoded; what is allowed, '%XX' escapes
// included, kept. A FHIR search written for a Bundle ("identifier=system|value") becomes the
// same search on the wire ("identifier=system%7Cvalue").
std::string encode_query(std::string_view query);

}  // namespace adapter::net
