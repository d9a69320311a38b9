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
        const std::string_view rest = bytes.substr(i);
        const std::size_t fs = rest.find(kEndBlock);
        const std::size_t vt = rest.substr(0, fs).find(kStartBlock);
        const std::size_t take = vt != std::string_view::npos ? vt : (fs != std::string_view::npos ? fs : rest.size());
        if (buffer_.size() + take > max_frame_bytes_) {
          buffer_.append(rest.substr(0, max_frame_bytes_ - buffer_.size()));
          events.push_back({FrameEvent::Kind::oversize, std::move(buffer_)});
          buffer_.clear();
          state_ = State::failed;
          return;
        }
        buffer_.append(rest.substr(0, take));
        i += take;
        if (vt != std::string_view::npos) {
          events.push_back({FrameEvent::Kind::truncated, std::move(buffer_)});
          buffer_.clear();
          ++i;  // the VT opens the new frame
        } else if (fs != std::string_view::npos) {
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
