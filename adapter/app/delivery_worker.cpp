#include "app/delivery_worker.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "app/intake.h"  // now_us
#include "common/log.h"

namespace adapter::app {
namespace {

using Steady = std::chrono::steady_clock;

std::int64_t to_us(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

}  // namespace

DeliveryWorker::DeliveryWorker(store::Outbox& outbox, std::shared_ptr<delivery::FhirClient> client,
                               const DestinationConfig& config, std::chrono::milliseconds poll)
    : outbox_(outbox),
      client_(std::move(client)),
      config_(config),
      poll_(poll),
      breaker_(config.circuit_breaker),
      rng_(std::random_device{}()) {}

DeliveryWorker::~DeliveryWorker() {
  stop();
}

void DeliveryWorker::start() {
  thread_ = std::thread([this] { run(); });
}

void DeliveryWorker::stop(std::chrono::milliseconds drain) {
  std::unique_lock lock(mu_);
  stopping_ = true;
  cv_.notify_all();
  // Answers still arriving are recorded as usual; past the deadline they stay pending.
  cv_.wait_for(lock, drain, [this] { return in_flight_.empty(); });
  lock.unlock();
  if (thread_.joinable()) thread_.join();
}

DestinationSnapshot DeliveryWorker::snapshot() const {
  std::lock_guard lock(mu_);
  DestinationSnapshot s;
  s.name = config_.name;
  s.circuit = breaker_.state();
  s.consecutive_failures = breaker_.consecutive_failures();
  s.circuit_opened = breaker_.times_opened();
  s.in_flight = in_flight_.size();
  return s;
}

store::DeliveryUpdate DeliveryWorker::decide(const store::DueDelivery& d,
                                             const delivery::Outcome& outcome,
                                             const delivery::RetryPolicy& policy,
                                             std::int64_t started_at_us, std::int64_t now_us,
                                             std::mt19937_64& rng) {
  store::DeliveryUpdate u;
  u.attempt.message_id = d.message_id;
  u.attempt.destination = d.destination;
  u.attempt.started_at_us = started_at_us;
  u.attempt.duration_us = std::max<std::int64_t>(now_us - started_at_us, 0);
  u.attempt.status = outcome.status;
  u.attempt.error = outcome.error;
  u.response = outcome.response;
  const std::int64_t attempts = d.attempts + 1;
  switch (outcome.verdict) {
    case delivery::Verdict::delivered:
      u.state = store::DeliveryState::delivered;
      break;
    case delivery::Verdict::dead_letter:
      u.state = store::DeliveryState::dead_letter;
      break;
    case delivery::Verdict::retry: {
      const std::chrono::milliseconds wait =
          delivery::backoff_delay(policy, attempts, outcome.retry_after, rng);
      const std::int64_t next = now_us + to_us(wait);
      const std::int64_t max_age_us =
          std::chrono::duration_cast<std::chrono::microseconds>(policy.max_age).count();
      if (attempts >= policy.max_attempts) {
        u.state = store::DeliveryState::dead_letter;
        u.attempt.error = "gave up after " + std::to_string(attempts) +
                          " attempts (retry.max_attempts): " + outcome.error;
      } else if (next - d.queued_at_us > max_age_us) {
        u.state = store::DeliveryState::dead_letter;
        u.attempt.error = "gave up: the next attempt would pass retry.max_age_seconds (" +
                          std::to_string(policy.max_age.count()) + " s): " + outcome.error;
      } else {
        u.state = store::DeliveryState::pending;
        u.next_attempt_at_us = next;
      }
      break;
    }
  }
  u.attempt.outcome =
      u.state == store::DeliveryState::pending ? "retry" : std::string(store::to_string(u.state));
  return u;
}

void DeliveryWorker::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const Steady::time_point now = Steady::now();
    Steady::time_point wake = now + poll_;
    int allowance = 0;
    if (now < paused_until_) {
      wake = paused_until_;
    } else {
      const auto before = breaker_.state();
      allowance = breaker_.allowance(now, static_cast<int>(config_.max_in_flight),
                                     static_cast<int>(awaiting_answer_));
      if (before == delivery::CircuitBreaker::State::open &&
          breaker_.state() == delivery::CircuitBreaker::State::half_open) {
        log::info("delivery.circuit_half_open", {{"destination", config_.name}});
      }
      if (breaker_.state() == delivery::CircuitBreaker::State::open) {
        wake = std::min(wake, breaker_.retry_at());
      }
    }
    if (allowance > 0) {
      // In-flight deliveries are still pending in the store: ask for enough to skip them.
      const std::size_t want = static_cast<std::size_t>(allowance) + in_flight_.size();
      released_during_read_.clear();
      lock.unlock();
      auto due = outbox_.due_deliveries(config_.name, now_us(), want);
      lock.lock();
      if (!due) {
        counters_.store_errors.fetch_add(1, std::memory_order_relaxed);
        log::error("delivery.store_read_failed",
                   {{"destination", config_.name}, {"error", due.error().message}});
        cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
        continue;
      }
      std::vector<store::DueDelivery> send;
      for (store::DueDelivery& d : *due) {
        if (static_cast<int>(send.size()) >= allowance) break;
        if (in_flight_.count(d.message_id) > 0) continue;
        if (released_during_read_.count(d.message_id) > 0) continue;  // maybe stale: next round
        if (report_in_flight(d.order_key)) continue;  // its attempt's end wakes this loop
        in_flight_.emplace(d.message_id, d.order_key);
        ++awaiting_answer_;
        send.push_back(std::move(d));
      }
      if (!send.empty()) {
        lock.unlock();
        for (store::DueDelivery& d : send) dispatch(std::move(d));
        lock.lock();
        continue;  // there may be more
      }
    }
    // Nothing to send now: sleep until an answer frees a slot, new work is announced, the next
    // poll, or the breaker's probe time.
    cv_.wait_until(lock, wake, [this] { return stopping_ || notified_; });
    notified_ = false;
  }
}

