#include "app/translate.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "app/template_files.h"
#include "common/sha256.h"
#include "hl7v2/batch.h"
#include "hl7v2/header.h"
#include "hl7v2/message.h"
#include "mapping/datetime.h"
#include "mapping/functions.h"
#include "mapping/source_text.h"
#include "xml/document.h"

namespace adapter::app {

namespace fs = std::filesystem;

Result<TemplateSetPtr, std::vector<Error>> load_mappings(const MappingConfig& config) {
  DiskFiles files(config.directory);
  auto set = mapping::load_template_set(files);
  if (!set) {
    std::vector<Error> errors = std::move(set).error();
    for (Error& e : errors) {
      if (!e.where.empty() && e.where.rfind(config.directory, 0) != 0) {
        e.where = (fs::path(config.directory) / e.where).generic_string();
      }
    }
    return errors;
  }
  return *set;
}

// Settings for one mapping: the configured ones, and $source from the input's own facts
// (`source`, whose kind-specific members come first) plus the receipt's.
mapping::MappingSettings Mapper::settings_for(mapping::JsonObject source, std::string_view bytes,
                                              const std::string& received_at,
                                              const Arrival& receipt, bool explain) const {
  mapping::MappingSettings settings;
  settings.default_offset_minutes = config_.default_offset_minutes;
  settings.feed = config_.feed_for(receipt.listener);  // an HTTP feed may override members
  settings.explain = explain;
  source.reserve(source.size() + 5);  // the members below: one allocation, not a regrowth
  source.emplace_back("sha256", mapping::Json::string(sha256_hex(bytes)));
  source.emplace_back("message_id", mapping::Json::number(static_cast<double>(receipt.message_id)));
  if (!received_at.empty()) source.emplace_back("received_at", mapping::Json::string(received_at));
  if (!receipt.listener.empty())
    source.emplace_back("listener", mapping::Json::string(receipt.listener));
  source.emplace_back("supersedes", mapping::Json::boolean(receipt.supersedes));
  settings.source = mapping::Json::object(std::move(source));
  return settings;
}

MappedMessage Mapper::map_message(std::string_view bytes, const std::string& label,
                                  const Arrival& receipt, bool explain) const {
  MappedMessage m;
  m.label = label;
  auto parsed = hl7v2::Message::parse(bytes);
  if (!parsed) {
    const auto& e = parsed.error();
    m.input_error = make_error(e.code, e.message, e.location.to_string());
    return m;
  }
  const hl7v2::Header header = hl7v2::header_of(*parsed);
  auto route = mapping::route_hl7(*set_, header);
  if (!route) {
    m.input_error = route.error();
    return m;
  }
  std::string received_at = receipt.received_at;
  if (received_at.empty()) {
    std::string scratch;
    const auto dt =
        mapping::v2_to_fhir_datetime(parsed->msh(7).text(scratch), config_.default_offset_minutes);
    received_at = dt.has_time ? dt.fhir : std::string();
  }
  auto first = [&](std::size_t field) {
    std::string scratch;
    return std::string(parsed->msh(field).component(1).text(scratch));
  };
  const mapping::MappingSettings settings =
      settings_for({{"control_id", mapping::Json::string(first(10))},
                    {"sending_application", mapping::Json::string(first(3))},
                    {"sending_facility", mapping::Json::string(first(4))}},
                   bytes, received_at, receipt, explain);
  m.result = mapping::map_hl7(*set_, **route, *parsed, settings);
  return m;
}

MappedMessage Mapper::map_document(std::string_view bytes, const std::string& label,
                                   const Arrival& receipt, bool explain) const {
  MappedMessage m;
  m.label = label;
  auto doc = xml::parse(bytes, xml_limits_);
  if (!doc) {
    m.input_error = doc.error();
    return m;
  }
  auto route = mapping::route_xml(*set_, *doc);
  if (!route) {
    m.input_error = route.error();
    return m;
  }
  const mapping::MappingSettings settings =
      settings_for({{"xml_root", mapping::Json::string(doc->root_name())}}, bytes,
                   receipt.received_at, receipt, explain);
  m.result = mapping::map_xml(*set_, **route, *doc, settings);
  return m;
}

std::vector<MappedMessage> Mapper::map(std::string_view bytes, const std::string& label,
                                       const Arrival& receipt, bool explain) const {
  std::vector<MappedMessage> out;
  if (xml::looks_like_xml(bytes)) {
    out.push_back(map_document(bytes, label, receipt, explain));
    return out;
  }
  if (hl7v2::looks_like_batch(bytes)) {
    auto batch = hl7v2::split_batch(bytes);
    if (!batch) {
      MappedMessage m;
      m.label = label;
      m.input_error =
          make_error(batch.error().code, batch.error().message, batch.error().location.to_string());
      out.push_back(std::move(m));
      return out;
    }
    std::size_t n = 0;
    for (std::string_view text : batch->messages) {
      out.push_back(map_message(text, label + "#" + std::to_string(++n), receipt, explain));
    }
    return out;
  }
  out.push_back(map_message(bytes, label, receipt, explain));
  return out;
}

namespace {

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Errc::io_error, "cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void print_report(const MappedMessage& m, bool explain, std::ostream& err) {
  const auto& r = m.result;
  if (m.input_error) {
    err << m.label << ": not mapped: " << m.input_error->to_string() << "\n";
    return;
  }
  err << m.label << ": template " << r.template_name << " " << r.template_version << " ("
      << r.template_file << ")\n";
  for (const auto& i : r.issues) err << m.label << ": " << i.to_string() << "\n";
  if (!explain) {
    if (!r.unmapped.empty()) {
      err << m.label << ": " << r.unmapped.size()
          << " value(s) not mapped (--explain lists them)\n";
    }
    return;
  }
  for (const auto& e : r.explain) err << m.label << ": made " << e << "\n";
  err << m.label << ": unmapped: " << r.unmapped.size() << "\n";
  for (const auto& u : r.unmapped) err << m.label << ":   " << u << "\n";
}

}  // namespace

