#include "mllp/frame_decoder.h"

#include <cstring>

namespace adapter::mllp {

std::string frame(std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 3);
  out.push_back(kStartBlock);
  out += payload;
  out.push_back(kEndBlock);
  out.push_back(kCarriageReturn);
  return out;
}

void FrameDecoder::feed(std::string_view bytes, std::vector<FrameEvent>& events) {
  std::size_t i = 0;
  // The next FS at or after i (bytes.size() when there is none), cached for this read: looking it
  // up again for every frame a VT abandons rescans the rest of the read each time, quadratic in a
  // read full of VTs (256 KiB of them took 444 ms instead of 22 ms).
  std::size_t next_fs = 0;
  bool next_fs_known = false;
  while (i < bytes.size()) {
    switch (state_) {
      case State::failed:
        return;
      case State::outside: {
        const void* vt = std::memchr(bytes.data() + i, kStartBlock, bytes.size() - i);
        if (vt == nullptr) {
          bytes_outside_ += bytes.size() - i;
          return;
        }
        const auto at = static_cast<std::size_t>(static_cast<const char*>(vt) - bytes.data());
        bytes_outside_ += at - i;
        i = at + 1;
        buffer_.clear();
        state_ = State::inside;
        break;
      }
      case State::inside: {
        // The payload runs to the next FS; a VT before it means the sender started over.
        if (!next_fs_known || next_fs < i) {
          const void* fs = std::memchr(bytes.data() + i, kEndBlock, bytes.size() - i);
          next_fs = fs == nullptr
                        ? bytes.size()
                        : static_cast<std::size_t>(static_cast<const char*>(fs) - bytes.data());
          next_fs_known = true;
        }
        const void* vt = std::memchr(bytes.data() + i, kStartBlock, next_fs - i);
        const std::size_t stop =
            vt == nullptr ? next_fs
                          : static_cast<std::size_t>(static_cast<const char*>(vt) - bytes.data());
        const std::size_t take = stop - i;
        if (buffer_.size() + take > max_frame_bytes_) {
          buffer_.append(bytes.substr(i, max_frame_bytes_ - buffer_.size()));
          events.push_back({FrameEvent::Kind::oversize, std::move(buffer_)});
          buffer_.clear();
          state_ = State::failed;
          return;
        }
        buffer_.append(bytes.substr(i, take));
        i = stop;
        if (vt != nullptr) {
          events.push_back({FrameEvent::Kind::truncated, std::move(buffer_)});
          buffer_.clear();
          ++i;  // the VT opens the new frame
        } else if (next_fs < bytes.size()) {
          // Deliver at FS: a sender that never sends the CR must not be left waiting for its ACK.
          ++i;
          events.push_back({FrameEvent::Kind::frame, std::move(buffer_)});
          buffer_.clear();
          state_ = State::after_end;
        }
        break;
      }
      case State::after_end:
        // FS must be followed by CR; one that is not still ended its frame.
        if (bytes[i] == kCarriageReturn) {
          ++i;
        } else {
          ++frames_without_cr_;
        }
        state_ = State::outside;
        break;
    }
  }
}

std::string FrameDecoder::take_partial() {
  std::string out;
  if (state_ == State::inside) out = std::move(buffer_);
  buffer_.clear();
  if (state_ != State::failed) state_ = State::outside;
  return out;
}

}  // namespace adapter::mllp
