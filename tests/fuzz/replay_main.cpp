// Runs a fuzz target without libFuzzer: calls LLVMFuzzerTestOneInput once for every file named
// on the command line or found (recursively) under a directory named there. This is how the
// seed corpora and the crash reproducers under fixtures/fuzz/ replay in every build, gcc
// included, so a fixed crash stays fixed.
//
//   fuzz_hl7v2_parse_replay fixtures/fuzz/hl7v2_parse fixtures/hl7v2/samples
//
// Exits non-zero when a path is missing or nothing was replayed (a wrong path must not pass
// silently); a violated invariant aborts inside the target.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

bool read_file(const fs::path& path, std::vector<char>& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
    return 2;
  }
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      for (const auto& entry : fs::recursive_directory_iterator(arg, ec)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
    } else if (fs::is_regular_file(arg, ec)) {
      files.push_back(arg);
    } else {
      std::fprintf(stderr, "%s: no such file or directory\n", argv[i]);
      return 2;
    }
    if (ec) {
      std::fprintf(stderr, "%s: %s\n", argv[i], ec.message().c_str());
      return 2;
    }
  }
  // A fixed order makes a failure reproducible from the log alone.
  std::sort(files.begin(), files.end());

  std::size_t count = 0;
  std::vector<char> data;
  for (const fs::path& path : files) {
    if (!read_file(path, data)) {
      std::fprintf(stderr, "%s: cannot read\n", path.c_str());
      return 2;
    }
    // Printed before the call, so a crash names its input.
    std::fprintf(stderr, "replaying %s (%zu bytes)\n", path.c_str(), data.size());
    // A heap copy of exactly the file's size, so ASan flags a read one past the end, as under
    // libFuzzer (a vector may have spare capacity, which ASan does not guard).
    const auto exact = std::make_unique<std::uint8_t[]>(data.size());
    std::copy(data.begin(), data.end(), exact.get());
    LLVMFuzzerTestOneInput(exact.get(), data.size());
    ++count;
  }
  std::printf("replayed %zu inputs\n", count);
  return count == 0 ? 1 : 0;
}