void DeliveryWorker::dispatch(store::DueDelivery d) {
  const std::int64_t started = now_us();
  counters_.attempts.fetch_add(1, std::memory_order_relaxed);
  std::string bundle = std::move(d.bundle_json);
  d.bundle_json.clear();
  client_->post_bundle(std::move(bundle),
                       [this, d = std::move(d), started](const Result<delivery::Response>& answer) {
                         on_answer(d, started, answer);
                       });
}

void DeliveryWorker::on_answer(const store::DueDelivery& d, std::int64_t started_at_us,
                               const Result<delivery::Response>& answer) {
  const std::int64_t now = now_us();
  const delivery::Outcome outcome = delivery::classify(answer, std::chrono::system_clock::now());
  store::DeliveryUpdate update;
  {
    std::lock_guard lock(mu_);
    --awaiting_answer_;
    notified_ = true;  // a connection is free
    update = decide(d, outcome, config_.retry, started_at_us, now, rng_);
    const auto before = breaker_.state();
    if (outcome.destination_failed) {
      breaker_.on_failure(Steady::now());
    } else {
      breaker_.on_success();  // it answered, even if it refused this one
    }
    if (outcome.retry_after && (outcome.status == 429 || outcome.status == 503)) {
      paused_until_ = std::max(paused_until_, Steady::now() + *outcome.retry_after);
    }
    const auto after = breaker_.state();
    if (after != before && after == delivery::CircuitBreaker::State::open) {
      log::warn("delivery.circuit_open",
                {{"destination", config_.name},
                 {"consecutive_failures", breaker_.consecutive_failures()},
                 {"retry_in_ms",
                  static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                breaker_.retry_at() - Steady::now())
                                                .count())}});
    } else if (after != before && after == delivery::CircuitBreaker::State::closed) {
      log::info("delivery.circuit_closed", {{"destination", config_.name}});
    }
  }
  cv_.notify_all();

  // Counts and places only: the server's issue text may quote the Bundle, so it stays in the
  // store. Our own transport errors name only host, port and step, and are logged.
  const std::int64_t attempt = d.attempts + 1;
  switch (update.state) {
    case store::DeliveryState::delivered:
      counters_.delivered.fetch_add(1, std::memory_order_relaxed);
      if (d.received_at_us > 0)
        counters_.receipt_to_delivered.observe_us(now_us() - d.received_at_us);
      log::info("delivery.delivered", {{"message_id", d.message_id},
                                       {"destination", d.destination},
                                       {"status", outcome.status},
                                       {"attempt", attempt},
                                       {"duration_ms", update.attempt.duration_us / 1000}});
      break;
    case store::DeliveryState::pending:
      counters_.retried.fetch_add(1, std::memory_order_relaxed);
      log::warn("delivery.retry", {{"message_id", d.message_id},
                                   {"destination", d.destination},
                                   {"status", outcome.status},
                                   {"attempt", attempt},
                                   {"error", outcome.status == 0 ? outcome.error : ""},
                                   {"retry_in_ms", (update.next_attempt_at_us - now) / 1000}});
      break;
    default:
      counters_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
      log::warn("delivery.dead_letter", {{"message_id", d.message_id},
                                         {"destination", d.destination},
                                         {"status", outcome.status},
                                         {"attempt", attempt},
                                         {"error", outcome.status == 0 ? outcome.error : ""}});
      break;
  }
  const std::int64_t id = d.message_id;
  outbox_.record_delivery(std::move(update), [this, id](const Status& written) {
    if (!written) {
      // Not recorded: the row is still pending as before, so it is sent again (harmlessly).
      counters_.store_errors.fetch_add(1, std::memory_order_relaxed);
      log::error("delivery.record_failed",
                 {{"message_id", id}, {"error", written.error().message}});
    }
    release(id);
  });
}

void DeliveryWorker::release(std::int64_t message_id) {
  {
    std::lock_guard lock(mu_);
    in_flight_.erase(message_id);
    released_during_read_.insert(message_id);
    notified_ = true;  // a slot is free
  }
  cv_.notify_all();
}

bool DeliveryWorker::report_in_flight(const std::string& order_key) const {
  // A handful at most (max_in_flight): a scan is cheaper than a second index to keep in step.
  return std::any_of(in_flight_.begin(), in_flight_.end(),
                     [&](const auto& sent) { return sent.second == order_key; });
}

void DeliveryWorker::notify() {
  {
    std::lock_guard lock(mu_);
    notified_ = true;
  }
  cv_.notify_all();
}

}  // namespace adapter::app
