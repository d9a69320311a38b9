// Retention: every interval, purges finished messages older than the configured age
// (InboxStore::purge_finished), a batch per transaction so that intake never waits long for the
// write lock. Freed pages are reused by new messages, so under a steady load the store file
// stops growing once the oldest messages age out.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "app/config.h"
#include "store/inbox_store.h"

namespace adapter::app {

class RetentionWorker {
 public:
  RetentionWorker(store::InboxStore& store, RetentionConfig config)
      : store_(store), config_(config) {}
  ~RetentionWorker() { stop(); }
  RetentionWorker(const RetentionWorker&) = delete;
  RetentionWorker& operator=(const RetentionWorker&) = delete;

  void start();  // does nothing when purge_after is 0
  void stop();

  // One pass: purges until nothing older is left (or stop). Returns how many.
  std::int64_t purge_once(std::int64_t now_us);
  std::uint64_t purged() const { return purged_.load(std::memory_order_relaxed); }

 private:
  void run();

  store::InboxStore& store_;
  RetentionConfig config_;
  std::atomic<std::uint64_t> purged_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace adapter::app
