#include "hl7v2/batch.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>
#include <string>

namespace adapter::hl7v2 {
namespace {

struct Line {
  std::string_view text;  // one segment, without separator
  std::size_t begin;      // offset in the input
  std::uint32_t number;   // 1-based segment number in the input
  std::string_view id() const { return text.substr(0, 3); }
};

// Calls fn(Line) for every non-blank segment; stops when fn returns false.
// The next '\r' and the next '\n' are each found with memchr and kept until passed: every
// message the daemon maps is first asked whether it is a batch, and find_first_of("\r\n")
// tested each byte against both characters one at a time.
template <class Fn>
void for_each_line(std::string_view bytes, Fn fn) {
  const auto next = [&](char c, std::size_t from) {
    const void* hit = std::memchr(bytes.data() + from, c, bytes.size() - from);
    return hit == nullptr ? bytes.size()
                          : static_cast<std::size_t>(static_cast<const char*>(hit) - bytes.data());
  };
  std::size_t pos = 0;
  std::size_t next_cr = next('\r', 0);
  std::size_t next_lf = next('\n', 0);
  std::uint32_t number = 0;
  while (pos < bytes.size()) {
    const char c = bytes[pos];
    if (c == '\r' || c == '\n') {
      ++pos;
      continue;
    }
    if (next_cr < pos) next_cr = next('\r', pos);
    if (next_lf < pos) next_lf = next('\n', pos);
    const std::size_t end = std::min(next_cr, next_lf);
    if (!fn(Line{bytes.substr(pos, end - pos), pos, ++number})) return;
    pos = end;
  }
}

Location at(const Line& line, std::uint32_t field = 0) {
  Location loc;
  loc.segment = std::string(line.id());
  loc.segment_index = line.number;
  loc.occurrence = 0;
  loc.field = field;
  return loc;
}

// Field n of a header/trailer segment whose field separator is `fs` (BTS-1, FTS-1, ...).
std::string_view field_of(std::string_view segment, char fs, int n) {
  std::size_t pos = 3;
  for (int i = 0; i < n; ++i) {
    if (pos >= segment.size() || segment[pos] != fs) return {};
    const std::size_t next = segment.find(fs, pos + 1);
    if (i == n - 1)
      return segment.substr(
          pos + 1, next == std::string_view::npos ? std::string_view::npos : next - pos - 1);
    if (next == std::string_view::npos) return {};
    pos = next;
  }
  return {};
}

// Checks a count field (BTS-1, FTS-1) against what was seen; empty means "not given".
std::optional<ParseError> check_count(const Line& line, char fs, std::size_t seen,
                                      std::string_view what) {
  std::string_view value = field_of(line.text, fs, 1);
  if (value.empty()) return std::nullopt;
  std::size_t declared = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), declared);
  if (ec != std::errc() || ptr != value.data() + value.size()) {
    return ParseError{Errc::bad_batch, std::string(line.id()) + "-1 is not a count", at(line, 1)};
  }
  if (declared != seen) {
    return ParseError{Errc::bad_batch,
                      std::string(line.id()) + "-1 says " + std::to_string(declared) + " " +
                          std::string(what) + ", the input holds " + std::to_string(seen),
                      at(line, 1)};
  }
  return std::nullopt;
}

}  // namespace

bool looks_like_batch(std::string_view bytes) {
  if (bytes.size() >= 3 && bytes.compare(0, 3, "\xEF\xBB\xBF") == 0) bytes.remove_prefix(3);
  std::size_t msh = 0;
  bool batch = false;
  for_each_line(bytes, [&](const Line& line) {
    const std::string_view id = line.id();
    if (id == "FHS" || id == "BHS" || id == "BTS" || id == "FTS") batch = true;
    if (id == "MSH" && ++msh > 1) batch = true;
    return !batch;
  });
  return batch;
}

Result<Batch, ParseError> split_batch(std::string_view bytes) {
  if (bytes.size() >= 3 && bytes.compare(0, 3, "\xEF\xBB\xBF") == 0) bytes.remove_prefix(3);
  Batch out;
  std::optional<ParseError> error;
  char fs = '|';

  std::optional<Line> open_file;   // FHS
  std::optional<Line> open_batch;  // BHS without its BTS yet
  bool file_closed = false;
  bool bare_messages = false;  // messages seen outside any BHS
  std::size_t message_begin = std::string_view::npos;
  std::size_t messages_in_batch = 0;
  std::size_t batches_in_file = 0;

  auto close_message = [&](std::size_t end) {
    if (message_begin != std::string_view::npos) {
      out.messages.push_back(bytes.substr(message_begin, end - message_begin));
      message_begin = std::string_view::npos;
      ++messages_in_batch;
    }
  };
  auto fail = [&](const Line& line, std::string why, std::uint32_t field = 0) {
    error = ParseError{Errc::bad_batch, std::move(why), at(line, field)};
    return false;
  };

  for_each_line(bytes, [&](const Line& line) {
    const std::string_view id = line.id();
    if (file_closed) return fail(line, "segment after FTS: the file has ended");
    if (id == "FHS") {
      if (line.number != 1) return fail(line, "FHS must be the first segment");
      if (line.text.size() > 3) fs = line.text[3];
      open_file = line;
      out.file_header = line.text;
    } else if (id == "BHS") {
      if (open_batch) {
        return fail(line, "BHS opens a batch inside the batch opened at segment " +
                              std::to_string(open_batch->number) + " (its BTS is missing)");
      }
      if (bare_messages) return fail(line, "BHS after a message that is outside any batch");
      if (line.text.size() > 3) fs = line.text[3];
      open_batch = line;
      messages_in_batch = 0;
      if (out.batch_header.empty()) out.batch_header = line.text;
    } else if (id == "BTS") {
      if (!open_batch) return fail(line, "BTS without a BHS");
      close_message(line.begin);
      if (auto e = check_count(line, fs, messages_in_batch, "messages")) {
        error = std::move(e);
        return false;
      }
      open_batch.reset();
      out.batch_trailer = line.text;
      ++batches_in_file;
      ++out.batch_count;
    } else if (id == "FTS") {
      if (!open_file) return fail(line, "FTS without an FHS");
      if (open_batch) {
        return fail(line, "FTS while the batch opened at segment " +
                              std::to_string(open_batch->number) + " has no BTS");
      }
      close_message(line.begin);
      if (auto e = check_count(line, fs, batches_in_file + (bare_messages ? 1 : 0), "batches")) {
        error = std::move(e);
        return false;
      }
      out.file_trailer = line.text;
      file_closed = true;
    } else if (id == "MSH") {
      // BHS is optional inside a file: messages straight after FHS form one implicit batch.
      close_message(line.begin);
      message_begin = line.begin;
      if (!open_batch) bare_messages = true;
    } else if (message_begin == std::string_view::npos) {
      return fail(line,
                  "segment " + std::string(id) + " is outside any message (no MSH before it)");
    }
    return true;
  });
  if (error) return std::move(*error);

  close_message(bytes.size());
  if (open_batch) {
    return ParseError{
        Errc::bad_batch,
        "the batch opened at segment " + std::to_string(open_batch->number) + " has no BTS",
        at(*open_batch)};
  }
  if (open_file && !file_closed) {
    return ParseError{Errc::bad_batch, "the file opened by FHS has no FTS", at(*open_file)};
  }
  if (out.messages.empty()) {
    Location loc;
    loc.segment_index = 1;
    return ParseError{Errc::not_hl7, "no MSH segment: the input holds no message", loc};
  }
  return out;
}

}  // namespace adapter::hl7v2
