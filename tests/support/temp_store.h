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

}  // namespace adapter::test
