#include "store/sqlite/checkpointer.h"

#include "common/log.h"

namespace adapter::store::sqlite {

Result<std::unique_ptr<Checkpointer>> Checkpointer::start(const std::string& path,
                                                          std::chrono::milliseconds busy_timeout) {
  Result<DbPtr> db = open_connection(path, SQLITE_OPEN_READWRITE, busy_timeout);
  if (!db) return std::move(db).error();
  // A checkpoint fsyncs the WAL before copying it and the database after: keep FULL here too.
  if (Result<std::string> r = pragma(db->get(), "PRAGMA synchronous = FULL"); !r) {
    return std::move(r).error();
  }
  auto self = std::unique_ptr<Checkpointer>(new Checkpointer(std::move(*db)));
  Checkpointer* raw = self.get();
  try {
    self->thread_ = std::thread([raw] { raw->loop(); });
  } catch (const std::system_error& e) {
    return make_error(Errc::store_unavailable,
                      std::string("cannot start the checkpoint thread: ") + e.what());
  }
  return self;
}

Checkpointer::~Checkpointer() {
  detach();
  stop();
}

void Checkpointer::attach(sqlite3* writer_db) {
  writer_db_ = writer_db;
  // Replaces SQLite's own auto-checkpoint hook (wal_autocheckpoint) on that connection.
  sqlite3_wal_hook(writer_db, &Checkpointer::on_commit, this);
}

void Checkpointer::detach() {
  if (writer_db_ != nullptr) sqlite3_wal_hook(writer_db_, nullptr, nullptr);
  writer_db_ = nullptr;
}

void Checkpointer::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int Checkpointer::on_commit(void* opaque, sqlite3* db, const char* schema, int wal_pages) {
  auto* self = static_cast<Checkpointer*>(opaque);
  if (wal_pages >= kHardLimitPages) {
    // The background checkpoints are not keeping up: bound the file at the cost of this commit.
    int log_pages = 0;
    int copied = 0;
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied);
    self->checkpointed_frames_.store(copied, std::memory_order_relaxed);
    log::warn("store.inline_checkpoint", {{"wal_pages", wal_pages}, {"checkpointed", copied}});
    return SQLITE_OK;
  }
  int done = self->checkpointed_frames_.load(std::memory_order_relaxed);
  if (wal_pages < done) {  // the WAL restarted from its beginning since that checkpoint
    done = 0;
    self->checkpointed_frames_.store(0, std::memory_order_relaxed);
  }
  if (wal_pages - done >= kCheckpointPages) {
    {
      std::lock_guard lock(self->mu_);
      self->requested_ = true;
    }
    self->wake_.notify_one();
  }
  return SQLITE_OK;
}

void Checkpointer::loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return requested_ || stopping_; });
      if (stopping_) return;
    }
    int log_pages = 0;
    int done = 0;
    const int rc =
        sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      log::warn("store.checkpoint_failed", {{"error", describe(db_.get(), rc, "checkpoint")}});
    } else {
      checkpointed_frames_.store(done, std::memory_order_relaxed);
      checkpoints_.fetch_add(1, std::memory_order_relaxed);
    }
    // Requests made while this one ran are answered by it; a commit that still finds the WAL
    // too long asks again.
    std::lock_guard lock(mu_);
    requested_ = false;
  }
}

}  // namespace adapter::store::sqlite
