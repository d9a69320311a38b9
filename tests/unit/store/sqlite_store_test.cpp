// SqliteStore: durability, duplicate detection, group commit, failure handling and crash safety.
// Databases live in a fresh mkdtemp directory under /tmp, removed at the end of each test.
#include "store/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/sha256.h"
#include "store/sqlite/migrations.h"
#include "support/temp_dir.h"

namespace {

using adapter::Errc;
using adapter::Result;
using namespace adapter::store;
using namespace std::chrono_literals;
using AppendResult = Result<std::vector<AppendOutcome>>;

using adapter::test::TempDir;

InboundMessage make_message(const std::string& control_id, const std::string& raw,
                            const std::string& app = "LAB", const std::string& facility = "HOSP") {
  InboundMessage m;
  m.raw = raw;
  m.received_at_us = 1'700'000'000'000'000;
  m.listener = "lab";
  m.peer = "127.0.0.1:40000";
  m.sender_application = app;
  m.sender_facility = facility;
  m.control_id = control_id;
  m.message_type = "ORU^R01^ORU_R01";
  m.content_sha256 = adapter::sha256_hex(raw);
  m.ack_code = "AA";
  return m;
}

std::string hl7(const std::string& control_id, const std::string& body = "OBX|1|ST|||x") {
  return "MSH|^~\\&|LAB|HOSP|ADAPTER|EHR|20260101||ORU^R01^ORU_R01|" + control_id + "|P|2.5.1\r" +
         body + "\r";
}

std::unique_ptr<SqliteStore> open_store(const std::string& path, SqliteStoreOptions options = {}) {
  options.path = path;
  auto store = SqliteStore::open(options);
  if (!store) FAIL("open failed: " << store.error().to_string());
  return std::move(*store);
}

AppendOutcome append_one(InboxStore& store, InboundMessage message) {
  std::vector<InboundMessage> messages;
  messages.push_back(std::move(message));
  AppendResult r = append_and_wait(store, std::move(messages));
  if (!r) FAIL("append failed: " << r.error().to_string());
  REQUIRE(r->size() == 1);
  return r->front();
}

std::future<AppendResult> append_async(InboxStore& store, std::vector<InboundMessage> messages) {
  auto promise = std::make_shared<std::promise<AppendResult>>();
  std::future<AppendResult> future = promise->get_future();
  store.append(std::move(messages),
               [promise](AppendResult result) { promise->set_value(std::move(result)); });
  return future;
}

AppendResult await(std::future<AppendResult>& future) {
  REQUIRE(future.wait_for(20s) == std::future_status::ready);
  return future.get();
}

std::int64_t count_all(SqliteStore& store) {
  auto n = store.count(std::nullopt);
  REQUIRE(n.ok());
  return *n;
}

std::vector<StoredMessage> find_control_id(SqliteStore& store, const std::string& control_id) {
  MessageQuery query;
  query.control_id = control_id;
  auto rows = store.find(query);
  REQUIRE(rows.ok());
  return std::move(*rows);
}

// A plain second connection to the same file, for what the store API does not offer.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_busy_timeout(db_, 5000) == SQLITE_OK);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    const std::string text = error != nullptr ? error : "";
    sqlite3_free(error);
    if (rc != SQLITE_OK) FAIL(sql << ": " << text);
  }
  std::string text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* p = sqlite3_column_text(stmt, 0);
      if (p != nullptr) out = reinterpret_cast<const char*>(p);
    }
    sqlite3_finalize(stmt);
    return out;
  }
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

// Holds the write lock from a second connection so that the writer thread stalls in
// BEGIN IMMEDIATE: appends made meanwhile queue up and, once released, form exactly one batch.
class BatchGate {
 public:
  explicit BatchGate(SqliteStore& store) : store_(store), db_(store.path()) {
    db_.exec("BEGIN IMMEDIATE");
    const std::uint64_t before = store_.stats().batches;
    // The plug: the writer takes it alone and blocks on the lock with it.
    plug_ = append_async(store_, {make_message("", "plug")});
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (store_.stats().batches == before) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(1ms);
    }
    batches_before_release_ = store_.stats().batches;
  }

  // Lets the writer go; returns after the plug's own batch has committed.
  void release() {
    db_.exec("COMMIT");
    AppendResult plug = await(plug_);
    REQUIRE(plug.ok());
  }
  std::uint64_t batches_before_release() const { return batches_before_release_; }

 private:
  SqliteStore& store_;
  RawDb db_;
  std::future<AppendResult> plug_;
  std::uint64_t batches_before_release_ = 0;
};

// SQL for message `id` as an older schema holds it (received, control ID "M<id>").
std::string insert_message_sql(int id) {
  return "INSERT INTO messages (id, received_at_us, listener, peer, sender_application, "
         "sender_facility, control_id, message_type, content_sha256, state, raw) VALUES (" +
         std::to_string(id) + ", 5000, 'l', 'p', 'LAB', 'F', 'M" + std::to_string(id) +
         "', 'ORU^R01', 'x', 'received', X'00');";
}

}  // namespace

TEST_CASE("round trip keeps every field and the exact raw bytes", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  std::string raw = hl7("C1");
  // NUL, the MLLP framing bytes, CR LF and bytes that are not UTF-8.
  constexpr char kAwkward[] = "\0\x0b\x1c\r\n\xff\xfe end";
  raw.append(kAwkward, sizeof kAwkward - 1);
  REQUIRE(raw.find('\0') != std::string::npos);
  InboundMessage in = make_message("C1", raw, "APP\x01", "FAC");
  in.received_at_us = 1'234'567'890'123'456;
  in.listener = "genomics";
  in.peer = "[::1]:5555";
  in.message_type = "ORU^R01";
  in.error = "";
  in.ack_code = "CA";

  const AppendOutcome out = append_one(*store, in);
  CHECK(out.disposition == Disposition::stored);
  CHECK(out.id > 0);
  CHECK(out.original_id == 0);

  auto got = store->get(out.id);
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  const StoredMessage& row = **got;
  CHECK(row.id == out.id);
  CHECK(row.duplicate_count == 0);
  CHECK(row.message.raw == raw);
  CHECK(row.message.raw.size() == raw.size());
  CHECK(row.message.received_at_us == in.received_at_us);
  CHECK(row.message.listener == in.listener);
  CHECK(row.message.peer == in.peer);
  CHECK(row.message.sender_application == in.sender_application);
  CHECK(row.message.sender_facility == in.sender_facility);
  CHECK(row.message.control_id == in.control_id);
  CHECK(row.message.message_type == in.message_type);
  CHECK(row.message.content_sha256 == in.content_sha256);
  CHECK(row.message.state == MessageState::received);
  CHECK(row.message.error == in.error);
  CHECK(row.message.ack_code == in.ack_code);

  // A rejected message keeps its error, and an empty raw payload stays an empty blob.
  InboundMessage rejected = make_message("", "");
  rejected.state = MessageState::rejected;
  rejected.error = "MSH-9: message type refused";
  rejected.ack_code = "AR";
  const AppendOutcome rej = append_one(*store, rejected);
  auto got_rej = store->get(rej.id);
  REQUIRE(got_rej.ok());
  REQUIRE(got_rej->has_value());
  CHECK((*got_rej)->message.state == MessageState::rejected);
  CHECK((*got_rej)->message.error == rejected.error);
  CHECK((*got_rej)->message.ack_code == "AR");
  CHECK((*got_rej)->message.raw.empty());

  // raw is a BLOB column, not text.
  RawDb db(dir.file("inbox.db"));
  CHECK(db.text("SELECT typeof(raw) FROM messages WHERE id = " + std::to_string(out.id)) == "blob");
  CHECK(db.text("PRAGMA journal_mode") == "wal");

  auto missing = store->get(out.id + 1000);
  REQUIRE(missing.ok());
  CHECK_FALSE(missing->has_value());
}

TEST_CASE("a resend with the same content is a duplicate of the original", "[store][dedup]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  const std::string raw = hl7("C1");
  const AppendOutcome first = append_one(*store, make_message("C1", raw));
  REQUIRE(first.disposition == Disposition::stored);

  InboundMessage resend = make_message("C1", raw);
  resend.received_at_us += 5'000'000;
  const AppendOutcome second = append_one(*store, resend);
  CHECK(second.disposition == Disposition::duplicate);
  CHECK(second.id == first.id);
  CHECK(second.original_id == first.id);
  CHECK(append_one(*store, resend).disposition == Disposition::duplicate);

  CHECK(count_all(*store) == 1);
  auto row = store->get(first.id);
  REQUIRE(row.ok());
  REQUIRE(row->has_value());
  CHECK((*row)->duplicate_count == 2);
  RawDb db(dir.file("inbox.db"));
  CHECK(db.text("SELECT last_duplicate_at_us FROM messages WHERE id = " +
                std::to_string(first.id)) == std::to_string(resend.received_at_us));

  // The key is (MSH-3, MSH-4, MSH-10): another sender may reuse the control ID.
  CHECK(append_one(*store, make_message("C1", raw, "OTHERLAB")).disposition == Disposition::stored);
  CHECK(append_one(*store, make_message("C1", raw, "LAB", "OTHERFAC")).disposition ==
        Disposition::stored);
  CHECK(count_all(*store) == 3);
}

