// Batches: a file (FHS ... FTS) of batches (BHS ... BTS) of messages, or messages back to back.
//
//   auto batch = split_batch(bytes);
//   if (!batch) reject(batch.error());              // names the segment: "BHS (segment 4): ..."
//   for (std::string_view text : batch->messages) Message::parse(text);
//
// A malformed envelope (a BHS inside an open batch, a BTS without BHS, a count in BTS-1 or FTS-1
// that does not match) is an error for the whole input: never a partial, silent success.
#pragma once

#include <string_view>
#include <vector>

#include "common/result.h"
#include "hl7v2/types.h"

namespace adapter::hl7v2 {

struct Batch {
  std::string_view file_header;            // FHS segment text, or empty
  std::string_view batch_header;           // BHS of the first batch, or empty
  std::string_view batch_trailer;          // BTS of the last batch, or empty
  std::string_view file_trailer;           // FTS, or empty
  std::size_t batch_count = 0;             // BHS/BTS pairs seen
  std::vector<std::string_view> messages;  // each from its MSH up to the next message or trailer

  bool enveloped() const { return !file_header.empty() || !batch_header.empty(); }
};

// True when the input holds an envelope or more than one MSH (cheap check before a full split).
bool looks_like_batch(std::string_view bytes);

Result<Batch, ParseError> split_batch(std::string_view bytes);

}  // namespace adapter::hl7v2
