#include "app/drop_folder.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <future>
#include <iterator>
#include <sstream>

#include "common/log.h"
#include "xml/document.h"

namespace adapter::app {

namespace fs = std::filesystem;

namespace {

constexpr const char* kProcessing = "processing";
constexpr const char* kDone = "done";
constexpr const char* kError = "error";

// A rename is durable once the folders that changed are: fsync on each folder.
void sync_folder(const fs::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

bool wanted(const fs::directory_entry& e, std::chrono::milliseconds settle) {
  std::error_code ec;
  if (!e.is_regular_file(ec) || ec) return false;
  const std::string name = e.path().filename().string();
  if (name.empty() || name[0] == '.') return false;
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(".part") || ends_with(".tmp")) return false;
  const auto changed = e.last_write_time(ec);
  if (ec) return false;
  return fs::file_time_type::clock::now() - changed >= settle;
}

// `folder/name`, or `folder/name.<n>` when a file of that name is there already (a lab that
// reuses file names must not overwrite yesterday's done/ file).
fs::path free_name(const fs::path& folder, const fs::path& name) {
  fs::path target = folder / name;
  std::error_code ec;
  for (int n = 1; fs::exists(target, ec) && n < 100000; ++n) {
    target = folder / (name.string() + "." + std::to_string(n));
  }
  return target;
}

bool move(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) {
    // File names are the lab's and may name a patient: the folder is enough to look.
    log::error("folder.move_failed",
               {{"folder", to.parent_path().string()}, {"error", ec.message()}});
    return false;
  }
  sync_folder(to.parent_path());
  sync_folder(from.parent_path());
  return true;
}

bool write_file(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return false;
  }
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

HttpListenerConfig drop_folder_sources(const std::vector<DropFolderConfig>& folders) {
  HttpListenerConfig sources;
  sources.name = "folders";
  sources.max_body_bytes = 0;
  for (const DropFolderConfig& f : folders) {
    HttpFeedConfig source;
    source.name = f.name;
    source.settings = f.settings;
    sources.feeds.push_back(std::move(source));
    sources.max_body_bytes = std::max(sources.max_body_bytes, f.max_file_bytes);
  }
  return sources;
}

DropFolders::DropFolders(std::vector<DropFolderConfig> folders, FeedIntake& intake)
    : folders_(std::move(folders)), intake_(intake) {}

DropFolders::~DropFolders() {
  stop();
}

Status DropFolders::prepare() {
  for (const DropFolderConfig& f : folders_) {
    for (const char* sub : {kProcessing, kDone, kError}) {
      std::error_code ec;
      fs::create_directories(fs::path(f.path) / sub, ec);
      if (ec) {
        return make_error(Errc::io_error, "drop folder '" + f.name + "': cannot create " +
                                              (fs::path(f.path) / sub).string() + ": " +
                                              ec.message());
      }
    }
  }
  return {};
}

void DropFolders::start() {
  thread_ = std::thread([this] { run(); });
}

void DropFolders::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DropFolders::run() {
  auto interval = std::chrono::milliseconds::max();
  for (const auto& f : folders_) interval = std::min(interval, f.poll_interval);
  while (true) {
    scan_once();
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, interval, [this] { return stopping_; })) return;
  }
}

std::size_t DropFolders::scan_once() {
  std::size_t n = 0;
  const HttpListenerConfig& sources = intake_.config();
  for (const DropFolderConfig& f : folders_) {
    for (const HttpFeedConfig& s : sources.feeds) {
      if (s.name == f.name) n += scan(f, s);
    }
  }
  return n;
}

std::size_t DropFolders::scan(const DropFolderConfig& folder, const HttpFeedConfig& source) {
  const fs::path root(folder.path);
  const fs::path processing = root / kProcessing;
  std::error_code ec;
  // Leftovers of a stop in the middle first, then new files, each in name order.
  std::vector<fs::path> claimed;
  for (const auto& e : fs::directory_iterator(processing, ec)) {
    if (wanted(e, std::chrono::milliseconds(0))) claimed.push_back(e.path());
  }
  std::vector<fs::path> fresh;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (wanted(e, folder.settle_time)) fresh.push_back(e.path());
  }
  if (ec) {
    log::warn("folder.unreadable", {{"folder", folder.name}, {"error", ec.message()}});
    return 0;
  }
  std::sort(claimed.begin(), claimed.end());
  std::sort(fresh.begin(), fresh.end());
  const std::size_t leftovers = claimed.size();
  for (const fs::path& f : fresh) {
    const fs::path to = free_name(processing, f.filename());
    if (move(f, to)) claimed.push_back(to);
  }
  std::size_t moved = 0;
  for (std::size_t i = 0; i < claimed.size(); ++i) {
    {
      std::lock_guard lock(mu_);
      if (stopping_ && thread_.joinable()) break;
    }
    const Outcome o = take(folder, source, claimed[i], i < leftovers);
    if (o == Outcome::retry) break;  // the store is failing: try again at the next poll
    ++moved;
  }
  return moved;
}

