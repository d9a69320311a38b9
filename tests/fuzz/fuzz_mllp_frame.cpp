// Fuzz target for the MLLP frame decoder (adapter/mllp/frame_decoder.h).
//
// A socket hands the decoder bytes in whatever pieces the network chose, so the same stream must
// give the same events however it is split. Each input is decoded three ways (in one piece, in
// chunks whose sizes the input chooses, one byte at a time) and compared with a byte-at-a-time
// reference model written from the header's description alone; any difference aborts.
//
// Input layout:
//   byte 0, low nibble   k: how many chunk-size bytes follow (0: sizes come from the stream)
//   byte 0, high nibble  max_frame_bytes, from kMaxFrameBytes (mostly small, to reach oversize)
//   bytes 1..k           chunk sizes, used in turn; 0 feeds an empty read, then one byte
//   the rest             the byte stream
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "mllp/frame_decoder.h"

namespace {

using adapter::mllp::FrameDecoder;
using adapter::mllp::FrameEvent;
using adapter::mllp::kCarriageReturn;
using adapter::mllp::kEndBlock;
using adapter::mllp::kStartBlock;

// 0 is legal (every non-empty frame is oversize); the large value never triggers for inputs of
// libFuzzer's usual size, so plain framing is explored too.
constexpr std::size_t kMaxFrameBytes[16] = {
    std::size_t{1} << 20, 0, 1, 2, 3, 4, 5, 7, 8, 16, 31, 32, 64, 100, 255, 4096};

// Everything observable about one decoding run.
struct Outcome {
  std::vector<FrameEvent> events;
  std::uint64_t bytes_outside = 0;
  std::uint64_t frames_without_cr = 0;
  bool in_frame = false;
  bool failed = false;
  std::string partial;             // take_partial() at end of stream
  std::vector<FrameEvent> reused;  // a fresh frame fed after take_partial()
};

bool same_event(const FrameEvent& a, const FrameEvent& b) {
  return a.kind == b.kind && a.payload == b.payload;
}

bool same_events(const std::vector<FrameEvent>& a, const std::vector<FrameEvent>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!same_event(a[i], b[i])) return false;
  }
  return true;
}

bool same(const Outcome& a, const Outcome& b) {
  return same_events(a.events, b.events) && a.bytes_outside == b.bytes_outside &&
         a.frames_without_cr == b.frames_without_cr && a.in_frame == b.in_frame &&
         a.failed == b.failed && a.partial == b.partial && same_events(a.reused, b.reused);
}

// After the stream: what is left, and whether the decoder is usable again (it must be, unless it
// failed, since a listener reuses nothing but the contract says take_partial "empties" it).
void finish(FrameDecoder& d, Outcome& out) {
  out.bytes_outside = d.bytes_outside_frames();
  out.frames_without_cr = d.frames_without_cr();
  out.in_frame = d.in_frame();
  out.failed = d.failed();
  out.partial = d.take_partial();
  FUZZ_CHECK(!d.in_frame());
  FUZZ_CHECK(d.failed() == out.failed);
  d.feed(adapter::mllp::frame("x"), out.reused);
}

Outcome decode_whole(std::string_view stream, std::size_t max) {
  FrameDecoder d(max);
  Outcome out;
  d.feed(stream, out.events);
  finish(d, out);
  return out;
}

Outcome decode_chunked(std::string_view stream, std::size_t max, std::string_view sizes) {
  FrameDecoder d(max);
  Outcome out;
  std::size_t pos = 0;
  std::size_t turn = 0;
  while (pos < stream.size()) {
    std::size_t n;
    if (sizes.empty()) {
      // Sizes from the stream itself: the chunk ends depend on the data, like the "natural"
      // splits a sender's writes produce.
      n = static_cast<unsigned char>(stream[pos]) % 13 + 1;
    } else {
      n = static_cast<unsigned char>(sizes[turn++ % sizes.size()]);
      if (n == 0) {
        d.feed({}, out.events);  // an empty read must change nothing
        n = 1;
      }
    }
    if (n > stream.size() - pos) n = stream.size() - pos;
    d.feed(stream.substr(pos, n), out.events);
    pos += n;
  }
  finish(d, out);
  return out;
}

Outcome decode_bytewise(std::string_view stream, std::size_t max) {
  FrameDecoder d(max);
  Outcome out;
  for (std::size_t i = 0; i < stream.size(); ++i) d.feed(stream.substr(i, 1), out.events);
  finish(d, out);
  return out;
}