TEST_CASE("the same control ID with other content is stored as a rejected conflict",
          "[store][dedup]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  const AppendOutcome first = append_one(*store, make_message("C9", hl7("C9", "OBX|1|ST|||a")));
  const AppendOutcome second = append_one(*store, make_message("C9", hl7("C9", "OBX|1|ST|||b")));
  CHECK(second.disposition == Disposition::conflict);
  CHECK(second.original_id == first.id);
  CHECK(second.id != first.id);
  CHECK(count_all(*store) == 2);
  CHECK(*store->count(MessageState::rejected) == 1);

  auto row = store->get(second.id);
  REQUIRE(row.ok());
  REQUIRE(row->has_value());
  const InboundMessage& m = (*row)->message;
  CHECK(m.state == MessageState::rejected);
  CHECK(m.ack_code == "AE");
  CHECK(m.error == "control ID C9 from LAB|HOSP was already accepted as message " +
                       std::to_string(first.id) + " with different content");
  CHECK(m.raw == hl7("C9", "OBX|1|ST|||b"));

  // The original stays the accepted one: a resend of it is still a duplicate of it.
  const AppendOutcome third = append_one(*store, make_message("C9", hl7("C9", "OBX|1|ST|||a")));
  CHECK(third.disposition == Disposition::duplicate);
  CHECK(third.id == first.id);
}

TEST_CASE("rejected messages and empty control IDs never dedupe", "[store][dedup]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  const std::string raw = hl7("");
  CHECK(append_one(*store, make_message("", raw)).disposition == Disposition::stored);
  CHECK(append_one(*store, make_message("", raw)).disposition == Disposition::stored);

  InboundMessage rejected = make_message("R1", hl7("R1"));
  rejected.state = MessageState::rejected;
  rejected.error = "PID-3: missing";
  rejected.ack_code = "AR";
  CHECK(append_one(*store, rejected).disposition == Disposition::stored);
  CHECK(append_one(*store, rejected).disposition == Disposition::stored);
  // A rejected row does not claim the key: the corrected message is accepted normally.
  const AppendOutcome accepted = append_one(*store, make_message("R1", hl7("R1")));
  CHECK(accepted.disposition == Disposition::stored);
  CHECK(append_one(*store, rejected).disposition == Disposition::stored);
  CHECK(count_all(*store) == 6);
  CHECK(*store->count(MessageState::received) == 3);
}

TEST_CASE("a duplicate inside one request is detected", "[store][dedup]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  std::vector<InboundMessage> messages = {
      make_message("D1", hl7("D1")), make_message("D1", hl7("D1")),
      make_message("D1", hl7("D1", "OBX|1|ST|||other")), make_message("D2", hl7("D2"))};
  AppendResult r = append_and_wait(*store, messages);
  REQUIRE(r.ok());
  REQUIRE(r->size() == 4);
  CHECK((*r)[0].disposition == Disposition::stored);
  CHECK((*r)[1].disposition == Disposition::duplicate);
  CHECK((*r)[1].original_id == (*r)[0].id);
  CHECK((*r)[2].disposition == Disposition::conflict);
  CHECK((*r)[2].original_id == (*r)[0].id);
  CHECK((*r)[3].disposition == Disposition::stored);
  CHECK(count_all(*store) == 3);
  CHECK((*store->get((*r)[0].id))->duplicate_count == 1);
}

TEST_CASE("requests in one batch see each other for duplicate detection", "[store][dedup]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  BatchGate gate(*store);
  std::vector<std::future<AppendResult>> futures;
  futures.push_back(append_async(*store, {make_message("B1", hl7("B1"))}));
  futures.push_back(append_async(*store, {make_message("B1", hl7("B1"))}));
  futures.push_back(append_async(*store, {make_message("B1", hl7("B1", "OBX|changed"))}));
  CHECK(store->stats().queued == 3);
  gate.release();
  std::vector<AppendResult> results;
  for (auto& f : futures) results.push_back(await(f));
  for (auto& r : results) REQUIRE(r.ok());
  // Exactly one more transaction: the three requests were one batch.
  CHECK(store->stats().batches == gate.batches_before_release() + 1);
  const std::int64_t original = results[0]->front().id;
  CHECK(results[0]->front().disposition == Disposition::stored);
  CHECK(results[1]->front().disposition == Disposition::duplicate);
  CHECK(results[1]->front().id == original);
  CHECK(results[2]->front().disposition == Disposition::conflict);
  CHECK(results[2]->front().original_id == original);
}

TEST_CASE("a request is atomic and its failure does not affect the rest of the batch", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  RawDb side(dir.file("inbox.db"));
  // Any insert with control ID FAIL aborts, standing in for an unexpected constraint violation.
  side.exec(
      "CREATE TRIGGER test_fail BEFORE INSERT ON messages WHEN NEW.control_id = 'FAIL' "
      "BEGIN SELECT RAISE(ABORT, 'test failure'); END");

  BatchGate gate(*store);
  auto before = append_async(*store, {make_message("A1", hl7("A1"))});
  auto failing = append_async(*store, {make_message("A2", hl7("A2")), make_message("A3", hl7("A3")),
                                       make_message("FAIL", hl7("FAIL"))});
  auto after = append_async(*store, {make_message("A4", hl7("A4"))});
  gate.release();

  AppendResult r_before = await(before);
  AppendResult r_failing = await(failing);
  AppendResult r_after = await(after);
  CHECK(store->stats().batches == gate.batches_before_release() + 1);
  REQUIRE(r_before.ok());
  REQUIRE(r_after.ok());
  REQUIRE_FALSE(r_failing.ok());
  CHECK(r_failing.error().code == Errc::internal);
  CHECK_THAT(r_failing.error().message, Catch::Contains("test failure"));

  // Nothing of the failed request remains; the neighbours committed.
  CHECK(find_control_id(*store, "A1").size() == 1);
  CHECK(find_control_id(*store, "A2").empty());
  CHECK(find_control_id(*store, "A3").empty());
  CHECK(find_control_id(*store, "A4").size() == 1);
  CHECK(count_all(*store) == 3);  // the plug, A1, A4
  // A2 was rolled back, so sending it again stores it rather than calling it a duplicate.
  CHECK(append_one(*store, make_message("A2", hl7("A2"))).disposition == Disposition::stored);
}

