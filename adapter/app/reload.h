// Hot reload (SIGHUP, or POST /reload on the admin endpoint): reads the configuration again
// (the same file, or the embedded default) and loads its mappings. Only when both load without
// a single error is the new set put in place, at once for every reader (MapperHolder); otherwise
// the running set stays and the errors are returned, each located (JSON pointer, or
// file:line:column). Mappings and the "mapping" section (time zone, $feed settings, per-feed
// settings) take effect; a change anywhere else (listeners, store, destinations...) needs a
// restart and is reported as such, not half-applied.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "app/config.h"
#include "app/mapper_holder.h"
#include "common/result.h"

namespace adapter::app {

struct ReloadOutcome {
  bool applied = false;
  std::string previous_set;  // content hash of the mappings before
  std::string current_set;   // and after (the same when refused)
  std::vector<Error> errors;
  std::vector<std::string> restart_needed;  // top-level sections that changed: "listeners", ...

  std::string to_json() const;  // the admin endpoint's answer
};

class Reloader {
 public:
  // `config_path`: the file the daemon started with; nothing: the embedded default.
  // `running_text`: that configuration's text at start, to tell what changed.
  // `destinations`: the ones the daemon runs with (a change to them needs a restart): new
  // mappings must still have every template their filters name.
  Reloader(std::optional<std::string> config_path, std::string running_text, MapperHolder& mappers,
           std::vector<DestinationConfig> destinations = {})
      : config_path_(std::move(config_path)),
        running_text_(std::move(running_text)),
        mappers_(mappers),
        destinations_(std::move(destinations)) {}

  ReloadOutcome reload();

 private:
  std::optional<std::string> config_path_;
  std::string running_text_;
  MapperHolder& mappers_;
  std::vector<DestinationConfig> destinations_;
  std::mutex mu_;  // one reload at a time
};

// Top-level members whose values differ between two configuration texts (comments and layout
// aside). A text that does not parse differs in "/".
std::vector<std::string> changed_sections(std::string_view before, std::string_view after);

}  // namespace adapter::app