// The reference: the protocol as frame_decoder.h describes it, one byte at a time, with no
// search or buffering tricks to get wrong.
Outcome reference(std::string_view stream, std::size_t max) {
  enum class S { outside, inside, after_end, failed } s = S::outside;
  Outcome out;
  std::string buf;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    const char c = stream[i];
    switch (s) {
      case S::failed:
        break;
      case S::after_end:
        s = S::outside;
        if (c == kCarriageReturn) break;
        ++out.frames_without_cr;
        [[fallthrough]];  // the byte after a CR-less FS is read as if outside a frame
      case S::outside:
        if (c == kStartBlock) {
          buf.clear();
          s = S::inside;
        } else {
          ++out.bytes_outside;
        }
        break;
      case S::inside:
        if (c == kEndBlock) {
          out.events.push_back({FrameEvent::Kind::frame, buf});
          buf.clear();
          s = S::after_end;
        } else if (c == kStartBlock) {
          out.events.push_back({FrameEvent::Kind::truncated, buf});
          buf.clear();
        } else if (buf.size() == max) {
          out.events.push_back({FrameEvent::Kind::oversize, buf});
          buf.clear();
          s = S::failed;
        } else {
          buf.push_back(c);
        }
        break;
    }
  }
  out.in_frame = s == S::inside;
  out.failed = s == S::failed;
  if (s == S::inside) out.partial = buf;
  // finish() feeds frame("x"), which is itself oversize when max is 0.
  if (!out.failed) {
    out.reused.push_back(max >= 1 ? FrameEvent{FrameEvent::Kind::frame, "x"}
                                  : FrameEvent{FrameEvent::Kind::oversize, ""});
  }
  return out;
}

void check_events(const Outcome& o, std::size_t max) {
  for (std::size_t i = 0; i < o.events.size(); ++i) {
    const FrameEvent& e = o.events[i];
    // The framing bytes never leak into a payload.
    FUZZ_CHECK(e.payload.find(kStartBlock) == std::string::npos);
    FUZZ_CHECK(e.payload.find(kEndBlock) == std::string::npos);
    FUZZ_CHECK(e.payload.size() <= max);
    if (e.kind == FrameEvent::Kind::oversize) {
      // Exactly the first max bytes, and nothing after it.
      FUZZ_CHECK(e.payload.size() == max);
      FUZZ_CHECK(i + 1 == o.events.size());
      FUZZ_CHECK(o.failed);
    }
  }
  FUZZ_CHECK(o.partial.find(kStartBlock) == std::string::npos);
  FUZZ_CHECK(o.partial.find(kEndBlock) == std::string::npos);
  FUZZ_CHECK(o.partial.size() <= max);
  FUZZ_CHECK(o.failed == (!o.events.empty() && o.events.back().kind == FrameEvent::Kind::oversize));
  // A failed decoder ignores everything, including a new frame after take_partial().
  FUZZ_CHECK(o.reused.size() == (o.failed ? 0u : 1u));
}

// frame() must produce what the decoder reads back, for every payload it delivered.
void check_round_trip(const Outcome& o, std::size_t max) {
  for (const FrameEvent& e : o.events) {
    if (e.kind != FrameEvent::Kind::frame) continue;
    FrameDecoder d(max);
    std::vector<FrameEvent> again;
    d.feed(adapter::mllp::frame(e.payload), again);
    FUZZ_CHECK(again.size() == 1);
    FUZZ_CHECK(same_event(again[0], e));
    FUZZ_CHECK(d.frames_without_cr() == 0 && d.bytes_outside_frames() == 0 && !d.in_frame());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto flags = static_cast<unsigned char>(input[0]);
  const std::size_t k = flags & 0x0F;
  const std::size_t max = kMaxFrameBytes[flags >> 4];
  const std::string_view sizes = input.substr(1, k);
  const std::string_view stream = input.substr(1 + sizes.size());

  const Outcome expected = reference(stream, max);
  const Outcome whole = decode_whole(stream, max);
  const Outcome chunked = decode_chunked(stream, max, sizes);
  const Outcome bytewise = decode_bytewise(stream, max);

  check_events(whole, max);
  FUZZ_CHECK(same(whole, expected));
  FUZZ_CHECK(same(chunked, whole));
  FUZZ_CHECK(same(bytewise, whole));
  check_round_trip(whole, max);
  return 0;
}
