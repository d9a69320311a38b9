// Error codes of the adapter and the properties each surface needs (see errc.def).
#pragma once

#include <string_view>

namespace adapter {

enum class Errc {
#define ADAPTER_ERRC(name, ack, hl7, http, retry, meaning) name,
#include "common/errc.def"
#undef ADAPTER_ERRC
};

struct ErrcInfo {
  std::string_view name;
  std::string_view ack_code;  // original-mode ACK code: AA, AE or AR
  std::string_view hl7_0357;  // HL7 table 0357 message error condition code (ERR-3)
  int http_status;
  bool retryable;  // a later attempt may succeed without any change to the input
  std::string_view meaning;
};

const ErrcInfo& info(Errc code);
inline std::string_view name(Errc code) {
  return info(code).name;
}

// Every row of the table, for `adapterd errors`.
const ErrcInfo* errc_table(std::size_t& count);

}  // namespace adapter