int translate_command(const Config& config, const std::vector<std::string>& files, bool explain,
                      const Arrival& arrival, std::ostream& out, std::ostream& err) {
  auto set = load_mappings(config.mapping);
  if (!set) {
    for (const auto& e : set.error()) err << e.where << ": " << e.message << "\n";
    return 1;
  }
  Mapper mapper(*set, config.mapping);
  int status = 0;
  for (const std::string& file : files) {
    auto bytes = read_file(file);
    if (!bytes) {
      err << file << ": " << bytes.error().message << "\n";
      status = 1;
      continue;
    }
    for (const MappedMessage& m : mapper.map(*bytes, file, arrival, explain)) {
      print_report(m, explain, err);
      if (!m.input_error) out << m.result.output.dump(true) << "\n";
      if (!m.ok()) status = 1;
    }
  }
  return status;
}

int check_mappings(const Config& config, std::ostream& out) {
  auto set = load_mappings(config.mapping);
  if (!set) {
    for (const auto& e : set.error()) out << e.where << ": " << e.message << "\n";
    return 1;
  }
  // The mappings load, but a destination may filter on a template they lack.
  const std::vector<Error> filters = check_destination_filters(config.destinations, **set);
  for (const Error& e : filters) out << e.where << ": " << e.message << "\n";
  if (!filters.empty()) return 1;
  out << "mappings OK: " << (*set)->routes.size() << " route(s), " << (*set)->templates.size()
      << " template(s), " << (*set)->partials.size() << " partial(s), " << (*set)->tables.size()
      << " table(s); version " << (*set)->version << "\n";
  return 0;
}

