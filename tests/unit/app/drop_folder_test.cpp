// Drop folders against a real SQLite store and real folders: a file is kept once even when the
// daemon stopped between keeping it and moving it, which the integration test (a SIGKILL at a
// random moment) can only hit by chance.
#include "app/drop_folder.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.h"
#include "support/temp_store.h"

using namespace adapter;
namespace fs = std::filesystem;

namespace {

std::vector<app::DropFolderConfig> one_folder(const test::TempDir& dir,
                                              std::size_t max_file_bytes) {
  app::DropFolderConfig f;
  f.name = "labdrop";
  f.path = dir.file("drop");
  f.settle_time = std::chrono::milliseconds(0);
  f.max_file_bytes = max_file_bytes;
  return std::vector<app::DropFolderConfig>{f};
}

struct Fixture {
  test::TempDir dir{"adapterd-drop"};
  test::TempStore store;
  std::vector<app::DropFolderConfig> folders;
  app::HttpListenerConfig sources = app::drop_folder_sources(folders);
  app::HttpStats stats;
  app::FeedIntake intake{sources, "adapterd", *store, *store, nullptr, stats};
  app::DropFolders drop{folders, intake};

  explicit Fixture(std::size_t max_file_bytes = 32 * 1024 * 1024)
      : folders(one_folder(dir, max_file_bytes)) {
    REQUIRE(drop.prepare());
  }

  void put(const std::string& sub, const std::string& name, const std::string& bytes) const {
    std::ofstream(fs::path(folders[0].path) / sub / name, std::ios::binary) << bytes;
  }
  std::vector<std::string> listing(const std::string& sub) const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(fs::path(folders[0].path) / sub)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string read(const std::string& sub, const std::string& name) const {
    std::ifstream in(fs::path(folders[0].path) / sub / name, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  std::int64_t rejected() { return *store->count(store::MessageState::rejected); }
  std::int64_t received() { return *store->count(store::MessageState::received); }
};

const std::string kBroken = "<report><unclosed></report>";

}  // namespace

TEST_CASE("a rejected file taken again after a stop is finished with its answer, not kept twice",
          "[app][drop]") {
  Fixture f;
  f.put("", "broken.xml", kBroken);
  CHECK(f.drop.scan_once() == 1);
  REQUIRE(f.listing("error") == std::vector<std::string>{"broken.xml", "broken.xml.error.json"});
  REQUIRE(f.rejected() == 1);

  // The daemon stopped after the store kept it and before the file left processing/: the same
  // bytes are there again at the next start.
  f.put("processing", "broken.xml", kBroken);
  CHECK(f.drop.scan_once() == 1);
  CHECK(f.listing("processing").empty());
  CHECK(f.rejected() == 1);  // not kept again
  REQUIRE(f.listing("error") == std::vector<std::string>{"broken.xml", "broken.xml.1",
                                                         "broken.xml.1.error.json",
                                                         "broken.xml.error.json"});
  const std::string sidecar = f.read("error", "broken.xml.1.error.json");
  CHECK(sidecar.find("\"status\":400") != std::string::npos);
  CHECK(sidecar.find("kept as rejected message 1 before a stop (not kept again)") !=
        std::string::npos);
  CHECK(sidecar.find("\"status_url\":\"/messages/1\"") != std::string::npos);

  // Dropped again by the lab, the same bytes are a new submission: kept and counted again.
  f.put("", "broken-again.xml", kBroken);
  CHECK(f.drop.scan_once() == 1);
  CHECK(f.rejected() == 2);

  // A leftover that never reached the store is kept as any file is.
  f.put("processing", "other.xml", "<report><also broken>");
  CHECK(f.drop.scan_once() == 1);
  CHECK(f.rejected() == 3);
}

TEST_CASE("a file too large to read, taken again after a stop, is not kept twice", "[app][drop]") {
  Fixture f(16);
  const std::string big(40, 'x');
  f.put("", "big.hl7", big);
  CHECK(f.drop.scan_once() == 1);
  REQUIRE(f.listing("error") == std::vector<std::string>{"big.hl7", "big.hl7.error.json"});
  REQUIRE(f.rejected() == 1);

  // Stopped after the store kept its rejection, before the file left processing/: recognised by
  // its name and size (no bytes of it were kept), finished with the answer it had. The file is
  // the one the lab wrote before it was taken (its time is kept by the moves into processing/).
  const auto before_taken = [&] {
    fs::last_write_time(fs::path(f.folders[0].path) / "processing" / "big.hl7",
                        fs::file_time_type::clock::now() - std::chrono::minutes(1));
  };
  f.put("processing", "big.hl7", big);
  before_taken();
  CHECK(f.drop.scan_once() == 1);
  CHECK(f.rejected() == 1);
  CHECK(f.listing("processing").empty());
  const std::string sidecar = f.read("error", "big.hl7.1.error.json");
  CHECK(sidecar.find("\"status\":413") != std::string::npos);
  CHECK(sidecar.find("kept as rejected message 1 before a stop (not kept again)") !=
        std::string::npos);

  // Another size under the same name is another file: kept.
  f.put("processing", "big.hl7", big + "yy");
  before_taken();
  CHECK(f.drop.scan_once() == 1);
  CHECK(f.rejected() == 2);
  // So is the same size written after that rejection (a new file the lab dropped under the old
  // name): file times are coarse, so wait until they have surely moved on.
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  f.put("processing", "big.hl7", big);
  CHECK(f.drop.scan_once() == 1);
  CHECK(f.rejected() == 3);
}

TEST_CASE("an accepted file taken again after a stop is recognised by the store", "[app][drop]") {
  Fixture f;
  const std::string report = "<report><accession>A-1</accession></report>";
  f.put("", "good.xml", report);
  CHECK(f.drop.scan_once() == 1);
  CHECK(f.listing("done") == std::vector<std::string>{"good.xml"});
  f.put("processing", "good.xml", report);
  CHECK(f.drop.scan_once() == 1);
  CHECK(f.listing("done") == std::vector<std::string>{"good.xml", "good.xml.1"});
  CHECK(f.received() == 1);
  CHECK(f.rejected() == 0);
}