TEST_CASE("group commit shares commits among concurrent callers", "[store][group]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  constexpr int kThreads = 16;
  constexpr int kPerThread = 200;
  std::atomic<int> successes{0};
  std::atomic<int> failures{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "G" + std::to_string(t) + "-" + std::to_string(i);
        AppendResult r = append_and_wait(*store, {make_message(id, hl7(id))});
        if (r.ok() && r->size() == 1 && r->front().disposition == Disposition::stored) {
          successes.fetch_add(1);
        } else {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const SqliteStoreStats stats = store->stats();
  WARN("group commit: " << stats.requests << " appends in " << stats.commits << " commits, "
                        << static_cast<double>(stats.requests) / seconds << " appends/s");
  CHECK(failures.load() == 0);
  CHECK(successes.load() == kThreads * kPerThread);
  CHECK(count_all(*store) == kThreads * kPerThread);
  CHECK(stats.requests == kThreads * kPerThread);
  CHECK(stats.messages == kThreads * kPerThread);
  CHECK(stats.failed_batches == 0);
  // One commit per append would be 3200; sharing must cut that at least by half.
  CHECK(stats.commits <= kThreads * kPerThread / 2);
}

TEST_CASE("WAL checkpoints run between transactions and not inside commits",
          "[store][checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("inbox.db");
  auto store = open_store(path);
  // ~6 MB of messages: far past the 1,000-page WAL threshold (4 MB).
  const std::string body = "OBX|1|TX|||" + std::string(3000, 'x');
  for (int r = 0; r < 40; ++r) {
    std::vector<InboundMessage> request;
    for (int i = 0; i < 50; ++i) {
      const std::string id = "K" + std::to_string(r) + "-" + std::to_string(i);
      request.push_back(make_message(id, hl7(id, body)));
    }
    AppendResult result = append_and_wait(*store, std::move(request));
    REQUIRE(result.ok());
  }
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (store->stats().checkpoints == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(store->stats().checkpoints >= 1);
  // The checkpoint copied pages into the database file itself (it was a few pages at open).
  CHECK(std::filesystem::file_size(path) > 1000u * 4096u);
  store->close();
  store.reset();
  auto reopened = open_store(path);
  CHECK(count_all(*reopened) == 2000);
}

TEST_CASE("max_batch bounds the messages of one commit", "[store][group]") {
  TempDir dir;
  SqliteStoreOptions options;
  options.max_batch = 3;
  auto store = open_store(dir.file("inbox.db"), options);
  BatchGate gate(*store);
  std::vector<std::future<AppendResult>> futures;
  for (int i = 0; i < 6; ++i) {
    const std::string id = "M" + std::to_string(i);
    futures.push_back(append_async(*store, {make_message(id, hl7(id))}));
  }
  // A request larger than max_batch is not split: it commits alone, whole.
  std::vector<InboundMessage> big;
  for (int i = 0; i < 5; ++i) big.push_back(make_message("BIG" + std::to_string(i), "x"));
  futures.push_back(append_async(*store, big));
  gate.release();
  for (auto& f : futures) REQUIRE(await(f).ok());
  CHECK(store->stats().batches == gate.batches_before_release() + 3);
  CHECK(count_all(*store) == 1 + 6 + 5);
}

TEST_CASE("close drains queued appends and refuses later ones", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  std::vector<std::future<AppendResult>> futures;
  for (int i = 0; i < 200; ++i) {
    const std::string id = "Q" + std::to_string(i);
    futures.push_back(append_async(*store, {make_message(id, hl7(id))}));
  }
  store->close();
  // Every callback has already run: close() returned after the drain.
  for (auto& f : futures) {
    REQUIRE(f.wait_for(0s) == std::future_status::ready);
    CHECK(f.get().ok());
  }
  CHECK(count_all(*store) == 200);

  AppendResult late = append_and_wait(*store, {make_message("LATE", hl7("LATE"))});
  REQUIRE_FALSE(late.ok());
  CHECK(late.error().code == Errc::store_unavailable);
  store->close();  // idempotent
  CHECK(count_all(*store) == 200);

  // A second handle on the file sees everything the first acknowledged.
  store.reset();
  auto reopened = open_store(dir.file("inbox.db"));
  CHECK(count_all(*reopened) == 200);
}

TEST_CASE("find filters by state and control ID and pages by id", "[store]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i) {
    const std::string id = "F" + std::to_string(i);
    ids.push_back(append_one(*store, make_message(id, hl7(id))).id);
  }
  InboundMessage rejected = make_message("F2", "garbage");
  rejected.state = MessageState::rejected;
  const std::int64_t rejected_id = append_one(*store, rejected).id;

  MessageQuery page;
  page.limit = 2;
  auto first = store->find(page);
  REQUIRE(first.ok());
  REQUIRE(first->size() == 2);
  CHECK((*first)[0].id == ids[0]);
  CHECK((*first)[1].id == ids[1]);
  page.after_id = (*first)[1].id;
  auto second = store->find(page);
  REQUIRE(second.ok());
  REQUIRE(second->size() == 2);
  CHECK((*second)[0].id == ids[2]);

  MessageQuery by_state;
  by_state.state = MessageState::rejected;
  auto rejected_rows = store->find(by_state);
  REQUIRE(rejected_rows.ok());
  REQUIRE(rejected_rows->size() == 1);
  CHECK((*rejected_rows)[0].id == rejected_id);

  auto f2 = find_control_id(*store, "F2");
  REQUIRE(f2.size() == 2);
  CHECK(f2[0].id < f2[1].id);

  MessageQuery both;
  both.state = MessageState::received;
  both.control_id = "F2";
  auto received_f2 = store->find(both);
  REQUIRE(received_f2.ok());
  REQUIRE(received_f2->size() == 1);
  CHECK((*received_f2)[0].id == ids[2]);

  MessageQuery none;
  none.limit = 0;
  CHECK(store->find(none)->empty());
  CHECK(*store->count(MessageState::received) == 5);
  CHECK(*store->count(MessageState::rejected) == 1);
}

TEST_CASE("migrations create then keep and refuse schemas", "[store][migrations]") {
  TempDir dir;
  const std::string path = dir.file("inbox.db");

  SECTION("a fresh database gets the latest version and keeps its data on reopen") {
    {
      auto store = open_store(path);
      append_one(*store, make_message("K1", hl7("K1")));
    }
    {
      RawDb db(path);
      CHECK(db.text("PRAGMA user_version") == "7");
      CHECK(latest_schema_version() == 7);
      CHECK(db.text("PRAGMA application_id") == std::to_string(kApplicationId));
    }
    auto store = open_store(path);
    CHECK(count_all(*store) == 1);
    CHECK(find_control_id(*store, "K1").size() == 1);
    // The key is still enforced across restarts.
    CHECK(append_one(*store, make_message("K1", hl7("K1"))).disposition == Disposition::duplicate);
  }

  SECTION("a database newer than this binary is refused") {
    {
      RawDb db(path);
      db.exec("PRAGMA user_version = 99");
    }
    SqliteStoreOptions options;
    options.path = path;
    auto store = SqliteStore::open(options);
    REQUIRE_FALSE(store.ok());
    CHECK(store.error().code == Errc::bad_config);
    CHECK(store.error().message ==
          "database schema version 99 is newer than this adapterd supports (7)");
  }

  SECTION("somebody else's database is refused and left untouched") {
    {
      RawDb db(path);
      db.exec("CREATE TABLE patients (name TEXT)");
    }
    SqliteStoreOptions options;
    options.path = path;
    auto store = SqliteStore::open(options);
    REQUIRE_FALSE(store.ok());
    CHECK(store.error().code == Errc::bad_config);
    RawDb db(path);
    CHECK(db.text("SELECT count(*) FROM sqlite_master WHERE name = 'messages'") == "0");
  }

  SECTION("a version 4 database gets its reports' history from the deliveries it holds") {
    {
      RawDb db(path);
      REQUIRE(migrate(db.get(), schema_migrations().first(4)).ok());
      std::string sql = "PRAGMA application_id = " + std::to_string(kApplicationId) + ";";
      for (int id : {1, 2, 3}) {
        sql += insert_message_sql(id) +
               "INSERT INTO deliveries (message_id, destination, order_key, state, queued_at_us, "
               "next_attempt_at_us) VALUES (" +
               std::to_string(id) + ", 'ehr', '" + (id == 2 ? "r2" : "r1") +
               "', 'delivered', 1, 1);";
      }
      db.exec(sql);
    }
    auto store = open_store(path);
    auto r1 = store->report_history("r1");
    REQUIRE(r1);
    REQUIRE(*r1);
    CHECK((*r1)->first_message_id == 1);
    CHECK((*r1)->last_message_id == 3);
    CHECK((*r1)->latest_issued_us == 0);  // unknown until the next message about it
    CHECK((*store->report_history("r2"))->first_message_id == 2);
    CHECK_FALSE(*store->report_history("r3"));
  }

  SECTION("a version 6 database knows each report's newest version and its message") {
    {
      RawDb db(path);
      REQUIRE(migrate(db.get(), schema_migrations().first(6)).ok());
      std::string sql = "PRAGMA application_id = " + std::to_string(kApplicationId) + ";";
      for (int id : {1, 2, 3}) sql += insert_message_sql(id);
      // r1's newest version is message 2's, still to be sent; r2's has no issued time; r3's
      // message was purged.
      sql +=
          "INSERT INTO deliveries (message_id, destination, order_key, state, queued_at_us, "
          "next_attempt_at_us) VALUES (2, 'ehr', 'r1', 'pending', 1, 1);"
          "INSERT INTO reports VALUES ('r1', 1, 2, 2000, 2), ('r2', 1, 1, 0, 0), "
          "('r3', 9, 9, 2000, 9);";
      db.exec(sql);
    }
    auto store = open_store(path);
    {
      RawDb db(path);
      CHECK(db.text("PRAGMA user_version") == "7");
      CHECK(db.text("SELECT group_concat(message_id || ' ' || order_key || ' ' || issued_us, "
                    "', ') FROM report_versions") == "2 r1 2000");
    }
    // A newer version of r1 discards the delivery the version 6 store had queued.
    MappingRecord newer;
    newer.message_id = 3;
    newer.state = MappingState::mapped;
    newer.issues_json = "[]";
    newer.bundle_json = "{}";
    newer.deliver_to = {"ehr"};
    newer.order_key = "r1";
    newer.report_keys = {{"r1", 3000}};
    auto recorded = record_mapping_and_wait(*store, newer);
    REQUIRE(recorded.ok());
    CHECK(recorded->superseded == 1);
    CHECK(store->deliveries_of(2)->front().state == DeliveryState::discarded);
  }

  SECTION("a version 3 database is upgraded in place, its replayed mappings kept") {
    {
      RawDb db(path);
      REQUIRE(migrate(db.get(), schema_migrations().first(3)).ok());
      db.exec(
          "PRAGMA application_id = " + std::to_string(kApplicationId) +
          "; INSERT INTO messages (id, received_at_us, listener, peer, sender_application, "
          "sender_facility, control_id, message_type, content_sha256, state, raw) VALUES "
          "(1, 5000, 'l', 'p', 'LAB', 'F', 'OLD1', 'ORU^R01', 'x', 'received', X'00');"
          "INSERT INTO mappings (message_id, state, template, template_version, template_set, "
          "issues, mapped_at_us, bundle) VALUES (1, 'pending', 't', '1', 's', '[]', 6000, '{}')");
    }
    auto store = open_store(path);
    {
      RawDb db(path);
      CHECK(db.text("PRAGMA user_version") == "7");
    }
    // Replayed before the column existed: it waits since its receipt, as it did.
    auto backlog = store->mapping_backlog();
    REQUIRE(backlog);
    CHECK(backlog->pending == 1);
    CHECK(backlog->oldest_since_us == 5000);
    CHECK(store->to_map(1, 10)->size() == 1);
  }

  SECTION("a failing migration is rolled back and leaves the previous version") {
    RawDb db(path);
    const Migration migrations[] = {
        schema_migrations()[0],
        {2, "CREATE TABLE outbox (id INTEGER PRIMARY KEY); INSERT INTO no_such_table VALUES (1);"},
    };
    adapter::Status s = migrate(db.get(), migrations);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == Errc::store_unavailable);
    CHECK_THAT(s.error().message, Catch::Contains("no_such_table"));
    CHECK(db.text("PRAGMA user_version") == "1");
    CHECK(db.text("SELECT count(*) FROM sqlite_master WHERE name = 'outbox'") == "0");
    CHECK(db.text("SELECT count(*) FROM sqlite_master WHERE name = 'messages'") == "1");
    CHECK(sqlite3_get_autocommit(db.get()) != 0);  // no transaction left open
  }
}

TEST_CASE("open reports bad paths as error values", "[store]") {
  TempDir dir;
  SECTION("missing parent directories are created") {
    auto store = open_store(dir.file("a/b/c/inbox.db"));
    append_one(*store, make_message("P1", hl7("P1")));
    CHECK(std::filesystem::is_regular_file(dir.file("a/b/c/inbox.db")));
  }
  SECTION("a directory that cannot be created") {
    { std::ofstream(dir.file("plain-file")) << "not a directory"; }
    SqliteStoreOptions options;
    options.path = dir.file("plain-file/sub/inbox.db");
    auto store = SqliteStore::open(options);
    REQUIRE_FALSE(store.ok());
    CHECK(store.error().code == Errc::io_error);
    CHECK_THAT(store.error().message, Catch::Contains("plain-file/sub"));
  }
  SECTION("an empty path") {
    auto store = SqliteStore::open(SqliteStoreOptions{});
    REQUIRE_FALSE(store.ok());
    CHECK(store.error().code == Errc::bad_config);
  }
  SECTION("an in-memory database cannot be durable") {
    SqliteStoreOptions options;
    options.path = ":memory:";
    auto store = SqliteStore::open(options);
    REQUIRE_FALSE(store.ok());
    CHECK(store.error().code == Errc::store_unavailable);
  }
  SECTION("the path is a directory") {
    SqliteStoreOptions options;
    options.path = dir.path();
    auto store = SqliteStore::open(options);
    REQUIRE_FALSE(store.ok());
  }
}

TEST_CASE("disk full fails the request that hit it and the store recovers", "[store][failure]") {
  TempDir dir;
  SqliteStoreOptions options;
  options.max_page_count_for_test = 64;  // 256 KiB with 4 KiB pages
  auto store = open_store(dir.file("inbox.db"), options);

  BatchGate gate(*store);
  auto small_before = append_async(*store, {make_message("S1", hl7("S1"))});
  auto big = append_async(*store, {make_message("BIG", std::string(1 << 20, 'x'))});
  auto small_after = append_async(*store, {make_message("S2", hl7("S2"))});
  gate.release();

  // SQLite answers SQLITE_FULL by rolling back the whole transaction, S1's work included: the
  // writer must fail only BIG and commit S1 and S2 in a fresh transaction.
  AppendResult r_big = await(big);
  REQUIRE_FALSE(r_big.ok());
  CHECK(r_big.error().code == Errc::store_unavailable);
  CHECK_THAT(r_big.error().message, Catch::Contains("full"));
  CHECK(await(small_before).ok());
  CHECK(await(small_after).ok());
  CHECK(find_control_id(*store, "BIG").empty());

  // Later small appends succeed.
  for (int i = 0; i < 10; ++i) {
    const std::string id = "AFTER" + std::to_string(i);
    CHECK(append_one(*store, make_message(id, hl7(id))).disposition == Disposition::stored);
  }
  CHECK(count_all(*store) == 1 + 2 + 10);
  CHECK(store->stats().failed_requests == 1);
}

TEST_CASE("a failed COMMIT fails every request of its batch and the store recovers",
          "[store][failure]") {
  TempDir dir;
  const std::string path = dir.file("inbox.db");
  const std::string log_path = dir.file("log.jsonl");
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(log_fd >= 0);
  adapter::log::configure({adapter::log::Level::info, false, log_fd});

  auto store = open_store(path);
  RawDb side(path);
  // An insert with control ID POISON leaves a deferred foreign-key violation behind, which SQLite
  // checks only at COMMIT: a deterministic COMMIT failure.
  side.exec(
      "CREATE TABLE test_parent (id INTEGER PRIMARY KEY);"
      "CREATE TABLE test_child (parent_id INTEGER "
      "  REFERENCES test_parent (id) DEFERRABLE INITIALLY DEFERRED);"
      "CREATE TRIGGER test_poison AFTER INSERT ON messages WHEN NEW.control_id = 'POISON' "
      "BEGIN INSERT INTO test_child VALUES (42); END;");

  const std::int64_t before = count_all(*store);
  BatchGate gate(*store);
  auto good1 = append_async(*store, {make_message("GOOD1", hl7("GOOD1", "OBX|SECRET-PATIENT"))});
  auto poison = append_async(*store, {make_message("POISON", hl7("POISON"))});
  auto good2 = append_async(*store, {make_message("GOOD2", hl7("GOOD2"))});
  gate.release();

  for (auto* f : {&good1, &poison, &good2}) {
    AppendResult r = await(*f);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::store_unavailable);
    CHECK_THAT(r.error().message, Catch::Contains("FOREIGN KEY constraint failed"));
  }
  CHECK(count_all(*store) == before + 1);  // only the plug
  CHECK(find_control_id(*store, "GOOD1").empty());
  CHECK(store->stats().failed_batches == 1);

  // The writer keeps going: the same messages without the poison commit.
  CHECK(append_one(*store, make_message("GOOD1", hl7("GOOD1"))).disposition == Disposition::stored);
  CHECK(append_one(*store, make_message("GOOD2", hl7("GOOD2"))).disposition == Disposition::stored);
  CHECK(count_all(*store) == before + 3);

  store.reset();
  adapter::log::configure({});
  ::close(log_fd);
  std::ifstream log_in(log_path);
  std::stringstream log_text;
  log_text << log_in.rdbuf();
  CHECK_THAT(log_text.str(), Catch::Contains("store.commit_failed"));
  CHECK_THAT(log_text.str(), !Catch::Contains("SECRET-PATIENT"));
}

