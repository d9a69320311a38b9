// The mappings the daemon runs with now, replaceable while it runs (hot reload: SIGHUP or
// POST /reload on the admin endpoint). A reader takes the current Mapper once per message and
// keeps it for that message, so a message already being mapped finishes on the set it started
// with; the template set's content hash is recorded with every message.
//
// Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <utility>

#include "app/translate.h"

namespace adapter::app {

class MapperHolder {
 public:
  explicit MapperHolder(std::shared_ptr<const Mapper> mapper) : mapper_(std::move(mapper)) {}

  std::shared_ptr<const Mapper> current() const {
    std::lock_guard lock(mu_);
    return mapper_;
  }
  // Returns the one it replaces.
  std::shared_ptr<const Mapper> replace(std::shared_ptr<const Mapper> next) {
    std::lock_guard lock(mu_);
    std::swap(mapper_, next);
    return next;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Mapper> mapper_;
};

}  // namespace adapter::app