std::vector<Error> check_destination_filters(const std::vector<DestinationConfig>& destinations,
                                             const mapping::TemplateSet& set) {
  std::vector<Error> errors;
  std::string known;
  for (const auto& [file, t] : set.templates) known += (known.empty() ? "" : ", ") + t.name;
  for (std::size_t i = 0; i < destinations.size(); ++i) {
    const std::vector<std::string>& names = destinations[i].filter.templates;
    for (std::size_t j = 0; j < names.size(); ++j) {
      const bool found = std::any_of(set.templates.begin(), set.templates.end(),
                                     [&](const auto& t) { return t.second.name == names[j]; });
      if (!found) {
        errors.push_back(make_error(
            Errc::bad_config,
            "no template is named '" + names[j] + "' (the mappings have: " + known + ")",
            "/destinations/" + std::to_string(i) + "/filter/templates/" + std::to_string(j)));
      }
    }
  }
  return errors;
}

namespace {

// A golden case: input.hl7 or input.xml, and what it must give. See fixtures/mappings/README.md.
struct GoldenCase {
  fs::path dir;
  std::string name;
  std::string input;  // input.hl7 or input.xml
};

bool write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

// Issues and the unmapped report as a case records them in expected-report.txt.
std::string report_text(const MappedMessage& m) {
  std::string out;
  for (const auto& i : m.result.issues) out += i.to_string() + "\n";
  for (const auto& u : m.result.unmapped) out += "unmapped " + u + "\n";
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// "expected: ..." / "got: ..." for lines in one list and not in the other (order-insensitive).
void diff_lines(const std::string& what, const std::string& expected, const std::string& actual,
                std::vector<std::string>& problems) {
  std::vector<std::string> want = lines_of(expected);
  std::vector<std::string> got = lines_of(actual);
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  std::vector<std::string> missing;
  std::vector<std::string> extra;
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                      std::back_inserter(missing));
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(extra));
  for (const auto& l : missing) problems.push_back(std::string(what).append(" lacks: ").append(l));
  for (const auto& l : extra) problems.push_back(std::string(what).append(" has new: ").append(l));
}

}  // namespace

