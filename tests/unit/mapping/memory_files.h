// Templates held in memory, for tests that write their own small template sets.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "mapping/template.h"

namespace adapter::mapping::test {

class MemoryFiles : public FileSource {
 public:
  MemoryFiles& add(std::string path, std::string text) {
    files_[std::move(path)] = std::move(text);
    return *this;
  }
  Result<std::string> read(const std::string& path) const override {
    auto it = files_.find(path);
    if (it == files_.end()) return make_error(Errc::io_error, "no such file");
    return it->second;
  }
  std::vector<std::string> list(const std::string& folder,
                                const std::string& suffix) const override {
    std::vector<std::string> out;
    for (const auto& [path, text] : files_) {
      if (path.rfind(folder + "/", 0) == 0 && path.size() >= suffix.size() &&
          path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
        out.push_back(path);
      }
    }
    return out;
  }

 private:
  std::map<std::string, std::string> files_;
};

}  // namespace adapter::mapping::test
