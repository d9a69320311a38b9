// A real SqliteStore in a fresh temporary directory, closed and removed at the end of the test.
#pragma once

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "store/sqlite/sqlite_store.h"
#include "support/temp_dir.h"

namespace adapter::test {

class TempStore {
 public:
  explicit TempStore(const std::string& prefix = "adapterd-test") : dir_(prefix) {
    store::SqliteStoreOptions o;
    o.path = dir_.file("db.sqlite");
    auto st = store::SqliteStore::open(o);
    REQUIRE(st);
    store_ = std::move(*st);
  }
  ~TempStore() { store_->close(); }
  TempStore(const TempStore&) = delete;
  TempStore& operator=(const TempStore&) = delete;

  store::SqliteStore& operator*() { return *store_; }
  store::SqliteStore* operator->() { return store_.get(); }

 private:
  TempDir dir_;  // (declared first: removed after the store is closed)
  std::unique_ptr<store::SqliteStore> store_;
};

// A message as intake stores an accepted ORU^R01 from "LAB" (ACK AA). The control ID stands
// in for the content hash: tests that need duplicates detected by content set their own.
inline store::InboundMessage accepted_message(const std::string& control_id, std::string raw,
                                              std::int64_t received_at_us,
                                              const std::string& source = "mllp") {
  store::InboundMessage m;
  m.raw = std::move(raw);
  m.received_at_us = received_at_us;
  m.listener = source;
  m.sender_application = "LAB";
  m.control_id = control_id;
  m.message_type = "ORU^R01";
  m.content_sha256 = control_id;
  m.ack_code = "AA";
  return m;
}

}  // namespace adapter::test
