#include "app/retention.h"

#include "app/intake.h"
#include "common/log.h"

namespace adapter::app {

void RetentionWorker::start() {
  if (config_.purge_after.count() == 0) return;
  thread_ = std::thread([this] { run(); });
}

void RetentionWorker::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::int64_t RetentionWorker::purge_once(std::int64_t now_us) {
  const std::int64_t cutoff =
      now_us - std::chrono::duration_cast<std::chrono::microseconds>(config_.purge_after).count();
  std::int64_t total = 0;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
    }
    auto n = store_.purge_finished(cutoff, config_.payload_only, config_.batch);
    if (!n) {
      log::error("retention.purge_failed", {{"error", n.error().message}});
      break;
    }
    total += *n;
    purged_.fetch_add(static_cast<std::uint64_t>(*n), std::memory_order_relaxed);
    if (static_cast<std::size_t>(*n) < config_.batch) break;
  }
  if (total > 0) {
    log::info("retention.purged", {{"messages", total}, {"payload_only", config_.payload_only}});
  }
  return total;
}

void RetentionWorker::run() {
  while (true) {
    purge_once(now_us());
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, config_.interval, [this] { return stopping_; })) return;
  }
}

}  // namespace adapter::app