DropFolders::Outcome DropFolders::take(const DropFolderConfig& folder, const HttpFeedConfig& source,
                                       const fs::path& claimed, bool leftover) {
  const std::string file = claimed.filename().string();
  std::promise<HttpAnswer> promise;
  auto answer = promise.get_future();
  auto done = [&promise](HttpAnswer a) { promise.set_value(std::move(a)); };
  std::error_code ec;
  const auto size = fs::file_size(claimed, ec);
  if (!ec && size > folder.max_file_bytes) {
    // A leftover too large to read may have been kept as rejected before the stop: no bytes of
    // it were, so it is recognised by name and size, received since the file was last written.
    if (leftover) {
      const auto written = fs::last_write_time(claimed, ec);
      const std::int64_t since_us =
          ec ? 0
             : std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::file_clock::to_sys(written).time_since_epoch())
                   .count();
      if (std::optional<HttpAnswer> kept =
              intake_.kept_too_large(source, "folder:" + file, size, since_us)) {
        if (kept->status != 503) log::info("folder.retaken", {{"folder", folder.name}});
        return finish(folder, claimed, *kept);
      }
    }
    intake_.submit_too_large(source, "folder:" + file, size, now_us(), done);
  } else {
    std::ifstream in(claimed, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      log::warn("folder.read_failed", {{"folder", folder.name}});
      return Outcome::retry;
    }
    // A leftover may have been stored before the stop: an accepted one the store recognises by
    // itself (same document or control ID), a rejected one only by its bytes.
    if (std::optional<HttpAnswer> kept =
            leftover ? intake_.kept_rejection(source, bytes) : std::nullopt) {
      if (kept->status != 503) log::info("folder.retaken", {{"folder", folder.name}});
      return finish(folder, claimed, *kept);
    }
    FeedRequest r;
    r.feed = &source;
    r.content_type = xml::looks_like_xml(bytes) ? "application/xml" : "x-application/hl7-v2+er7";
    r.body = std::move(bytes);
    r.peer = "folder:" + file;
    r.received_at_us = now_us();
    intake_.submit(std::move(r), done);
  }
  return finish(folder, claimed, answer.get());
}

// Moves the file to done/ or error/ (with the answer beside it) as `a` says, or leaves it in
// processing/ when the store could not take it (503).
DropFolders::Outcome DropFolders::finish(const DropFolderConfig& folder, const fs::path& claimed,
                                         const HttpAnswer& a) {
  const std::string file = claimed.filename().string();
  if (a.status == 503) {
    log::warn("folder.store_failed", {{"folder", folder.name}});
    return Outcome::retry;
  }
  const fs::path root(folder.path);
  if (a.status < 300) {
    move(claimed, free_name(root / kDone, claimed.filename()));
    log::info("folder.done", {{"folder", folder.name}, {"message", a.location}});
    return Outcome::done;
  }
  // The sidecar first, so that a file in error/ always has its reason next to it.
  const fs::path target = free_name(root / kError, claimed.filename());
  const std::string sidecar = "{\"file\":" + mapping::Json::string(file).dump() +
                              ",\"status\":" + std::to_string(a.status) +
                              ",\"status_url\":" + mapping::Json::string(a.location).dump() +
                              ",\"outcome\":" + (a.body.empty() ? "null" : a.body) + "}\n";
  if (!write_file(target.string() + ".error.json", sidecar)) {
    log::error("folder.sidecar_failed", {{"folder", folder.name}, {"message", a.location}});
  }
  move(claimed, target);
  log::info("folder.error",
            {{"folder", folder.name}, {"message", a.location}, {"status", a.status}});
  return Outcome::error;
}

}  // namespace adapter::app
