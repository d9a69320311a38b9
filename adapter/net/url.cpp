#include "net/url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace adapter::net {

namespace {

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
std::string lowered(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}
bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

// RFC 3986 pchar without pct-encoded (checked separately): unreserved, sub-delims, ':' and '@'.
bool is_pchar(char c) {
  if (is_alpha(c) || is_digit(c)) return true;
  return std::string_view("-._~!$&'()*+,;=:@").find(c) != std::string_view::npos;
}

Error refuse(std::string_view why) {
  return make_error(Errc::bad_config, "invalid URL: " + std::string(why));
}

// Path ('/' allowed) or query ('/' and '?' allowed) characters, with well-formed %XX escapes.
Status check_chars(std::string_view part, bool is_query) {
  const char* what = is_query ? "query" : "path";
  for (std::size_t i = 0; i < part.size(); ++i) {
    const char c = part[i];
    if (c == '%') {
      if (i + 2 >= part.size()) {
        return refuse(std::string("incomplete percent-escape in the ") + what);
      }
      if (!is_hex(part[i + 1]) || !is_hex(part[i + 2])) {
        return refuse(std::string("malformed percent-escape in the ") + what);
      }
      i += 2;
      continue;
    }
    if (is_pchar(c) || c == '/' || (is_query && c == '?')) continue;
    if (c == '#') return refuse("fragments ('#') are not sent to servers and are refused");
    return refuse(std::string("character not allowed in the ") + what +
                  " (spaces, controls, non-ASCII and some punctuation must be percent-encoded)");
  }
  return {};
}

// "." and ".." segments (also written %2E) would be resolved differently by different servers.
Status check_segments(std::string_view path) {
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    std::string segment = lowered(path.substr(start, end - start));
    for (std::size_t p; (p = segment.find("%2e")) != std::string::npos;) {
      segment.replace(p, 3, ".");
    }
    if (segment == "." || segment == "..") {
      return refuse("'.' and '..' path segments are refused");
    }
    start = end + 1;
  }
  return {};
}

Status check_path_and_query(std::string_view rest) {
  const std::size_t q = rest.find('?');
  const std::string_view path = rest.substr(0, q);
  if (auto st = check_chars(path, false); !st) return st;
  if (auto st = check_segments(path); !st) return st;
  if (q != std::string_view::npos) return check_chars(rest.substr(q + 1), true);
  return {};
}

// Dotted-quad IPv4 with exactly four decimal parts and no leading zeros (which some resolvers
// read as octal).
bool is_dotted_quad(std::string_view host) {
  int parts = 0;
  std::size_t start = 0;
  while (start <= host.size()) {
    const std::size_t end = std::min(host.find('.', start), host.size());
    const std::string_view part = host.substr(start, end - start);
    if (!all_digits(part) || part.size() > 3 || (part.size() > 1 && part[0] == '0')) return false;
    int value = 0;
    std::from_chars(part.data(), part.data() + part.size(), value);
    if (value > 255) return false;
    ++parts;
    start = end + 1;
  }
  return parts == 4;
}

Status check_host_name(std::string_view host) {
  if (host.empty()) return refuse("the host is empty");
  if (host.size() > 253) return refuse("the host name is longer than 253 characters");
  std::size_t start = 0;
  std::string_view last_label;
  while (start <= host.size()) {
    const std::size_t end = std::min(host.find('.', start), host.size());
    const std::string_view label = host.substr(start, end - start);
    if (label.empty()) return refuse("the host name has an empty label");
    if (label.size() > 63) return refuse("a host name label is longer than 63 characters");
    if (label.front() == '-' || label.back() == '-') {
      return refuse("a host name label starts or ends with '-'");
    }
    for (const char c : label) {
      if (!is_alpha(c) && !is_digit(c) && c != '-') {
        return refuse("character not allowed in the host name (letters, digits, '-' and '.')");
      }
    }
    last_label = label;
    start = end + 1;
  }
  // A numeric last label means an IPv4 address was meant; only the plain dotted quad is taken.
  if (all_digits(last_label) && !is_dotted_quad(host)) {
    return refuse("the host looks like an IPv4 address but is not a plain dotted quad");
  }
  return {};
}

}  // namespace

