// Templates from a folder on disk (mappings/ by default), for mapping::load_template_set.
#pragma once

#include <string>

#include "mapping/template.h"

namespace adapter::app {

class DiskFiles : public mapping::FileSource {
 public:
  explicit DiskFiles(std::string root) : root_(std::move(root)) {}
  Result<std::string> read(const std::string& path) const override;
  std::vector<std::string> list(const std::string& folder,
                                const std::string& suffix) const override;
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

}  // namespace adapter::app
