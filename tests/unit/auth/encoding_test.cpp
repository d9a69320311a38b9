#include "auth/encoding.h"

#include <catch2/catch.hpp>

using namespace adapter::auth;

TEST_CASE("Base64 matches the RFC 4648 test vectors", "[auth][encoding]") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode("fooba") == "Zm9vYmE=");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
}

TEST_CASE("Base64url uses - and _ and drops the padding", "[auth][encoding]") {
  const std::string bytes("\xfb\xff\xbf\x3e", 4);
  CHECK(base64_encode(bytes) == "+/+/Pg==");
  CHECK(base64url_encode(bytes) == "-_-_Pg");
  CHECK(base64url_encode("f") == "Zg");
  CHECK(base64url_encode("fo") == "Zm8");
  // The JWS example header of RFC 7515 appendix A.1.
  CHECK(base64url_encode("{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}") ==
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9");
}

TEST_CASE("Base64url decoding round-trips and refuses bad input", "[auth][encoding]") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); n += 37) {
    const std::string piece = all.substr(0, n);
    CHECK(base64url_decode(base64url_encode(piece)) == piece);
  }
  CHECK(base64url_decode("Zm8=") == "fo");  // padding tolerated
  CHECK_FALSE(base64url_decode("Zm+v"));    // '+' is standard Base64, not url
  CHECK_FALSE(base64url_decode("Z"));       // a lone character is 6 bits: no byte
  CHECK_FALSE(base64url_decode("Zh"));      // non-zero unused bits: not the canonical form of "f"
  CHECK_FALSE(base64url_decode("Zm9v.g"));
}

TEST_CASE("Form encoding keeps only letters digits and *-._", "[auth][encoding]") {
  CHECK(form_urlencode("AZaz09*-._") == "AZaz09*-._");
  CHECK(form_urlencode("a b") == "a+b");
  CHECK(form_urlencode("a&b=c+d") == "a%26b%3Dc%2Bd");
  CHECK(form_urlencode("id:with:colons") == "id%3Awith%3Acolons");
  CHECK(form_urlencode("~!'()%/?#") == "%7E%21%27%28%29%25%2F%3F%23");
  CHECK(form_urlencode("caf\xC3\xA9 \xE2\x82\xAC") == "caf%C3%A9+%E2%82%AC");  // UTF-8 bytes
  CHECK(form_urlencode(std::string("nul\0byte", 8)) == "nul%00byte");
}

TEST_CASE("A form body joins encoded pairs with &", "[auth][encoding]") {
  FormBody form;
  form.add("grant_type", "client_credentials").add("scope", "system/*.read system/*.write");
  CHECK(form.str() == "grant_type=client_credentials&scope=system%2F*.read+system%2F*.write");
}
