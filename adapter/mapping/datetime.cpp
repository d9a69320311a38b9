#include "mapping/datetime.h"

#include <cstdio>

namespace adapter::mapping {
namespace {

bool digits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return !s.empty();
}

int to_int(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

bool leap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int days_in(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

std::string format_offset(int minutes) {
  if (minutes == 0) return "+00:00";
  const char sign = minutes < 0 ? '-' : '+';
  const int m = minutes < 0 ? -minutes : minutes;
  char buf[8];
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", sign, (m / 60) % 100, m % 60);
  return buf;
}

struct Parsed {
  std::string_view date;  // YYYY[MM[DD]]
  std::string_view time;  // [HH[MM[SS[.S...]]]]
  std::string_view zone;  // +ZZZZ / -ZZZZ, or empty
  std::string problem;
};

Parsed split(std::string_view v) {
  Parsed p;
  // TS has ^degree-of-precision after the DTM; only the first component is the time.
  v = v.substr(0, v.find('^'));
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  const std::size_t z = v.find_first_of("+-");
  if (z != std::string_view::npos) {
    p.zone = v.substr(z);
    v = v.substr(0, z);
    if (p.zone.size() != 5 || !digits(p.zone.substr(1))) {
      p.problem = "malformed time zone (expected +ZZZZ or -ZZZZ)";
      return p;
    }
  }
  const std::size_t dot = v.find('.');
  std::string_view main = v.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? std::string_view() : v.substr(dot);
  if (!digits(main) || main.size() < 4 || main.size() > 14 || main.size() % 2 != 0 ||
      (!fraction.empty() && (main.size() != 14 || !digits(fraction.substr(1))))) {
    p.problem = "not a DTM (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])";
    return p;
  }
  p.date = main.substr(0, std::min<std::size_t>(8, main.size()));
  if (main.size() > 8) p.time = v.substr(8);  // includes the fraction
  return p;
}

std::string date_part(std::string_view d, std::string& problem) {
  const int y = to_int(d.substr(0, 4));
  std::string out = std::string(d.substr(0, 4));
  if (d.size() >= 6) {
    const int m = to_int(d.substr(4, 2));
    if (m < 1 || m > 12) {
      problem = "month out of range";
      return {};
    }
    out += "-" + std::string(d.substr(4, 2));
    if (d.size() >= 8) {
      const int day = to_int(d.substr(6, 2));
      if (day < 1 || day > days_in(y, m)) {
        problem = "day out of range";
        return {};
      }
      out += "-" + std::string(d.substr(6, 2));
    }
  }
  return out;
}

// XML feeds send ISO 8601 / xs:dateTime ("2022-03-21", "2022-03-21T13:45:00.5+02:00", "...Z").
// They are rewritten to the v2 DTM form they correspond to, so one validator and one set of
// precision and zone rules serves both kinds of feed. A v2 DTM never has '-' at offset 4.
std::string iso_to_dtm(std::string_view iso) {
  std::string out;
  const std::size_t t = iso.find('T');
  for (char c : iso.substr(0, t)) {
    if (c != '-') out.push_back(c);
  }
  if (t == std::string_view::npos) return out;
  std::string_view time = iso.substr(t + 1);
  std::string zone;
  const std::size_t z = time.find_first_of("Z+-");
  if (z != std::string_view::npos) {
    const std::string_view zs = time.substr(z);
    if (zs == "Z") {
      zone = "+0000";
    } else {
      zone = std::string(1, zs[0]);
      for (char c : zs.substr(1)) {
        if (c != ':') zone.push_back(c);
      }
    }
    time = time.substr(0, z);
  }
  for (char c : time) {
    if (c != ':') out.push_back(c);
  }
  return out + zone;
}

std::string_view as_dtm(std::string_view text, std::string& scratch) {
  if (text.size() >= 7 && text[4] == '-') {
    scratch = iso_to_dtm(text);
    return scratch;
  }
  return text;
}

}  // namespace

std::optional<int> parse_utc_offset(std::string_view t) {
  if (t == "Z" || t == "UTC" || t == "GMT" || t == "+00:00" || t == "-00:00") return 0;
  if (t.size() == 6 && (t[0] == '+' || t[0] == '-') && t[3] == ':' && digits(t.substr(1, 2)) &&
      digits(t.substr(4, 2))) {
    const int h = to_int(t.substr(1, 2));
    const int m = to_int(t.substr(4, 2));
    if (h > 14 || m > 59) return std::nullopt;
    return (t[0] == '-' ? -1 : 1) * (h * 60 + m);
  }
  return std::nullopt;
}

DateTimeResult v2_to_fhir_date(std::string_view dtm) {
  DateTimeResult r;
  std::string scratch;
  Parsed p = split(as_dtm(dtm, scratch));
  if (!p.problem.empty()) {
    r.problem = p.problem;
    return r;
  }
  r.fhir = date_part(p.date, r.problem);
  return r;
}

DateTimeResult v2_to_fhir_datetime(std::string_view dtm, std::optional<int> default_offset) {
  DateTimeResult r;
  std::string scratch;
  Parsed p = split(as_dtm(dtm, scratch));
  if (!p.problem.empty()) {
    r.problem = p.problem;
    return r;
  }
  std::string date = date_part(p.date, r.problem);
  if (date.empty()) return r;
  if (p.time.empty()) {
    r.fhir = date;  // date precision only: no time, no zone
    return r;
  }
  if (p.date.size() < 8) {
    r.problem = "a time needs a full date";
    return r;
  }
  r.has_time = true;
  const std::string_view t = p.time;
  const std::string_view hms = t.substr(0, t.find('.'));
  const std::string_view fraction =
      t.find('.') == std::string_view::npos ? "" : t.substr(t.find('.'));
  const int hh = to_int(hms.substr(0, 2));
  const int mm = hms.size() >= 4 ? to_int(hms.substr(2, 2)) : 0;
  const int ss = hms.size() >= 6 ? to_int(hms.substr(4, 2)) : 0;
  if (hh > 23 || mm > 59 || ss > 59) {
    r.problem = "time out of range";
    return r;
  }
  std::optional<int> offset;
  if (!p.zone.empty()) {
    if (p.zone.size() != 5 || !digits(p.zone.substr(1))) {
      r.problem = "malformed time zone (expected +ZZZZ or -ZZZZ)";
      return r;
    }
    const int zh = to_int(p.zone.substr(1, 2));
    const int zm = to_int(p.zone.substr(3, 2));
    if (zh > 14 || zm > 59) {
      r.problem = "time zone out of range";
      return r;
    }
    offset = (p.zone[0] == '-' ? -1 : 1) * (zh * 60 + zm);
  } else if (default_offset) {
    offset = default_offset;
    r.zone_defaulted = true;
  } else {
    r.problem = "the time has no zone and the feed has no default_timezone";
    return r;
  }
  char buf[48];  // room for any int, so GCC's -Wformat-truncation can prove it fits
  std::snprintf(buf, sizeof buf, "T%02d:%02d:%02d", hh, mm, ss);
  r.fhir = date + buf + std::string(fraction) + format_offset(*offset);
  if (hms.size() == 2) r.problem = "hour precision: minutes and seconds written as 00";
  return r;
}

}  // namespace adapter::mapping
