#include "app/dead_letters.h"

#include <charconv>
#include <ctime>
#include <optional>

namespace adapter::app {
namespace {

constexpr const char* kUsage =
    "usage: adapterd dead-letters [--config FILE] list\n"
    "       adapterd dead-letters [--config FILE] show MESSAGE_ID\n"
    "       adapterd dead-letters [--config FILE] retry (MESSAGE_ID | --all)\n"
    "       adapterd dead-letters [--config FILE] discard MESSAGE_ID --reason TEXT\n";

std::optional<std::int64_t> parse_id(const std::string& text) {
  std::int64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id <= 0) return std::nullopt;
  return id;
}

std::string utc(std::int64_t us) {
  if (us <= 0) return "-";
  const std::time_t seconds = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string status_text(int status) {
  return status == 0 ? "-" : std::to_string(status);
}

int list(store::Outbox& outbox, std::ostream& out, std::ostream& err) {
  store::DeliveryQuery query;
  query.state = store::DeliveryState::dead_letter;
  query.limit = 500;
  std::size_t total = 0;
  out << "message  destination      attempts  status  last attempt          reason\n";
  for (;;) {
    auto page = outbox.find_deliveries(query);
    if (!page) {
      err << "adapterd dead-letters: " << page.error().to_string() << "\n";
      return 1;
    }
    for (const store::DeliveryRecord& d : *page) {
      char line[128];
      std::snprintf(line, sizeof line, "%-8lld %-16s %-9lld %-7s %-21s ",
                    static_cast<long long>(d.message_id), d.destination.c_str(),
                    static_cast<long long>(d.attempts), status_text(d.last_status).c_str(),
                    utc(d.last_attempt_at_us).c_str());
      out << line << d.last_error << "\n";
      query.after_id = d.message_id;
    }
    total += page->size();
    if (page->size() < query.limit) break;
  }
  out << total << " dead letter(s)\n";
  return 0;
}

int show(store::Outbox& outbox, std::int64_t id, std::ostream& out, std::ostream& err) {
  auto deliveries = outbox.deliveries_of(id);
  auto attempts = outbox.attempts_of(id);
  if (!deliveries || !attempts) {
    err << "adapterd dead-letters: "
        << (!deliveries ? deliveries.error() : attempts.error()).to_string() << "\n";
    return 1;
  }
  if (deliveries->empty()) {
    err << "adapterd dead-letters: message " << id << " has no deliveries\n";
    return 1;
  }
  for (const store::DeliveryRecord& d : *deliveries) {
    out << "message " << d.message_id << " to " << d.destination << ": "
        << store::to_string(d.state) << "\n";
    out << "  report:        " << d.order_key << "\n";
    out << "  queued:        " << utc(d.queued_at_us) << "\n";
    out << "  attempts:      " << d.attempts << "\n";
    out << "  last status:   " << status_text(d.last_status) << "\n";
    if (!d.last_error.empty()) out << "  last error:    " << d.last_error << "\n";
    if (d.state == store::DeliveryState::delivered) {
      out << "  delivered:     " << utc(d.delivered_at_us) << "\n";
    }
    if (!d.discard_reason.empty()) out << "  discarded:     " << d.discard_reason << "\n";
    out << "  attempts:\n";
    for (const store::DeliveryAttempt& a : *attempts) {
      if (a.destination != d.destination) continue;
      out << "    #" << a.number << " " << utc(a.started_at_us) << " " << a.outcome << " status "
          << status_text(a.status) << " in " << a.duration_us / 1000 << " ms";
      if (!a.error.empty()) out << ": " << a.error;
      out << "\n";
    }
    if (!d.response.empty()) {
      out << "  server answer" << (d.state == store::DeliveryState::delivered ? " (entries)" : "")
          << ":\n"
          << d.response << "\n";
    }
  }
  return 0;
}

}  // namespace

int dead_letters_command(store::Outbox& outbox, const std::vector<std::string>& operands,
                         std::ostream& out, std::ostream& err) {
  if (operands.empty()) {
    err << kUsage;
    return 2;
  }
  const std::string& verb = operands[0];
  if (verb == "list" && operands.size() == 1) return list(outbox, out, err);
  if (verb == "show" && operands.size() == 2) {
    const auto id = parse_id(operands[1]);
    if (!id) {
      err << kUsage;
      return 2;
    }
    return show(outbox, *id, out, err);
  }
  if (verb == "retry" && operands.size() == 2) {
    std::optional<std::int64_t> id;
    if (operands[1] != "--all") {
      id = parse_id(operands[1]);
      if (!id) {
        err << kUsage;
        return 2;
      }
    }
    auto n = outbox.retry_dead_letters(id);
    if (!n) {
      err << "adapterd dead-letters: " << n.error().to_string() << "\n";
      return 1;
    }
    out << *n << " dead letter(s) queued: mapped again with the current templates, then sent\n";
    if (id && *n == 0) {
      err << "adapterd dead-letters: message " << *id << " has no dead letter\n";
      return 1;
    }
    return 0;
  }
  if (verb == "discard" && operands.size() == 4 && operands[2] == "--reason") {
    const auto id = parse_id(operands[1]);
    if (!id || operands[3].empty()) {
      err << kUsage;
      return 2;
    }
    auto n = outbox.discard_dead_letters(*id, operands[3]);
    if (!n) {
      err << "adapterd dead-letters: " << n.error().to_string() << "\n";
      return 1;
    }
    if (*n == 0) {
      err << "adapterd dead-letters: message " << *id << " has no dead letter\n";
      return 1;
    }
    out << *n << " dead letter(s) discarded\n";
    return 0;
  }
  err << kUsage;
  return 2;
}

}  // namespace adapter::app