int test_mappings_command(const Config& config, const std::string& folder, bool update,
                          std::ostream& out) {
  auto set = load_mappings(config.mapping);
  if (!set) {
    for (const auto& e : set.error()) out << e.where << ": " << e.message << "\n";
    return 1;
  }
  std::vector<GoldenCase> cases;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (!entry.is_directory()) continue;
    for (const char* input : {"input.hl7", "input.xml"}) {
      if (fs::exists(entry.path() / input)) {
        cases.push_back({entry.path(), entry.path().filename().string(), input});
        break;
      }
    }
  }
  std::sort(cases.begin(), cases.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  if (cases.empty()) {
    out << folder
        << ": no cases (folders with input.hl7 or input.xml, and expected.json or "
           "expected-error.txt)\n";
    return 1;
  }
  int failed = 0;
  for (const GoldenCase& c : cases) {
    std::vector<std::string> problems;
    auto input = read_file((c.dir / c.input).string());
    if (!input) problems.push_back(input.error().message);

    // feed.json: $feed settings for this case, over the configured ones (e.g. patient_mode).
    MappingConfig mapping_config = config.mapping;
    if (fs::exists(c.dir / "feed.json")) {
      auto feed_text = read_file((c.dir / "feed.json").string());
      auto feed = feed_text ? mapping::parse_json(*feed_text, (c.dir / "feed.json").string())
                            : Result<mapping::Json>(feed_text.error());
      if (!feed || !feed->is_object()) {
        problems.push_back("feed.json: " +
                           (feed ? std::string("must be an object") : feed.error().to_string()));
      } else {
        mapping::JsonObject merged = mapping_config.feed.is_object()
                                         ? mapping_config.feed.object_members()
                                         : mapping::JsonObject{};
        for (const auto& m : feed->as_object()) mapping::set_member(merged, m.name(), m.value);
        mapping_config.feed = mapping::Json::object(std::move(merged));
      }
    }
    // source.json: what the daemon would know about the message's arrival; only `supersedes`
    // (an earlier message about the same report was delivered) changes a mapping.
    Arrival arrival;
    if (fs::exists(c.dir / "source.json")) {
      auto source_text = read_file((c.dir / "source.json").string());
      auto source = source_text
                        ? mapping::parse_json(*source_text, (c.dir / "source.json").string())
                        : Result<mapping::Json>(source_text.error());
      const mapping::Json* supersedes =
          source && source->is_object() ? source->find("supersedes") : nullptr;
      if (!source) {
        problems.push_back("source.json: " + source.error().to_string());
      } else if (!source->is_object() || source->as_object().size() != 1 || supersedes == nullptr ||
                 !supersedes->is_bool()) {
        problems.push_back(
            "source.json: must be {\"supersedes\": true} or {\"supersedes\": false}");
      } else {
        arrival.supersedes = supersedes->as_bool();
      }
    }
    if (!problems.empty()) {
      ++failed;
      out << "FAIL " << c.name << "\n";
      for (const auto& p : problems) out << "     " << p << "\n";
      continue;
    }

    const Mapper mapper(*set, mapping_config);
    const MappedMessage m = c.input == "input.xml"
                                ? mapper.map_document(*input, c.name, arrival, false)
                                : mapper.map_message(*input, c.name, arrival, false);
    std::string error_text;
    if (m.input_error) error_text = "not mapped: " + m.input_error->to_string() + "\n";
    for (const auto& i : m.result.issues) {
      if (i.severity == mapping::Issue::Severity::error) error_text += i.to_string() + "\n";
    }
    const fs::path expected_json = c.dir / "expected.json";
    const fs::path expected_error = c.dir / "expected-error.txt";
    const fs::path expected_report = c.dir / "expected-report.txt";

    if (update) {
      std::error_code ignored;
      if (!error_text.empty()) {
        fs::remove(expected_json, ignored);
        fs::remove(expected_report, ignored);
        write_file(expected_error, error_text);
      } else {
        fs::remove(expected_error, ignored);
        write_file(expected_json, m.result.output.dump(true) + "\n");
        write_file(expected_report, report_text(m));
      }
      out << "wrote " << c.name << "\n";
      continue;
    }

    if (fs::exists(expected_error)) {
      // A case that must fail: each line of expected-error.txt is an error it must report.
      auto want = read_file(expected_error.string());
      if (error_text.empty()) problems.push_back("expected an error, but the message was mapped");
      if (want) diff_lines("errors", *want, error_text, problems);
    } else if (!fs::exists(expected_json)) {
      problems.push_back(
          "needs expected.json or expected-error.txt (test-mappings --update writes them)");
    } else {
      for (const auto& l : lines_of(error_text)) problems.push_back(l);
      auto expected_text = read_file(expected_json.string());
      auto expected = expected_text ? mapping::parse_json(*expected_text, expected_json.string())
                                    : Result<mapping::Json>(expected_text.error());
      if (!expected) {
        problems.push_back(expected.error().to_string());
      } else {
        for (const std::string& d : mapping::json_diff(*expected, m.result.output))
          problems.push_back(d);
      }
      if (fs::exists(expected_report)) {
        auto want = read_file(expected_report.string());
        if (want) diff_lines("report", *want, report_text(m), problems);
      }
    }
    if (problems.empty()) {
      out << "ok   " << c.name << "\n";
      continue;
    }
    ++failed;
    out << "FAIL " << c.name << "\n";
    for (const auto& p : problems) out << "     " << p << "\n";
  }
  if (update) {
    out << "wrote " << cases.size()
        << " case(s): review the changes (git diff) before committing\n";
    return 0;
  }
  out << cases.size() - static_cast<std::size_t>(failed) << " of " << cases.size()
      << " case(s) passed\n";
  return failed == 0 ? 0 : 1;
}

void print_functions(std::ostream& out) {
  for (const auto& f : mapping::function_list())
    out << f.signature << "\n    " << f.summary << "\n";
}

}  // namespace adapter::app