namespace {

// The child of the crash test: appends from 4 threads forever (or until a safety cap), writing
// each control ID to `fd` once its append has been acknowledged. Never returns.
[[noreturn]] void crash_child(const std::string& path, int fd, int round) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a parent that died mid-test
  adapter::log::configure({adapter::log::Level::error, false, 2});
  SqliteStoreOptions options;
  options.path = path;
  auto store = SqliteStore::open(options);
  if (!store) ::_exit(2);
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(round * 100 + t));
      // Sizes up to 16 KiB so that the WAL reaches its checkpoint threshold during the run and
      // the kill can land in a checkpoint too.
      std::uniform_int_distribution<std::size_t> size(100, 16 * 1024);
      for (int i = 0; i < 100'000 && !failed; ++i) {
        const std::string id =
            "R" + std::to_string(round) + "-T" + std::to_string(t) + "-" + std::to_string(i);
        const std::string raw = hl7(id, std::string(size(rng), 'v'));
        AppendResult r = append_and_wait(**store, {make_message(id, raw)});
        if (!r || r->front().disposition != Disposition::stored) {
          failed = true;
          break;
        }
        const std::string line = id + "\n";  // < PIPE_BUF: written atomically
        if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          failed = true;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ::_exit(failed ? 3 : 0);
}

}  // namespace

