// The daemon's delivery step for one destination: takes due deliveries from the outbox, POSTs
// their Bundles through a FhirClient (at most max_in_flight at once), and records each outcome
// (delivered, retry later, dead letter) before it lets the delivery go.
//
// A delivery stays "in flight" in this process until its outcome is durable, so it is never sent
// twice at once; a crash in between leaves it pending, and it is sent again after the restart.
// Sending again is safe: every entry of the Bundle is a conditional create (ifNoneExist on the
// resource's business identifier), so the destination creates nothing twice.
//
// Threads: one of its own that decides what to send; completions arrive on the client's threads
// and on the store's writer thread. One mutex guards the state below.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "app/config.h"
#include "app/histogram.h"
#include "delivery/circuit_breaker.h"
#include "delivery/fhir_client.h"
#include "delivery/outcome.h"
#include "store/outbox.h"

namespace adapter::app {

struct DeliveryCounters {
  std::atomic<std::uint64_t> attempts{0};
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> retried{0};        // attempts that will be tried again
  std::atomic<std::uint64_t> dead_lettered{0};  // refused, or given up at a retry limit
  std::atomic<std::uint64_t> store_errors{0};
  LatencyHistogram receipt_to_delivered;  // the message's receipt -> the destination's 2xx
};

// What /metrics and logs show about a destination.
struct DestinationSnapshot {
  std::string name;
  delivery::CircuitBreaker::State circuit = delivery::CircuitBreaker::State::closed;
  int consecutive_failures = 0;
  std::uint64_t circuit_opened = 0;  // times
  std::size_t in_flight = 0;
};

class DeliveryWorker {
 public:
  DeliveryWorker(store::Outbox& outbox, std::shared_ptr<delivery::FhirClient> client,
                 const DestinationConfig& config,
                 std::chrono::milliseconds poll = std::chrono::milliseconds(100));
  ~DeliveryWorker();  // stop()
  DeliveryWorker(const DeliveryWorker&) = delete;
  DeliveryWorker& operator=(const DeliveryWorker&) = delete;

  void start();
  // Sends nothing new, waits up to `drain` for the requests in flight to be answered and
  // recorded, then returns. What is still in flight stays pending in the store (sent again
  // after a restart). Idempotent.
  void stop(std::chrono::milliseconds drain = std::chrono::seconds(10));

  // Something may be due now (a message was mapped): look at once rather than at the next poll.
  void notify();

  const DeliveryCounters& counters() const { return counters_; }
  DestinationSnapshot snapshot() const;

  // The store update for one attempt's outcome (no I/O: tests call it directly). `now` is when
  // the answer came; `rng` draws the jitter.
  static store::DeliveryUpdate decide(const store::DueDelivery& delivery,
                                      const delivery::Outcome& outcome,
                                      const delivery::RetryPolicy& policy,
                                      std::int64_t started_at_us, std::int64_t now_us,
                                      std::mt19937_64& rng);

 private:
  void run();
  void dispatch(store::DueDelivery delivery);
  void on_answer(const store::DueDelivery& delivery, std::int64_t started_at_us,
                 const Result<delivery::Response>& answer);
  void release(std::int64_t message_id);
  bool report_in_flight(const std::string& order_key) const;  // with mu_ held

  store::Outbox& outbox_;
  std::shared_ptr<delivery::FhirClient> client_;
  DestinationConfig config_;
  std::chrono::milliseconds poll_;
  DeliveryCounters counters_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool notified_ = false;  // notify() since the last look at the store
  // Sent and not yet recorded: message id -> the report (order key) it is about. One delivery per
  // report at a time, whatever the store says meanwhile: a newer version queued while an older
  // one is on the wire discards the older row (superseded), which no longer holds the newer one
  // back in the due list, yet the two must not reach the EHR out of order.
  std::map<std::int64_t, std::string> in_flight_;
  // Of those, the ones the server has not answered yet: what max_in_flight bounds. An answered
  // one waiting for its record to commit no longer holds a connection, so the next request goes
  // out meanwhile; it stays in in_flight_, so it is not sent again.
  std::size_t awaiting_answer_ = 0;
  // Released while the worker was reading the due list without the lock: that list may predate
  // their record and still show them pending, so they are not taken from it.
  std::set<std::int64_t> released_during_read_;
  delivery::CircuitBreaker breaker_;
  // A 429 or 503 with Retry-After pauses the whole destination, not just that one delivery.
  std::chrono::steady_clock::time_point paused_until_{};
  std::mt19937_64 rng_;
  std::thread thread_;
};

}  // namespace adapter::app