bool Url::host_is_ip() const {
  return host.find(':') != std::string::npos || is_dotted_quad(host);
}

std::string Url::authority() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Url::host_header() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  std::string out = ipv6 ? "[" + host + "]" : host;
  const std::uint16_t default_port = is_https() ? 443 : 80;
  if (port != default_port) out += ":" + std::to_string(port);
  return out;
}

std::string Url::target() const {
  return has_query ? path + "?" + query : path;
}

Result<Url> parse_url(std::string_view text) {
  Url url;
  const std::size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) return refuse("not an absolute http(s) URL");
  url.scheme = lowered(text.substr(0, scheme_end));
  if (url.scheme != "http" && url.scheme != "https") {
    return refuse("the scheme must be http or https");
  }
  std::string_view rest = text.substr(scheme_end + 3);
  const std::size_t authority_end = std::min(rest.find_first_of("/?#"), rest.size());
  std::string_view authority = rest.substr(0, authority_end);
  rest.remove_prefix(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return refuse("credentials in the URL are refused: configure authentication instead");
  }

  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return refuse("an IPv6 address lacks its ']'");
    const std::string address(authority.substr(1, close - 1));
    if (address.find('%') != std::string::npos) {
      return refuse("IPv6 zone identifiers are refused");
    }
    unsigned char parsed[16];
    if (inet_pton(AF_INET6, address.c_str(), parsed) != 1) {
      return refuse("malformed IPv6 address");
    }
    url.host = lowered(address);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return refuse("unexpected characters after the IPv6 address");
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    const std::size_t colon = authority.find(':');
    const std::string_view host = authority.substr(0, colon);
    if (auto st = check_host_name(host); !st) return st.error();
    url.host = lowered(host);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
  }
  if (has_port) {
    if (!all_digits(port_text) || port_text.size() > 5) {
      return refuse("the port must be a number from 1 to 65535");
    }
    unsigned value = 0;
    std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (value == 0 || value > 65535) return refuse("the port must be a number from 1 to 65535");
    url.port = static_cast<std::uint16_t>(value);
  } else {
    url.port = url.is_https() ? 443 : 80;
  }

  if (rest.find('#') != std::string_view::npos) {
    return refuse("fragments ('#') are not sent to servers and are refused");
  }
  if (auto st = check_path_and_query(rest); !st) return st.error();
  const std::size_t q = rest.find('?');
  url.path = std::string(rest.substr(0, q));
  if (url.path.empty()) url.path = "/";
  if (q != std::string_view::npos) {
    url.has_query = true;
    url.query = std::string(rest.substr(q + 1));
  }
  return url;
}

Status check_relative_target(std::string_view target) {
  if (target.substr(0, 2) == "//") {
    return refuse("a target starting with '//' would name another server");
  }
  // "a:b" could be read as a scheme; RFC 3986 4.2 requires "./a:b" for such a relative path.
  const std::size_t first_segment_end = std::min(target.find_first_of("/?"), target.size());
  if (target.substr(0, first_segment_end).find(':') != std::string_view::npos) {
    return refuse("a relative target's first segment must not contain ':'");
  }
  return check_path_and_query(target);
}

std::string encode_query(std::string_view query) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(query.size());
  for (std::size_t i = 0; i < query.size(); ++i) {
    const char c = query[i];
    const bool escape_already =
        c == '%' && i + 2 < query.size() && is_hex(query[i + 1]) && is_hex(query[i + 2]);
    if (escape_already || is_pchar(c) || c == '/' || c == '?') {
      out.push_back(c);
      continue;
    }
    const auto u = static_cast<unsigned char>(c);
    out.push_back('%');
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 0xF]);
  }
  return out;
}

}  // namespace adapter::net