TEST_CASE("acknowledged messages survive SIGKILL at any moment", "[store][crash]") {
  TempDir dir;
  const std::string path = dir.file("crash/inbox.db");
  std::mt19937 rng(std::random_device{}());
  std::set<std::string> all_acked;

  for (int round = 0; round < 3; ++round) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      crash_child(path, fds[1], round);
    }
    ::close(fds[1]);

    const std::size_t kill_after = 300 + std::uniform_int_distribution<std::size_t>(0, 200)(rng);
    std::vector<std::string> acked;
    std::string pending;
    bool killed = false;
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // EOF: the child is gone and every acknowledgment is read
      pending.append(buffer, static_cast<std::size_t>(n));
      for (std::size_t eol; (eol = pending.find('\n')) != std::string::npos;) {
        acked.push_back(pending.substr(0, eol));
        pending.erase(0, eol + 1);
      }
      if (!killed && acked.size() >= kill_after) {
        std::this_thread::sleep_for(
            std::chrono::microseconds(std::uniform_int_distribution<int>(0, 3000)(rng)));
        REQUIRE(::kill(pid, SIGKILL) == 0);
        killed = true;
      }
    }
    ::close(fds[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    INFO("round " << round << ", child status " << status);
    REQUIRE(killed);
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(WTERMSIG(status) == SIGKILL);
    REQUIRE(acked.size() >= kill_after);

    {
      RawDb db(path);
      CHECK(db.text("PRAGMA integrity_check") == "ok");
    }
    auto store = open_store(path);
    all_acked.insert(acked.begin(), acked.end());
    std::size_t missing = 0;
    std::size_t repeated = 0;
    for (const std::string& id : all_acked) {
      const std::size_t n = find_control_id(*store, id).size();
      if (n == 0) ++missing;
      if (n > 1) ++repeated;
    }
    CHECK(missing == 0);
    CHECK(repeated == 0);
    CHECK(count_all(*store) >= static_cast<std::int64_t>(all_acked.size()));
    WARN("crash round " << round << ": " << acked.size() << " acknowledged before SIGKILL, "
                        << count_all(*store) << " rows in total");
  }
  CHECK(all_acked.size() >= 900);
}

TEST_CASE("mappings: to map, record, watermark and replay", "[store][mapping]") {
  TempDir dir;
  const std::string path = dir.file("inbox.db");

  SECTION("a version 1 database is upgraded and its messages become work to map") {
    {
      RawDb db(path);
      const Migration v1[] = {schema_migrations()[0]};
      REQUIRE(migrate(db.get(), v1).ok());
      db.exec(
          "INSERT INTO messages (received_at_us, listener, peer, sender_application, "
          "sender_facility, control_id, message_type, content_sha256, state, raw) VALUES "
          "(1, 'lab', 'p', 'LAB', 'HOSP', 'OLD1', 'ORU^R01', 'x', 'received', X'4D5348')");
    }
    auto store = open_store(path);
    auto work = store->to_map(0, 10);
    REQUIRE(work);
    REQUIRE(work->size() == 1);
    CHECK(work->front().message.control_id == "OLD1");
  }

  SECTION("recorded messages leave the work list; replay brings failed ones back") {
    auto store = open_store(path);
    const auto a = append_one(*store, make_message("A", hl7("A")));
    const auto b = append_one(*store, make_message("B", hl7("B")));
    InboundMessage rejected = make_message("", "garbage");
    rejected.state = MessageState::rejected;
    append_one(*store, rejected);  // never work to map

    auto work = store->to_map(0, 10);
    REQUIRE(work);
    REQUIRE(work->size() == 2);
    CHECK(*store->mapping_watermark() == 0);

    MappingRecord ok;
    ok.message_id = a.id;
    ok.state = MappingState::mapped;
    ok.template_name = "oru-r01";
    ok.template_version = "1.0.0";
    ok.template_set = "abc";
    ok.issues_json = "[]";
    ok.unmapped_json = "[\"ZGX-1 = 1\"]";
    ok.bundle_json = "{\"resourceType\":\"Bundle\"}";
    ok.mapped_at_us = 5;
    REQUIRE(record_mapping_and_wait(*store, ok).ok());
    MappingRecord failed = ok;
    failed.message_id = b.id;
    failed.state = MappingState::mapping_failed;
    failed.bundle_json.clear();
    REQUIRE(record_mapping_and_wait(*store, failed).ok());

    CHECK(store->to_map(0, 10)->empty());
    CHECK(*store->mapping_watermark() == b.id);
    auto read = store->mapping_of(a.id);
    REQUIRE(read);
    REQUIRE(read->has_value());
    CHECK((*read)->state == MappingState::mapped);
    CHECK((*read)->bundle_json == ok.bundle_json);
    CHECK((*read)->unmapped_json == ok.unmapped_json);
    CHECK((*read)->attempts == 1);

    // Replay of every failed one: only B.
    CHECK(*store->requeue_mappings(std::nullopt) == 1);
    work = store->to_map(b.id, 10);  // pending ones come whatever the watermark
    REQUIRE(work->size() == 1);
    CHECK(work->front().id == b.id);
    failed.state = MappingState::mapped;
    REQUIRE(record_mapping_and_wait(*store, failed).ok());
    CHECK((*store->mapping_of(b.id))->attempts == 2);
    CHECK(store->to_map(0, 10)->empty());

    // Replay of one message, and of one that has no mapping.
    CHECK(*store->requeue_mappings(a.id) == 1);
    CHECK(*store->requeue_mappings(999) == 0);
    CHECK(store->to_map(b.id, 10)->size() == 1);
  }
}

TEST_CASE("mappings: the backlog counts what waits to be mapped, and since when",
          "[store][mapping]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  // The backlog is to_map() counted: check both agree at every step, from the watermark the
  // mapping worker would resume at.
  auto expect_backlog = [&](std::int64_t pending, std::int64_t oldest_since_us) {
    auto backlog = store->mapping_backlog();
    REQUIRE(backlog);
    CHECK(backlog->pending == pending);
    CHECK(backlog->oldest_since_us == oldest_since_us);
    auto work = store->to_map(*store->mapping_watermark(), 1000);
    REQUIRE(work);
    CHECK(static_cast<std::int64_t>(work->size()) == pending);
  };
  auto received_at = [](InboundMessage m, std::int64_t us) {
    m.received_at_us = us;
    return m;
  };
  auto record = [&](std::int64_t id, MappingState state) {
    MappingRecord r;
    r.message_id = id;
    r.state = state;
    r.template_name = "oru-r01";
    r.template_version = "1";
    r.template_set = "set";
    r.issues_json = "[]";
    r.mapped_at_us = 9000;
    REQUIRE(record_mapping_and_wait(*store, r).ok());
  };

  expect_backlog(0, 0);
  const auto a = append_one(*store, received_at(make_message("A", hl7("A")), 2000));
  const auto b = append_one(*store, received_at(make_message("B", hl7("B")), 3000));
  InboundMessage rejected = received_at(make_message("", "garbage"), 1000);
  rejected.state = MessageState::rejected;
  append_one(*store, rejected);  // older than both, but never mapped: not in the backlog
  expect_backlog(2, 2000);

  record(a.id, MappingState::mapped);
  expect_backlog(1, 3000);
  record(b.id, MappingState::mapping_failed);
  expect_backlog(0, 0);

  // A later message received earlier (a slow sender's commit) is the oldest by receipt.
  const auto c = append_one(*store, received_at(make_message("C", hl7("C")), 2500));
  expect_backlog(1, 2500);
  // A replayed mapping waits again, once, counted from the replay: its message was received
  // long before (2000 and 3000 us after the epoch here), which would read as a backlog decades
  // old.
  const auto now = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const std::int64_t before_replay = now();
  REQUIRE(*store->requeue_mappings(b.id) == 1);
  REQUIRE(*store->requeue_mappings(a.id) == 1);
  const std::int64_t after_replay = now();
  expect_backlog(3, 2500);  // C, never mapped, has waited since its receipt: the longest

  record(c.id, MappingState::mapped);  // the watermark passes the replayed ones
  auto replayed = store->mapping_backlog();
  REQUIRE(replayed);
  CHECK(replayed->pending == 2);
  CHECK(replayed->oldest_since_us >= before_replay);
  CHECK(replayed->oldest_since_us <= after_replay);
  record(a.id, MappingState::mapped);
  record(b.id, MappingState::mapped);
  expect_backlog(0, 0);
}

