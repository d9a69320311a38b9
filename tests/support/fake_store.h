// An InboxStore for tests that inject faults (leveldb's EnvWrapper idea): every append fails as
// a full disk would, or commits after a delay on a thread of its own, as the SQLite writer calls
// back from its thread. Reads find nothing.
#pragma once

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "store/inbox_store.h"

namespace adapter::test {

class FakeStore : public store::InboxStore {
 public:
  enum class Mode { fail, commit_later };
  explicit FakeStore(Mode mode, std::chrono::milliseconds delay = std::chrono::milliseconds(0))
      : mode_(mode), delay_(delay) {}
  ~FakeStore() override { close(); }

  void append(std::vector<store::InboundMessage> messages, AppendCallback done) override {
    std::lock_guard lock(mu_);
    appended_ += messages.size();
    if (mode_ == Mode::fail) {
      done(make_error(Errc::store_unavailable, "no space left on device"));
      return;
    }
    const auto id = static_cast<std::int64_t>(appended_);
    threads_.emplace_back([this, id, n = messages.size(), done = std::move(done)] {
      std::this_thread::sleep_for(delay_);
      std::vector<store::AppendOutcome> out(n);
      for (auto& o : out) o.id = id;
      done(std::move(out));
    });
  }
  Result<std::optional<store::StoredMessage>> get(std::int64_t) override {
    return std::optional<store::StoredMessage>{};
  }
  Result<std::vector<store::StoredMessage>> find(const store::MessageQuery&) override {
    return std::vector<store::StoredMessage>{};
  }
  Result<std::int64_t> count(std::optional<store::MessageState>) override {
    return std::int64_t{0};
  }
  // The mapping side is not what this fake is for: nothing to map, nothing recorded.
  Result<std::vector<store::StoredMessage>> to_map(std::int64_t, std::size_t) override {
    return std::vector<store::StoredMessage>{};
  }
  Result<std::int64_t> mapping_watermark() override { return std::int64_t{0}; }
  Result<store::MappingBacklog> mapping_backlog() override { return store::MappingBacklog{}; }
  void record_mapping(store::MappingRecord, RecordCallback done) override {
    if (done) done(make_error(Errc::store_unavailable, "fake store records no mappings"));
  }
  Result<std::optional<store::MappingRecord>> mapping_of(std::int64_t) override {
    return std::optional<store::MappingRecord>{};
  }
  Result<std::optional<store::ReportHistory>> report_history(std::string_view) override {
    return std::optional<store::ReportHistory>{};
  }
  Result<std::int64_t> requeue_mappings(std::optional<std::int64_t>) override {
    return std::int64_t{0};
  }
  Result<std::int64_t> purge_finished(std::int64_t, bool, std::size_t) override {
    return std::int64_t{0};
  }
  void close() override {
    std::lock_guard lock(mu_);
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  std::size_t appended() {
    std::lock_guard lock(mu_);
    return appended_;
  }

 private:
  Mode mode_;
  std::chrono::milliseconds delay_;
  std::mutex mu_;  // guards the two below
  std::size_t appended_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace adapter::test
