#include "delivery/outcome.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

namespace adapter::delivery {
namespace {

constexpr std::size_t kMaxErrorText = 500;

std::string cut(std::string_view text, std::size_t max) {
  if (text.size() <= max) return std::string(text);
  return std::string(text.substr(0, max)) + "...";
}

// The member `name` of an object, or nullptr. (Comparing RapidJSON 1.1 member iterators is
// ambiguous under C++20's reversed operators, so lookups go through HasMember.)
const rapidjson::Value* member(const rapidjson::Value& object, const char* name) {
  return object.IsObject() && object.HasMember(name) ? &object[name] : nullptr;
}

std::string_view string_member(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* it = member(object, name);
  if (it == nullptr || !it->IsString()) return {};
  return {it->GetString(), it->GetStringLength()};
}

bool parse_object(std::string_view body, rapidjson::Document& doc) {
  doc.Parse<rapidjson::kParseStopWhenDoneFlag>(body.data(), body.size());
  return !doc.HasParseError() && doc.IsObject();
}

}  // namespace

std::string_view to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::delivered:
      return "delivered";
    case Verdict::retry:
      return "retry";
    case Verdict::dead_letter:
      return "dead_letter";
  }
  return "unknown";
}

Result<std::string> summarize_transaction_response(std::string_view body) {
  rapidjson::Document doc;
  if (!parse_object(body, doc) || string_member(doc, "resourceType") != "Bundle") {
    return make_error(Errc::internal, "the answer is not a FHIR Bundle");
  }
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.StartArray();
  const rapidjson::Value* entries = member(doc, "entry");
  if (entries != nullptr && entries->IsArray()) {
    for (const rapidjson::Value& entry : entries->GetArray()) {
      w.StartObject();
      if (const rapidjson::Value* response = member(entry, "response"); response != nullptr) {
        for (const char* name : {"status", "location"}) {
          const std::string_view value = string_member(*response, name);
          if (value.empty()) continue;
          w.Key(name);
          w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
        }
      }
      w.EndObject();
    }
  }
  w.EndArray();
  return std::string(out.GetString(), out.GetSize());
}

std::optional<std::string> first_issue(std::string_view body) {
  rapidjson::Document doc;
  if (!parse_object(body, doc) || string_member(doc, "resourceType") != "OperationOutcome") {
    return std::nullopt;
  }
  const rapidjson::Value* issues = member(doc, "issue");
  if (issues == nullptr || !issues->IsArray() || issues->Empty()) return std::nullopt;
  const rapidjson::Value* chosen = &(*issues)[0];
  for (const rapidjson::Value& issue : issues->GetArray()) {
    const std::string_view severity = string_member(issue, "severity");
    if (severity == "error" || severity == "fatal") {
      chosen = &issue;
      break;
    }
  }
  std::string text(string_member(*chosen, "severity"));
  const std::string_view code = string_member(*chosen, "code");
  if (!code.empty()) text += (text.empty() ? "" : " ") + std::string(code);
  std::string_view detail = string_member(*chosen, "diagnostics");
  if (detail.empty() && chosen->IsObject()) {
    auto details = chosen->FindMember("details");
    if (details != chosen->MemberEnd()) detail = string_member(details->value, "text");
  }
  if (!detail.empty()) text += ": " + std::string(detail);
  for (const char* where : {"expression", "location"}) {
    if (!chosen->IsObject()) break;
    auto list = chosen->FindMember(where);
    if (list == chosen->MemberEnd() || !list->value.IsArray() || list->value.Empty()) continue;
    if (list->value[0].IsString()) {
      text += " (" + std::string(list->value[0].GetString()) + ")";
      break;
    }
  }
  return cut(text, kMaxErrorText);
}

Outcome classify(const Result<Response>& answer, std::chrono::system_clock::time_point now) {
  Outcome out;
  if (!answer) {
    // No answer: the request may or may not have arrived. Either way the same Bundle is safe to
    // send again: every entry is a conditional create.
    out.verdict = Verdict::retry;
    out.error = cut(answer.error().to_string(), kMaxErrorText);
    out.destination_failed = true;
    return out;
  }
  const Response& r = *answer;
  out.status = r.status;
  if (r.status >= 200 && r.status < 300) {
    out.verdict = Verdict::delivered;
    Result<std::string> summary = summarize_transaction_response(r.body);
    out.response = summary ? std::move(*summary) : std::string();
    return out;
  }
  const std::optional<std::string> issue = first_issue(r.body);
  out.error = (r.context.empty() ? std::string() : r.context + ": ") + "HTTP " +
              std::to_string(r.status) + (issue ? ": " + *issue : std::string());
  out.response = cut(r.body, kMaxKeptResponse);
  if (r.status == 408 || r.status == 429 || r.status >= 500) {
    out.verdict = Verdict::retry;
    out.retry_after = parse_retry_after(r.retry_after, now);
    out.destination_failed = true;
  } else {
    out.verdict = Verdict::dead_letter;
  }
  return out;
}

}  // namespace adapter::delivery
