#include "app/template_files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace adapter::app {

namespace fs = std::filesystem;

Result<std::string> DiskFiles::read(const std::string& path) const {
  std::ifstream in(fs::path(root_) / path, std::ios::binary);
  if (!in)
    return make_error(Errc::io_error, "cannot read " + (fs::path(root_) / path).string(), path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> DiskFiles::list(const std::string& folder,
                                         const std::string& suffix) const {
  std::vector<std::string> out;
  std::error_code ec;
  const fs::path base = fs::path(root_) / folder;
  if (!fs::is_directory(base, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(base, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    if (name.size() < suffix.size() ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    out.push_back(fs::relative(it->path(), root_, ec).generic_string());
  }
  std::sort(out.begin(), out.end());  // the same set version whatever the directory order
  return out;
}

}  // namespace adapter::app
