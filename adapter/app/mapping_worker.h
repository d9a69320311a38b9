// The daemon's mapping step: maps each stored message after its ACK has gone out, and records
// the Bundle, the template (name, version, content hash of the mappings) and the issues with the
// message. An error-severity issue makes the message mapping_failed: kept, not delivered, and
// mapped again after `adapterd replay` once the template is fixed.
//
// One thread. It polls the store (a cheap indexed query) rather than being told by intake, so
// that a replay from another process (`adapterd replay`) is picked up the same way as new input.
// Mapping never delays an ACK: it runs beside intake, and its writes share the store's group
// commit.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "app/mapper_holder.h"
#include "app/translate.h"
#include "store/inbox_store.h"

namespace adapter::app {

struct MappingCounters {
  std::atomic<std::uint64_t> mapped{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> store_errors{0};
};

class MappingWorker {
 public:
  // A destination and the mapped messages it takes (config.h); a bare name takes all of them.
  struct Route {
    Route(std::string name, DestinationFilter f = {})  // NOLINT: a name alone routes everything
        : destination(std::move(name)), filter(std::move(f)) {}
    Route(const char* name) : Route(std::string(name)) {}  // NOLINT: as above
    std::string destination;
    DestinationFilter filter;
  };

  // `destinations`: where each mapped message's Bundle is queued (in the outbox, in the same
  // transaction as its mapping), each destination whose filter takes it; none: mapped and kept,
  // not delivered.
  MappingWorker(store::InboxStore& store, std::shared_ptr<const Mapper> mapper,
                std::vector<Route> destinations = {},
                std::chrono::milliseconds poll = std::chrono::milliseconds(100));
  // With mappings that can be replaced while it runs: each message is mapped with the set that
  // is current when its mapping starts.
  MappingWorker(store::InboxStore& store, std::shared_ptr<MapperHolder> mappers,
                std::vector<Route> destinations = {},
                std::chrono::milliseconds poll = std::chrono::milliseconds(100));
  ~MappingWorker();  // stop()
  MappingWorker(const MappingWorker&) = delete;
  MappingWorker& operator=(const MappingWorker&) = delete;

  void start();
  void stop();  // finishes the message in hand, then returns; idempotent

  // New work is in the store: look now rather than at the next poll. Any thread; never blocks
  // for long (the poll stays, for replays requested by another process).
  void notify();
  // Called after each message recorded as mapped (so that delivery starts at once). Set before
  // start().
  void set_on_mapped(std::function<void()> hook) { on_mapped_ = std::move(hook); }

  const MappingCounters& counters() const { return counters_; }
  // Mapped and failed per template name ("" for messages no template took), for /metrics.
  struct TemplateCounts {
    std::uint64_t mapped = 0;
    std::uint64_t failed = 0;
    std::uint64_t held_back = 0;  // mapped, and not sent: an older version of a report
    // Open deliveries of older versions of a report, discarded when a message of this template
    // queued a newer version.
    std::uint64_t superseded = 0;
  };
  std::vector<std::pair<std::string, TemplateCounts>> template_counts() const;

  // Maps one stored message into the record to keep (no I/O: tests call it directly).
  // `supersedes`: an earlier message about the same report was queued for delivery
  // ($source.supersedes).
  static store::MappingRecord map_one(const Mapper& mapper, const store::StoredMessage& message,
                                      std::int64_t now_us, bool supersedes = false);
  // map_one(), then, when the store says this is a later version of a report an earlier message
  // queued (InboxStore::report_history), again with `supersedes`: what the daemon records, and
  // what a replay would. Versions are ordered by DiagnosticReport.issued where known, else by
  // arrival. An older version than one already queued comes back `held_back`, with a warning.
  // An issued time more than a day after the message's receipt counts as unknown (a warning).
  static Result<store::MappingRecord> map_stored(const Mapper& mapper, store::InboxStore& store,
                                                 const store::StoredMessage& message,
                                                 std::int64_t now_us);

  // The report a Bundle is about, so that deliveries about it keep their order: the first
  // DiagnosticReport's business identifier ("DiagnosticReport?identifier=system|value", from its
  // entry's ifNoneExist, else its first identifier), else the first ServiceRequest's, else the
  // message itself ("message|<id>": ordered with no other).
  static std::string order_key_of(const mapping::Json& bundle, std::int64_t message_id);
  // Every report a Bundle is about: each DiagnosticReport's key as above (an ORU^R01 with two
  // orders has two) with its issued time, else the order key.
  static std::vector<store::ReportKey> report_keys_of(const mapping::Json& bundle,
                                                      std::int64_t message_id);

 private:
  void run();
  bool wait_for(std::chrono::milliseconds d);  // false once stopping

  store::InboxStore& store_;
  std::shared_ptr<MapperHolder> mappers_;
  std::vector<Route> destinations_;
  std::chrono::milliseconds poll_;
  MappingCounters counters_;
  mutable std::mutex counts_mu_;
  std::vector<std::pair<std::string, TemplateCounts>> by_template_;  // few: a linear search
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool notified_ = false;  // notify() since the last wait
  std::function<void()> on_mapped_;
  std::thread thread_;
};

}  // namespace adapter::app
