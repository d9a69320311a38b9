#include "mllp/frame_decoder.h"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

using adapter::mllp::frame;
using adapter::mllp::FrameDecoder;
using adapter::mllp::FrameEvent;
using Kind = adapter::mllp::FrameEvent::Kind;

namespace {

constexpr std::size_t kLarge = 1 << 20;

std::vector<FrameEvent> feed(FrameDecoder& d, std::string_view bytes) {
  std::vector<FrameEvent> events;
  d.feed(bytes, events);
  return events;
}

}  // namespace

TEST_CASE("frame() wraps a payload in VT ... FS CR", "[mllp]") {
  CHECK(frame("MSH|^~\\&|") == "\x0BMSH|^~\\&|\x1C\x0D");
  CHECK(frame("") == std::string("\x0B\x1C\x0D"));
}

TEST_CASE("several frames in one read come out in order", "[mllp]") {
  FrameDecoder d(kLarge);
  const auto events = feed(d, frame("one") + frame("") + frame("three\rline"));
  REQUIRE(events.size() == 3);
  CHECK(events[0].kind == Kind::frame);
  CHECK(events[0].payload == "one");
  CHECK(events[1].payload.empty());
  CHECK(events[2].payload == "three\rline");
  CHECK(events[2].kind == Kind::frame);
  CHECK_FALSE(d.in_frame());
  CHECK_FALSE(d.failed());
  CHECK(d.bytes_outside_frames() == 0);
  CHECK(d.frames_without_cr() == 0);
}

TEST_CASE("a frame split at every byte position decodes the same", "[mllp]") {
  const std::string payload = "MSH|^~\\&|LAB|ACME\rPID|1||42\rOBX|1|ST|x||y";
  const std::string wire = frame(payload) + frame("second");
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    INFO("cut at " << cut);
    FrameDecoder d(kLarge);
    std::vector<FrameEvent> events;
    d.feed(std::string_view(wire).substr(0, cut), events);
    d.feed(std::string_view(wire).substr(cut), events);
    REQUIRE(events.size() == 2);
    CHECK(events[0].kind == Kind::frame);
    CHECK(events[0].payload == payload);
    CHECK(events[1].payload == "second");
    CHECK(d.frames_without_cr() == 0);
    CHECK(d.bytes_outside_frames() == 0);
  }
}

TEST_CASE("a frame fed one byte at a time is delivered when its FS arrives", "[mllp]") {
  const std::string wire = frame("abc\rdef");
  FrameDecoder d(kLarge);
  std::vector<FrameEvent> events;
  for (std::size_t i = 0; i < wire.size(); ++i) {
    d.feed(std::string_view(wire).substr(i, 1), events);
    // Nothing before the FS; the frame at the FS, without waiting for the CR.
    CHECK(events.size() == (i + 2 >= wire.size() ? 1u : 0u));
  }
  REQUIRE(events.size() == 1);
  CHECK(events[0].payload == "abc\rdef");
  CHECK(d.frames_without_cr() == 0);
}

TEST_CASE("bytes outside frames are discarded and counted", "[mllp]") {
  FrameDecoder d(kLarge);
  const auto events = feed(d, "noise" + frame("a") + "\r\n" + frame("b") + "xy");
  REQUIRE(events.size() == 2);
  CHECK(events[0].payload == "a");
  CHECK(events[1].payload == "b");
  CHECK(d.bytes_outside_frames() == 5 + 2 + 2);
  // Counted across reads too.
  feed(d, "zzz");
  CHECK(d.bytes_outside_frames() == 12);
}

TEST_CASE("an oversize frame yields exactly max bytes and stops the decoder", "[mllp]") {
  FrameDecoder d(8);
  SECTION("in one read") {
    const auto events = feed(d, frame("12345678") + frame("123456789") + frame("after"));
    REQUIRE(events.size() == 2);
    CHECK(events[0].kind == Kind::frame);
    CHECK(events[0].payload == "12345678");  // exactly max is still fine
    CHECK(events[1].kind == Kind::oversize);
    CHECK(events[1].payload == "12345678");
  }
  SECTION("split across reads") {
    CHECK(feed(d, std::string(1, adapter::mllp::kStartBlock) + "12345").empty());
    const auto events = feed(d, "6789" + frame("after"));
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == Kind::oversize);
    CHECK(events[0].payload == "12345678");
  }
  CHECK(d.failed());
  CHECK_FALSE(d.in_frame());
  // Everything later is ignored, even a well-formed frame and take_partial().
  CHECK(feed(d, frame("x")).empty());
  CHECK(d.take_partial().empty());
  CHECK(d.failed());
}