// --- The outbox -------------------------------------------------------------------------------

namespace {

MappingRecord mapped_record(std::int64_t message_id, const std::string& order_key,
                            std::vector<std::string> destinations = {"ehr"}) {
  MappingRecord r;
  r.message_id = message_id;
  r.state = MappingState::mapped;
  r.template_name = "oru-r01";
  r.template_version = "1";
  r.template_set = "set";
  r.issues_json = "[]";
  r.bundle_json = "{\"resourceType\":\"Bundle\",\"id\":\"" + std::to_string(message_id) + "\"}";
  r.mapped_at_us = 1000;
  r.deliver_to = std::move(destinations);
  r.order_key = order_key;
  return r;
}

DeliveryUpdate attempt(std::int64_t message_id, DeliveryState state, int status,
                       std::int64_t started_at_us, std::int64_t next_at_us = 0,
                       const std::string& destination = "ehr") {
  DeliveryUpdate u;
  u.attempt.message_id = message_id;
  u.attempt.destination = destination;
  u.attempt.started_at_us = started_at_us;
  u.attempt.duration_us = 10;
  u.attempt.status = status;
  u.attempt.outcome = std::string(to_string(state));
  if (state != DeliveryState::delivered) u.attempt.error = "HTTP " + std::to_string(status);
  u.state = state;
  u.next_attempt_at_us = next_at_us;
  u.response = state == DeliveryState::delivered ? "[{\"status\":\"201\"}]" : "{\"issue\":[]}";
  return u;
}

std::vector<std::int64_t> due_ids(Outbox& outbox, std::int64_t now_us,
                                  const std::string& destination = "ehr") {
  auto due = outbox.due_deliveries(destination, now_us, 100);
  if (!due) FAIL("due_deliveries: " << due.error().to_string());
  std::vector<std::int64_t> ids;
  for (const DueDelivery& d : *due) ids.push_back(d.message_id);
  return ids;
}

}  // namespace

TEST_CASE("outbox: a mapped message is queued per destination in the mapping's transaction",
          "[store][outbox]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  const auto a = append_one(*store, make_message("A", hl7("A")));
  const auto b = append_one(*store, make_message("B", hl7("B")));
  REQUIRE(record_mapping_and_wait(*store, mapped_record(a.id, "r1", {"ehr", "registry"})).ok());
  MappingRecord failed = mapped_record(b.id, "r2");
  failed.state = MappingState::mapping_failed;  // not queued, whatever deliver_to says
  REQUIRE(record_mapping_and_wait(*store, failed).ok());

  auto due = store->due_deliveries("ehr", 1000, 10);
  REQUIRE(due);
  REQUIRE(due->size() == 1);
  CHECK(due->front().message_id == a.id);
  CHECK(due->front().order_key == "r1");
  CHECK(due->front().bundle_json.find("\"id\":\"" + std::to_string(a.id)) != std::string::npos);
  CHECK(due_ids(*store, 1000, "registry") == std::vector<std::int64_t>{a.id});
  CHECK(due_ids(*store, 999).empty());  // not before its time
  CHECK(store->deliveries_of(b.id)->empty());
  auto counts = store->outbox_counts("ehr");
  REQUIRE(counts);
  CHECK(counts->pending == 1);
  CHECK(counts->oldest_pending_queued_at_us == 1000);
  CHECK(**store->next_due_at("ehr") == 1000);
  CHECK(!*store->next_due_at("nowhere"));
}

TEST_CASE("outbox: attempts, retries, delivery and dead letters are recorded", "[store][outbox]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  const auto a = append_one(*store, make_message("A", hl7("A")));
  REQUIRE(record_mapping_and_wait(*store, mapped_record(a.id, "r1")).ok());

  // A 503: pending again, due later.
  REQUIRE(record_delivery_and_wait(*store, attempt(a.id, DeliveryState::pending, 503, 2000, 5000))
              .ok());
  CHECK(due_ids(*store, 4999).empty());
  CHECK(due_ids(*store, 5000) == std::vector<std::int64_t>{a.id});
  // Delivered.
  REQUIRE(
      record_delivery_and_wait(*store, attempt(a.id, DeliveryState::delivered, 200, 5000)).ok());
  CHECK(due_ids(*store, 1'000'000).empty());
  auto rows = store->deliveries_of(a.id);
  REQUIRE(rows);
  REQUIRE(rows->size() == 1);
  const DeliveryRecord& d = rows->front();
  CHECK(d.state == DeliveryState::delivered);
  CHECK(d.attempts == 2);
  CHECK(d.last_status == 200);
  CHECK(d.delivered_at_us == 5010);
  CHECK(d.response == "[{\"status\":\"201\"}]");
  auto attempts = store->attempts_of(a.id);
  REQUIRE(attempts);
  REQUIRE(attempts->size() == 2);
  CHECK((*attempts)[0].number == 1);
  CHECK((*attempts)[0].status == 503);
  CHECK((*attempts)[0].started_at_us == 2000);
  CHECK((*attempts)[0].error == "HTTP 503");
  CHECK((*attempts)[1].number == 2);
  CHECK((*attempts)[1].outcome == "delivered");

  // A replay queues it again from scratch (the destination deduplicates).
  MappingRecord again = mapped_record(a.id, "r1");
  again.mapped_at_us = 9000;
  REQUIRE(record_mapping_and_wait(*store, again).ok());
  rows = store->deliveries_of(a.id);
  CHECK(rows->front().state == DeliveryState::pending);
  CHECK(rows->front().attempts == 0);
  CHECK(due_ids(*store, 9000) == std::vector<std::int64_t>{a.id});
  // A refused one becomes a dead letter, with the server's answer; numbering goes on.
  REQUIRE(
      record_delivery_and_wait(*store, attempt(a.id, DeliveryState::dead_letter, 400, 9100)).ok());
  rows = store->deliveries_of(a.id);
  CHECK(rows->front().state == DeliveryState::dead_letter);
  CHECK(rows->front().response == "{\"issue\":[]}");
  CHECK(store->attempts_of(a.id)->back().number == 3);
  auto dead = store->find_deliveries(DeliveryQuery{DeliveryState::dead_letter, {}, 0, 10});
  REQUIRE(dead);
  REQUIRE(dead->size() == 1);
  CHECK(dead->front().message_id == a.id);
  CHECK(store->find_deliveries(DeliveryQuery{DeliveryState::delivered, {}, 0, 10})->empty());
}

