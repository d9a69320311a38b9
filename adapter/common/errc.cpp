#include "common/errc.h"

#include <array>

namespace adapter {
namespace {

constexpr std::array kTable = {
#define ADAPTER_ERRC(name, ack, hl7, http, retry, meaning) \
  ErrcInfo{#name, ack, hl7, http, retry, meaning},
#include "common/errc.def"
#undef ADAPTER_ERRC
};

}  // namespace

const ErrcInfo& info(Errc code) {
  return kTable[static_cast<std::size_t>(code)];
}

const ErrcInfo* errc_table(std::size_t& count) {
  count = kTable.size();
  return kTable.data();
}

}  // namespace adapter
