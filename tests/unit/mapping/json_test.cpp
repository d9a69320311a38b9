#include "mapping/json.h"

#include <catch2/catch.hpp>

#include <string>
#include <variant>

#include "common/json_text.h"

using adapter::mapping::Json;
using adapter::mapping::JsonArray;
using adapter::mapping::JsonObject;

TEST_CASE("JSON values keep their kind and text through copies and moves", "[mapping][json]") {
  const Json number = Json::number("0.480");
  const Json text = Json::string("BRCA1");
  JsonObject members;
  members.emplace_back("n", number);
  members.emplace_back("list", Json::array(JsonArray{text, Json::boolean(false), Json()}));
  const Json object = Json::object(std::move(members));

  Json copy = object;
  Json moved = std::move(copy);
  CHECK(moved == object);
  CHECK(moved.dump() == R"({"n":0.480,"list":["BRCA1",false,null]})");
  CHECK(moved.find("n")->number_text() == "0.480");
  CHECK(moved.as_object().data() == object.as_object().data());  // copies share what they hold
  CHECK(Json::number(3.0).number_text() == "3");
  CHECK(Json::number(0.5).number_text() == "0.5");
  CHECK_FALSE(Json::number("1.0") == Json::number("1"));  // numbers compare by their text
  CHECK(Json().is_empty());
  CHECK(Json::string("").is_empty());
  CHECK_FALSE(Json::boolean(false).is_empty());
  CHECK_FALSE(Json::number("0").is_empty());
}

TEST_CASE("a string made of two parts equals the one made of their concatenation",
          "[mapping][json]") {
  // Short strings are held inline (up to 22 bytes), longer ones in a block: both sides of that.
  for (const std::size_t total : {0UL, 1UL, 21UL, 22UL, 23UL, 40UL}) {
    const std::string whole(total, 'x');
    for (std::size_t cut = 0; cut <= total; cut += (total > 4 ? total / 4 : 1)) {
      std::string text = whole;
      for (std::size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + i % 26);
      const std::string_view view(text);
      const Json two = Json::string(view.substr(0, cut), view.substr(cut));
      INFO(total << " bytes cut at " << cut);
      CHECK(two == Json::string(text));
      CHECK(two.as_string() == text);
      CHECK(two.is_empty() == text.empty());
    }
  }
}

TEST_CASE("reading a JSON value as another kind throws", "[mapping][json]") {
  CHECK_THROWS_AS(Json::number("1").as_string(), std::bad_variant_access);
  CHECK_THROWS_AS(Json::string("1").number_text(), std::bad_variant_access);
  CHECK_THROWS_AS(Json().as_bool(), std::bad_variant_access);
  CHECK_THROWS_AS(Json::string("x").as_array(), std::bad_variant_access);
  CHECK_THROWS_AS(Json::array({}).as_object(), std::bad_variant_access);
  CHECK(Json::string("x").find("x") == nullptr);
}

TEST_CASE("strings are escaped wherever the character that needs it sits", "[mapping][json]") {
  // The plain-ASCII fast path reads eight bytes at a time (a short string as one word padded, a
  // long one's tail as its last eight bytes again): every length up to three words, every
  // position, each kind of character that must go through the escaping path.
  const std::string specials[] = {"\"",   "\\", "\n", std::string(1, '\0'), "\x1f", "\x7f", "é",
                                  "\xff", " ",  "~"};
  for (const std::string& special : specials) {
    for (std::size_t length = 1; length <= 24; ++length) {
      for (std::size_t at = 0; at < length; ++at) {
        std::string text(length, 'x');
        text.replace(at, 1, special);
        std::string expected;
        adapter::append_json_string(expected, text);
        INFO("length " << length << ", at " << at << ": " << expected);
        CHECK(Json::string(text).dump() == expected);
      }
    }
  }
  CHECK(Json::string("").dump() == "\"\"");
}

TEST_CASE("a document larger than the room reserved for it dumps whole, escapes anywhere in it",
          "[mapping][json]") {
  // dump() reserves what the thread's last dump took, then grows; a string that needs escaping
  // cuts the text back to what was written before appending it. Both, many times over, in a
  // document that outgrows the room: the text must equal the one built piece by piece.
  (void)Json::string("small").dump();  // the room reserved next is small
  JsonObject members;
  std::string expected_compact = "{";
  std::string expected_pretty = "{";
  for (int i = 0; i < 400; ++i) {
    const std::string key = "key" + std::to_string(i) + (i % 7 == 0 ? "\"q" : "");
    const std::string text =
        std::string(static_cast<std::size_t>(i % 40), 'v') + (i % 3 == 0 ? "line\nbreak" : "plain");
    members.emplace_back(key, Json::string(text));
    std::string k;
    std::string t;
    adapter::append_json_string(k, key);
    adapter::append_json_string(t, text);
    expected_compact += (i > 0 ? "," : "") + k + ":" + t;
    expected_pretty += std::string(i > 0 ? "," : "") + "\n  " + k + ": " + t;
  }
  expected_compact += "}";
  expected_pretty += "\n}";
  const Json doc = Json::object(std::move(members));
  CHECK(doc.dump() == expected_compact);
  CHECK(doc.dump(true) == expected_pretty);
  // dump_to() appends after what the text holds.
  std::string out = "prefix:";
  doc.dump_to(out);
  CHECK(out == "prefix:" + expected_compact);
}