TEST_CASE("outbox: deliveries of one report go out one at a time in receipt order",
          "[store][outbox]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  std::vector<std::int64_t> ids;
  for (const char* id : {"A", "B", "C", "D"}) {
    ids.push_back(append_one(*store, make_message(id, hl7(id))).id);
  }
  // A and C are about report r1 (C corrects A); B and D about r2 and r3.
  REQUIRE(record_mapping_and_wait(*store, mapped_record(ids[0], "r1")).ok());
  REQUIRE(record_mapping_and_wait(*store, mapped_record(ids[1], "r2")).ok());
  REQUIRE(record_mapping_and_wait(*store, mapped_record(ids[2], "r1")).ok());
  REQUIRE(record_mapping_and_wait(*store, mapped_record(ids[3], "r3")).ok());
  CHECK(due_ids(*store, 1000) == std::vector<std::int64_t>{ids[0], ids[1], ids[3]});

  // While A waits for a retry, C stays behind it.
  REQUIRE(
      record_delivery_and_wait(*store, attempt(ids[0], DeliveryState::pending, 503, 1000, 50'000))
          .ok());
  CHECK(due_ids(*store, 2000) == std::vector<std::int64_t>{ids[1], ids[3]});
  // A dead letter holds C too...
  REQUIRE(record_delivery_and_wait(*store, attempt(ids[0], DeliveryState::dead_letter, 400, 50'000))
              .ok());
  CHECK(due_ids(*store, 60'000) == std::vector<std::int64_t>{ids[1], ids[3]});
  // ...until it is discarded (with a reason), which releases C.
  CHECK(*store->discard_dead_letters(ids[0], "sent by phone") == 1);
  CHECK(*store->discard_dead_letters(ids[0], "again") == 0);
  CHECK(due_ids(*store, 60'000) == std::vector<std::int64_t>{ids[1], ids[2], ids[3]});
  CHECK(store->deliveries_of(ids[0])->front().discard_reason == "sent by phone");
  CHECK(store->deliveries_of(ids[0])->front().state == DeliveryState::discarded);
}

namespace {

// Messages A to E, appended in that order: their ids.
std::vector<std::int64_t> append_five(SqliteStore& store) {
  std::vector<std::int64_t> ids;
  for (const char* id : {"A", "B", "C", "D", "E"}) {
    ids.push_back(append_one(store, make_message(id, hl7(id))).id);
  }
  return ids;
}

}  // namespace

TEST_CASE("outbox: each report's first and last queued message, kept through retention",
          "[store][outbox]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  const std::vector<std::int64_t> ids = append_five(*store);
  auto history = [&](const std::string& key) {
    auto h = store->report_history(key);
    REQUIRE(h);
    return *h ? std::vector<std::int64_t>{(*h)->first_message_id, (*h)->last_message_id}
              : std::vector<std::int64_t>{};
  };
  // A (preliminary) and C (final) are about report r1; B about r2, mapped to no destination;
  // D about r1 too, but failed to map (nothing queued); E about r1 and r3 (two orders).
  REQUIRE(record_mapping_and_wait(*store, mapped_record(ids[0], "r1")).ok());
  REQUIRE(record_mapping_and_wait(*store, mapped_record(ids[1], "r2", {})).ok());
  REQUIRE(record_mapping_and_wait(*store, mapped_record(ids[2], "r1")).ok());
  MappingRecord failed = mapped_record(ids[3], "r1");
  failed.state = MappingState::mapping_failed;
  REQUIRE(record_mapping_and_wait(*store, failed).ok());
  CHECK(history("r1") == std::vector<std::int64_t>{ids[0], ids[2]});
  CHECK(history("r2").empty());  // never queued
  MappingRecord two_orders = mapped_record(ids[4], "r1");
  two_orders.report_keys = {{"r1"}, {"r3"}};
  REQUIRE(record_mapping_and_wait(*store, two_orders).ok());
  CHECK(history("r1") == std::vector<std::int64_t>{ids[0], ids[4]});
  CHECK(history("r3") == std::vector<std::int64_t>{ids[4], ids[4]});
  // A replay of A queues it again: the history keeps its first and last.
  REQUIRE(record_mapping_and_wait(*store, mapped_record(ids[0], "r1")).ok());
  CHECK(history("r1") == std::vector<std::int64_t>{ids[0], ids[4]});

  // Delivered and purged with its deliveries, A is still the report's first message: a final
  // months after the preliminary still finds it.
  for (std::size_t i : {0U, 2U, 4U}) {
    REQUIRE(
        record_delivery_and_wait(*store, attempt(ids[i], DeliveryState::delivered, 200, 1)).ok());
  }
  CHECK(*store->purge_finished(std::numeric_limits<std::int64_t>::max(), false, 100) >= 3);
  CHECK(store->deliveries_of(ids[0])->empty());
  CHECK(history("r1") == std::vector<std::int64_t>{ids[0], ids[4]});
  // Which version a purged message carried goes with it (only open deliveries need it).
  RawDb db(dir.file("inbox.db"));
  CHECK(db.text("SELECT count(*) FROM report_versions WHERE message_id = " +
                std::to_string(ids[0])) == "0");
}

TEST_CASE("outbox: each report's newest version by issued time, and the message that sent it",
          "[store][outbox]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  const std::vector<std::int64_t> ids = append_five(*store);
  auto newest = [&](std::int64_t id, std::int64_t issued_us) {
    MappingRecord r = mapped_record(id, "r1");
    r.report_keys = {{"r1", issued_us}};
    REQUIRE(record_mapping_and_wait(*store, r).ok());
    auto h = store->report_history("r1");
    REQUIRE(h);
    REQUIRE(*h);
    return std::vector<std::int64_t>{(*h)->latest_issued_us, (*h)->latest_issued_message_id};
  };
  CHECK(newest(ids[0], 0) == std::vector<std::int64_t>{0, 0});  // no issued time
  CHECK(newest(ids[1], 2000) == std::vector<std::int64_t>{2000, ids[1]});
  CHECK(newest(ids[2], 1000) == std::vector<std::int64_t>{2000, ids[1]});  // older: kept
  CHECK(newest(ids[3], 0) == std::vector<std::int64_t>{2000, ids[1]});     // unknown: kept
  CHECK(newest(ids[4], 2000) == std::vector<std::int64_t>{2000, ids[4]});  // a resend: the later
  CHECK(newest(ids[1], 2000) == std::vector<std::int64_t>{2000, ids[4]});  // B replayed
  CHECK(newest(ids[2], 3000) == std::vector<std::int64_t>{3000, ids[2]});  // C, corrected
}

TEST_CASE("outbox: a message held back when mapped again has its open deliveries discarded",
          "[store][outbox]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  const auto a = append_one(*store, make_message("A", hl7("A")));
  REQUIRE(record_mapping_and_wait(*store, mapped_record(a.id, "r1")).ok());
  REQUIRE(store->deliveries_of(a.id)->front().state == DeliveryState::pending);
  // Replayed, it is now an older version of r1 than one sent since: nothing of it may go out.
  MappingRecord held = mapped_record(a.id, "r1", {});
  held.held_back = true;
  REQUIRE(record_mapping_and_wait(*store, held).ok());
  const auto deliveries = store->deliveries_of(a.id);
  REQUIRE(deliveries->size() == 1);
  CHECK(deliveries->front().state == DeliveryState::discarded);
  CHECK(deliveries->front().discard_reason.find("held back") == 0);
}

TEST_CASE("outbox: queuing a newer version of a report discards the open deliveries of older ones",
          "[store][outbox]") {
  // Deliveries go out in message order, and a dead letter whenever an operator retries it: an
  // older version still open would overwrite the newer one in the EHR.
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  std::vector<std::int64_t> ids;
  for (const char* id : {"A", "B", "C", "D", "E", "F", "G"}) {
    ids.push_back(append_one(*store, make_message(id, hl7(id))).id);
  }
  constexpr std::int64_t k0800 = 1710489600000000;  // 2024-03-15T08:00:00Z
  constexpr std::int64_t k0900 = 1710493200000000;
  constexpr std::int64_t k1000 = 1710496800000000;
  constexpr std::int64_t k1100 = 1710500400000000;
  auto queue = [&](std::int64_t id, const std::string& key, std::int64_t issued_us,
                   std::vector<std::string> destinations = {"ehr"}) {
    MappingRecord r = mapped_record(id, key, std::move(destinations));
    r.report_keys = {{key, issued_us}};
    auto recorded = record_mapping_and_wait(*store, r);
    REQUIRE(recorded.ok());
    return recorded->superseded;
  };
  auto state_of = [&](std::int64_t id, const std::string& destination = "ehr") {
    auto deliveries = store->deliveries_of(id);
    REQUIRE(deliveries);
    for (const DeliveryRecord& d : *deliveries) {
      if (d.destination == destination) return d;
    }
    FAIL("no delivery of message " << id << " to " << destination);
    return DeliveryRecord{};
  };
  // A: r1 at 09:00, pending (the EHR is down), for the registry too. B: the same version sent
  // again, a dead letter. C: r1 at 08:00, delivered. D: r2 at 08:00. E: r1, no issued time.
  CHECK(queue(ids[0], "r1", k0900, {"ehr", "registry"}) == 0);
  CHECK(queue(ids[1], "r1", k0900) == 0);  // not older than A: both stay
  REQUIRE(record_delivery_and_wait(*store, attempt(ids[1], DeliveryState::dead_letter, 400, 2000))
              .ok());
  CHECK(queue(ids[2], "r1", k0800) == 0);
  REQUIRE(
      record_delivery_and_wait(*store, attempt(ids[2], DeliveryState::delivered, 200, 2000)).ok());
  CHECK(queue(ids[3], "r2", k0800) == 0);
  CHECK(queue(ids[4], "r1", 0) == 0);

  // F, the final one (r1 at 10:00), only for the EHR.
  CHECK(queue(ids[5], "r1", k1000) == 2);
  const std::string reason =
      "superseded: message " + std::to_string(ids[5]) +
      " sent a newer version of r1 (issued 2024-03-15T10:00:00.000000+00:00)";
  CHECK(state_of(ids[0]).state == DeliveryState::discarded);
  CHECK(state_of(ids[0]).discard_reason == reason);
  CHECK(state_of(ids[1]).state == DeliveryState::discarded);
  CHECK(state_of(ids[1]).discard_reason == reason);
  CHECK(state_of(ids[0], "registry").state == DeliveryState::pending);  // F does not go there
  CHECK(state_of(ids[2]).state == DeliveryState::delivered);
  CHECK(state_of(ids[2]).discard_reason.empty());
  CHECK(state_of(ids[3]).state == DeliveryState::pending);  // another report
  CHECK(state_of(ids[4]).state == DeliveryState::pending);  // untimed: ordered by arrival
  CHECK(state_of(ids[5]).state == DeliveryState::pending);
  // Nothing brings them back: an operator's retry finds no dead letter, and r1's queue no
  // longer waits for A or B (E, untimed and received before F, goes first).
  CHECK(*store->retry_dead_letters(std::nullopt) == 0);
  CHECK(due_ids(*store, 1'000'000) == std::vector<std::int64_t>{ids[3], ids[4]});
  // F replayed supersedes nothing more, and not itself.
  CHECK(queue(ids[5], "r1", k1000) == 0);
  CHECK(state_of(ids[5]).state == DeliveryState::pending);

  SECTION("unless versions are ordered by arrival ($feed.older_versions \"send\")") {
    MappingRecord g = mapped_record(ids[6], "r1");
    g.report_keys = {{"r1", k1100}};
    g.versions_by_issued = false;
    auto recorded = record_mapping_and_wait(*store, g);
    REQUIRE(recorded.ok());
    CHECK(recorded->superseded == 0);
    CHECK(state_of(ids[5]).state == DeliveryState::pending);
  }
  SECTION("an untimed version supersedes nothing") {
    CHECK(queue(ids[6], "r1", 0) == 0);
    CHECK(state_of(ids[5]).state == DeliveryState::pending);
  }
}

TEST_CASE("outbox: retrying a dead letter maps the message again before delivering it",
          "[store][outbox]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  const auto a = append_one(*store, make_message("A", hl7("A")));
  const auto b = append_one(*store, make_message("B", hl7("B")));
  REQUIRE(record_mapping_and_wait(*store, mapped_record(a.id, "r1")).ok());
  REQUIRE(record_mapping_and_wait(*store, mapped_record(b.id, "r2")).ok());
  REQUIRE(
      record_delivery_and_wait(*store, attempt(a.id, DeliveryState::dead_letter, 422, 1000)).ok());
  REQUIRE(
      record_delivery_and_wait(*store, attempt(b.id, DeliveryState::dead_letter, 400, 1000)).ok());

  const std::int64_t before_retry = std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
  CHECK(*store->retry_dead_letters(a.id) == 1);
  CHECK(*store->retry_dead_letters(a.id) == 0);  // no longer a dead letter
  // It waits to be mapped again since the retry, not since its receipt.
  auto backlog = store->mapping_backlog();
  REQUIRE(backlog);
  CHECK(backlog->pending == 1);
  CHECK(backlog->oldest_since_us >= before_retry);
  // Pending, but its mapping is pending too: not due until mapped again.
  CHECK(store->deliveries_of(a.id)->front().state == DeliveryState::pending);
  CHECK(store->deliveries_of(a.id)->front().attempts == 0);
  CHECK((*store->mapping_of(a.id))->state == MappingState::pending);
  CHECK(due_ids(*store, std::numeric_limits<std::int64_t>::max()).empty());
  auto work = store->to_map(b.id, 10);
  REQUIRE(work->size() == 1);
  CHECK(work->front().id == a.id);
  MappingRecord remapped = mapped_record(a.id, "r1");
  remapped.mapped_at_us = 7000;
  REQUIRE(record_mapping_and_wait(*store, remapped).ok());
  CHECK(due_ids(*store, 7000) == std::vector<std::int64_t>{a.id});

  // Every dead letter at once.
  CHECK(*store->retry_dead_letters(std::nullopt) == 1);
  CHECK((*store->mapping_of(b.id))->state == MappingState::pending);
}

TEST_CASE("outbox: rows survive a reopen", "[store][outbox]") {
  TempDir dir;
  const std::string path = dir.file("inbox.db");
  std::int64_t id = 0;
  {
    auto store = open_store(path);
    id = append_one(*store, make_message("A", hl7("A"))).id;
    REQUIRE(record_mapping_and_wait(*store, mapped_record(id, "r1")).ok());
    REQUIRE(
        record_delivery_and_wait(*store, attempt(id, DeliveryState::pending, 0, 1000, 3000)).ok());
  }
  auto store = open_store(path);
  CHECK(due_ids(*store, 3000) == std::vector<std::int64_t>{id});
  CHECK(store->attempts_of(id)->size() == 1);
}

TEST_CASE("retention purges finished messages only, oldest first, or only their contents",
          "[store][retention]") {
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  std::vector<std::int64_t> ids;
  for (const char* c : {"D1", "D2", "P", "F", "X", "N"}) {
    ids.push_back(append_one(*store, make_message(c, hl7(c))).id);
  }
  // D1, D2: delivered. P: pending. F: mapping failed. X: dead letter. N: mapped, no destination.
  for (std::size_t i : {0U, 1U, 2U, 4U}) {
    REQUIRE(record_mapping_and_wait(*store, mapped_record(ids[i], "r" + std::to_string(i))).ok());
  }
  MappingRecord failed = mapped_record(ids[3], "r3");
  failed.state = MappingState::mapping_failed;
  REQUIRE(record_mapping_and_wait(*store, failed).ok());
  REQUIRE(record_mapping_and_wait(*store, mapped_record(ids[5], "r5", {})).ok());
  for (std::size_t i : {0U, 1U}) {
    REQUIRE(
        record_delivery_and_wait(*store, attempt(ids[i], DeliveryState::delivered, 200, 1)).ok());
  }
  REQUIRE(
      record_delivery_and_wait(*store, attempt(ids[4], DeliveryState::dead_letter, 400, 1)).ok());
  const std::int64_t later = std::numeric_limits<std::int64_t>::max();

  CHECK(*store->purge_finished(0, false, 100) == 0);  // nothing is that old

  // Contents only: the rows stay, emptied.
  CHECK(*store->purge_finished(later, true, 100) == 3);  // D1, D2, N
  CHECK(*store->purge_finished(later, true, 100) == 0);  // already empty
  auto d1 = store->get(ids[0]);
  REQUIRE(d1);
  REQUIRE(*d1);
  CHECK((*d1)->message.raw.empty());
  CHECK((*store->mapping_of(ids[0]))->bundle_json.empty());
  CHECK(store->deliveries_of(ids[0])->front().response.empty());
  CHECK(!(*store->get(ids[2]))->message.raw.empty());  // pending: untouched

  // Whole messages, a batch at a time, oldest first.
  CHECK(*store->purge_finished(later, false, 2) == 2);  // D1, D2
  CHECK(!*store->get(ids[0]));
  CHECK(!*store->get(ids[1]));
  CHECK(store->deliveries_of(ids[0])->empty());
  CHECK(store->attempts_of(ids[0])->empty());
  CHECK(!*store->mapping_of(ids[0]));
  // N is the newest row: it stays (its contents went above), so that ids are never reused.
  CHECK(*store->purge_finished(later, false, 2) == 0);
  CHECK(*store->get(ids[5]));
  // Pending, failed and dead letter stay whatever their age.
  for (std::size_t i : {2U, 3U, 4U}) CHECK(*store->get(ids[i]));
  CHECK(count_all(*store) == 4);
}

TEST_CASE("retention never lets a new message take the id of a purged one", "[store][retention]") {
  // SQLite numbers a new row max(id) + 1: were the newest messages purged, the next ones would
  // get their ids, below the mapping worker's watermark (never mapped until a restart) and
  // under status URLs already handed out.
  TempDir dir;
  auto store = open_store(dir.file("inbox.db"));
  std::vector<std::int64_t> ids;
  for (const char* c : {"A", "B", "C"}) {
    ids.push_back(append_one(*store, make_message(c, hl7(c))).id);
    REQUIRE(record_mapping_and_wait(*store, mapped_record(ids.back(), c, {})).ok());
  }
  const std::int64_t later = std::numeric_limits<std::int64_t>::max();
  CHECK(*store->purge_finished(later, false, 100) == 2);  // A and B; C is the newest
  const std::int64_t next = append_one(*store, make_message("D", hl7("D"))).id;
  CHECK(next > ids.back());
  // Once D is the newest, C goes.
  REQUIRE(record_mapping_and_wait(*store, mapped_record(next, "D", {})).ok());
  CHECK(*store->purge_finished(later, false, 100) == 1);
  CHECK(!*store->get(ids.back()));
  CHECK(append_one(*store, make_message("E", hl7("E"))).id > next);
}
