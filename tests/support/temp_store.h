// A real SqliteStore in a fresh temporary directory, closed and removed at the end of the test.
#pragma once

#include <stdlib.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>
#include <string>

#include "store/sqlite/sqlite_store.h"

namespace adapter::test {

class TempStore {
 public:
  explicit TempStore(const std::string& prefix = "adapterd-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    dir_ = tmpl;
    store::SqliteStoreOptions o;
    o.path = dir_ + "/db.sqlite";
    auto st = store::SqliteStore::open(o);
    REQUIRE(st);
    store_ = std::move(*st);
  }
  ~TempStore() {
    store_->close();
    std::filesystem::remove_all(dir_);
  }
  TempStore(const TempStore&) = delete;
  TempStore& operator=(const TempStore&) = delete;

  store::SqliteStore& operator*() { return *store_; }
  store::SqliteStore* operator->() { return store_.get(); }

 private:
  std::string dir_;
  std::unique_ptr<store::SqliteStore> store_;
};

}  // namespace adapter::test
