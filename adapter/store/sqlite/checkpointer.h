// Background WAL checkpoints, off the commit path.
//
// SQLite's default checkpoints run inside whichever COMMIT pushes the WAL past 1,000 pages, so
// every few dozen commits one ACK waits for a whole checkpoint (copying the WAL into the
// database and fsyncing it: milliseconds instead of a fraction of one). Instead the writer
// connection reports its WAL size after each commit (sqlite3_wal_hook) and this thread, on a
// connection of its own, runs PASSIVE checkpoints, which never block the writer or readers.
// If the WAL still grows past a hard limit (checkpoints cannot keep up), the writer checkpoints
// itself once, so the file stays bounded.
//
// Thread safety: attach() and detach() are called while the writer thread is not running
// (before it starts, after it is joined); the hook then runs on the writer thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "store/sqlite/connection.h"

namespace adapter::store::sqlite {

class Checkpointer {
 public:
  // WAL pages (4 KiB each) that start a background checkpoint, and the size at which the writer
  // checkpoints inline instead.
  static constexpr int kCheckpointPages = 1000;
  static constexpr int kHardLimitPages = 128 * 1024;

  static Result<std::unique_ptr<Checkpointer>> start(const std::string& path,
                                                     std::chrono::milliseconds busy_timeout);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Routes the writer connection's commits through this checkpointer; `writer_db` must outlive
  // the attachment (call detach() before closing it).
  void attach(sqlite3* writer_db);
  void detach();
  void stop();  // finishes a running checkpoint, then joins; idempotent

  std::uint64_t checkpoints() const { return checkpoints_.load(std::memory_order_relaxed); }

 private:
  explicit Checkpointer(DbPtr db) : db_(std::move(db)) {}
  static int on_commit(void* self, sqlite3* db, const char* schema, int wal_pages);
  void loop();

  DbPtr db_;  // this thread's own connection
  sqlite3* writer_db_ = nullptr;
  std::thread thread_;
  std::mutex mu_;  // guards the two flags below
  std::condition_variable wake_;
  bool requested_ = false;
  bool stopping_ = false;
  std::atomic<std::uint64_t> checkpoints_{0};
  // WAL frames the last checkpoint copied. The next one is asked for only after kCheckpointPages
  // more: checkpointing after every commit would let the writer restart the WAL at nearly every
  // commit, and each restart costs an extra fsync of the WAL header.
  std::atomic<int> checkpointed_frames_{0};
};

}  // namespace adapter::store::sqlite