TEST_CASE("a VT inside a frame hands back the partial frame as truncated", "[mllp]") {
  FrameDecoder d(kLarge);
  const auto events = feed(d, "\x0Bhalf a mess" + frame("whole"));
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == Kind::truncated);
  CHECK(events[0].payload == "half a mess");
  CHECK(events[1].kind == Kind::frame);
  CHECK(events[1].payload == "whole");
  CHECK_FALSE(d.failed());
}

TEST_CASE("a VT arriving in the next read still truncates", "[mllp]") {
  FrameDecoder d(kLarge);
  CHECK(feed(d, "\x0Bpartial").empty());
  CHECK(d.in_frame());
  const auto events = feed(d, "\x0Bnew\x1C\x0D");
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == Kind::truncated);
  CHECK(events[0].payload == "partial");
  CHECK(events[1].payload == "new");
}

TEST_CASE("a read full of VTs gives one empty truncated frame each", "[mllp]") {
  // Many VTs with no FS after them: each abandons an empty frame.
  FrameDecoder d(kLarge);
  const std::string vts(1000, '\x0B');
  const auto events = feed(d, vts + "tail");
  REQUIRE(events.size() == 999);
  for (const auto& e : events) {
    CHECK(e.kind == Kind::truncated);
    CHECK(e.payload.empty());
  }
  CHECK(d.in_frame());
  CHECK(d.take_partial() == "tail");
}

TEST_CASE("FS without CR still ends the frame and is counted", "[mllp]") {
  FrameDecoder d(kLarge);
  SECTION("next frame right after the FS") {
    const auto events = feed(d, "\x0Bone\x1C\x0Btwo\x1C\x0D");
    REQUIRE(events.size() == 2);
    CHECK(events[0].payload == "one");
    CHECK(events[1].payload == "two");
    CHECK(d.frames_without_cr() == 1);
    CHECK(d.bytes_outside_frames() == 0);
  }
  SECTION("frame delivered at FS, before its CR arrives") {
    const auto first = feed(d, "\x0Bone\x1C");
    REQUIRE(first.size() == 1);
    CHECK(first[0].payload == "one");
    CHECK(feed(d, "\x0D").empty());
    CHECK(d.frames_without_cr() == 0);
  }
  SECTION("another byte after the FS is outside any frame") {
    feed(d, "\x0Bone\x1Cx");
    CHECK(d.frames_without_cr() == 1);
    CHECK(d.bytes_outside_frames() == 1);
  }
}

TEST_CASE("take_partial returns the frame cut off by the end of the stream", "[mllp]") {
  FrameDecoder d(kLarge);
  CHECK(feed(d, frame("done") + "\x0BMSH|cut").size() == 1);
  CHECK(d.in_frame());
  CHECK(d.take_partial() == "MSH|cut");
  CHECK_FALSE(d.in_frame());
  CHECK(d.take_partial().empty());
  // The decoder is empty again and reads the next frame normally.
  const auto events = feed(d, frame("next"));
  REQUIRE(events.size() == 1);
  CHECK(events[0].payload == "next");
}

TEST_CASE("take_partial outside a frame returns nothing", "[mllp]") {
  FrameDecoder d(kLarge);
  feed(d, frame("a") + "junk");
  CHECK(d.take_partial().empty());
  feed(d, "\x0B");
  CHECK(d.in_frame());
  CHECK(d.take_partial().empty());  // an opened but empty frame
  CHECK_FALSE(d.in_frame());
}

TEST_CASE("max_frame_bytes 0 accepts only empty frames", "[mllp]") {
  FrameDecoder d(0);
  auto events = feed(d, frame(""));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == Kind::frame);
  events = feed(d, frame("x"));
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == Kind::oversize);
  CHECK(events[0].payload.empty());
  CHECK(d.failed());
}
