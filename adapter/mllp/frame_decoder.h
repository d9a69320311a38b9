// MLLP framing without sockets: <VT 0x0B> payload <FS 0x1C><CR 0x0D>.
//
// Feed it bytes as they arrive, in any split; it yields complete frames, and reports what does
// not fit the protocol instead of guessing: bytes outside a frame are discarded and counted, a
// frame over the size limit stops the decoder (the connection must answer and close), and a VT
// in the middle of a frame abandons the partial frame, which is handed back as truncated.
//
// Not thread-safe: one decoder per connection.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace adapter::mllp {

inline constexpr char kStartBlock = '\x0B';
inline constexpr char kEndBlock = '\x1C';
inline constexpr char kCarriageReturn = '\x0D';

// Wraps a payload in an MLLP frame.
std::string frame(std::string_view payload);

struct FrameEvent {
  enum class Kind {
    frame,      // a complete payload
    truncated,  // a partial payload abandoned by a new start block
    oversize,   // the first max_frame_bytes of a frame that exceeds the limit; decoding stops
  };
  Kind kind;
  std::string payload;
};

class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

  // Appends the events the bytes complete. After an oversize event every later byte is ignored.
  void feed(std::string_view bytes, std::vector<FrameEvent>& events);

  bool in_frame() const { return state_ == State::inside; }
  bool failed() const { return state_ == State::failed; }
  // The partial frame at end of stream (connection closed mid-frame); empties the decoder.
  std::string take_partial();

  std::uint64_t bytes_outside_frames() const { return bytes_outside_; }
  std::uint64_t frames_without_cr() const { return frames_without_cr_; }

 private:
  enum class State { outside, inside, after_end, failed };

  std::size_t max_frame_bytes_;
  State state_ = State::outside;
  std::string buffer_;
  std::uint64_t bytes_outside_ = 0;
  std::uint64_t frames_without_cr_ = 0;
};

}  // namespace adapter::mllp
