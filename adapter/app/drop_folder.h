// Drop folders: files that labs (or their file-transfer jobs) leave in a configured folder, taken
// into the same pipeline as HTTP feeds (FeedIntake: stored durably, deduplicated, mapped,
// delivered).
//
// Per file, in name order:
//   1. claim: rename FOLDER/f to FOLDER/processing/f (atomic; a second scanner cannot take it);
//   2. store it durably through FeedIntake (XML or HL7 v2, sniffed from the content);
//   3. rename it to FOLDER/done/f, or to FOLDER/error/f next to FOLDER/error/f.error.json, the
//      answer that says why (HTTP status, message id, the OperationOutcome).
// Every rename is made durable (the folder is fsynced). A daemon stopped at any point loses
// nothing: a file left in processing/ is taken again first at the next start, and the store
// recognises what it already holds (same source and document identifier or control ID), so the
// file is stored once and its message processed once. A file that was rejected (no such
// identifier: broken XML, HL7 v2 without MSH-10) is recognised by its bytes among the folder's
// rejected messages, and finished with the answer it got, not kept twice. (A file over
// max_file_bytes, kept without its bytes, is the exception: taken again, it is counted again.)
// If the store cannot commit, the file stays in processing/ and is tried again at the next
// poll.
//
// Files whose name starts with '.' or ends with ".part" or ".tmp", files still changing
// (younger than settle_time) and anything that is not a regular file are left alone.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "app/config.h"
#include "app/feed_intake.h"
#include "common/result.h"

namespace adapter::app {

class DropFolders {
 public:
  // `intake` is built over the folders (drop_folder_sources()) and must outlive this.
  DropFolders(std::vector<DropFolderConfig> folders, FeedIntake& intake);
  ~DropFolders();
  DropFolders(const DropFolders&) = delete;
  DropFolders& operator=(const DropFolders&) = delete;

  // Creates each folder's processing/, done/ and error/ (startup: an error stops the daemon).
  Status prepare();
  void start();  // one thread polls every folder
  void stop();   // finishes the file in hand, then returns

  // One pass over every folder; returns how many files were moved to done/ or error/.
  std::size_t scan_once();

 private:
  enum class Outcome { done, error, retry };
  // `leftover`: found in processing/, so perhaps stored before a stop (FeedIntake::kept_rejection).
  Outcome take(const DropFolderConfig& folder, const HttpFeedConfig& source,
               const std::filesystem::path& claimed, bool leftover);
  Outcome finish(const DropFolderConfig& folder, const std::filesystem::path& claimed,
                 const HttpAnswer& answer);
  std::size_t scan(const DropFolderConfig& folder, const HttpFeedConfig& source);
  void run();

  std::vector<DropFolderConfig> folders_;
  FeedIntake& intake_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

// FeedIntake's view of drop folders: one source per folder, named like it, with no credentials
// (the folder's permissions are the access control) and the largest max_file_bytes.
HttpListenerConfig drop_folder_sources(const std::vector<DropFolderConfig>& folders);

}  // namespace adapter::app
