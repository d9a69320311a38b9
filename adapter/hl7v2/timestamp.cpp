#include "hl7v2/timestamp.h"

#include <cstdio>
#include <ctime>

namespace adapter::hl7v2 {

std::string format_dtm(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  const long offset_min = tm.tm_gmtoff / 60;
  const long abs_off = offset_min < 0 ? -offset_min : offset_min;
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02d.%03d%c%02ld%02ld", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000), offset_min < 0 ? '-' : '+', abs_off / 60,
                abs_off % 60);
  return buf;
}

}  // namespace adapter::hl7v2
