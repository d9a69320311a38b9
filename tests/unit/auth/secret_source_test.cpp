#include "auth/secret_source.h"

#include <catch2/catch.hpp>

#include <stdlib.h>

#include "support/temp_dir.h"

using namespace adapter;
using namespace adapter::auth;

TEST_CASE("Secret references name a file or an environment variable", "[auth][secret]") {
  const Result<SecretSource> file = parse_secret_source("file:/run/secrets/ehr");
  REQUIRE(file);
  CHECK(file->kind == SecretSource::Kind::file);
  CHECK(file->name == "/run/secrets/ehr");
  CHECK(file->describe() == "file:/run/secrets/ehr");
  const Result<SecretSource> env = parse_secret_source("env:EHR_CLIENT_SECRET");
  REQUIRE(env);
  CHECK(env->kind == SecretSource::Kind::env);
  CHECK(env->name == "EHR_CLIENT_SECRET");

  CHECK(parse_secret_source("file:").error().code == Errc::bad_config);
  CHECK(parse_secret_source("env:1ABC").error().code == Errc::bad_config);
  CHECK(parse_secret_source("env:A-B").error().code == Errc::bad_config);
  // An inline secret is refused without being quoted back.
  const Result<SecretSource> inline_secret = parse_secret_source("hunter2-pasted-secret");
  REQUIRE_FALSE(inline_secret);
  CHECK(inline_secret.error().message.find("hunter2") == std::string::npos);
}

TEST_CASE("A secret file loses its trailing line break and nothing else", "[auth][secret]") {
  adapter::test::TempDir dir;
  CHECK(read_secret_file(dir.write("lf", "s3cret\n")).value() == "s3cret");
  CHECK(read_secret_file(dir.write("crlf", "s3cret\r\n")).value() == "s3cret");
  CHECK(read_secret_file(dir.write("none", "s3cret")).value() == "s3cret");
  CHECK(read_secret_file(dir.write("spaces", " s3 cret \n")).value() == " s3 cret ");
  CHECK(read_secret_file(dir.write("inner", "line1\nline2\n")).value() == "line1\nline2");
  const Result<SecretSource> src = parse_secret_source("file:" + dir.file("lf"));
  REQUIRE(src);
  CHECK(read_secret(*src).value() == "s3cret");
}

TEST_CASE("A missing empty or oversized secret file is an error naming the file",
          "[auth][secret]") {
  adapter::test::TempDir dir;
  const auto error_of = [](const std::string& path) {
    const Result<std::string> r = read_secret_file(path);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::auth_secret_unavailable);
    CHECK(r.error().message.find(path) != std::string::npos);
    return r.error().message;
  };
  CHECK(error_of(dir.file("absent")).find("cannot read") != std::string::npos);
  CHECK(error_of(dir.write("empty", "")).find("empty") != std::string::npos);
  CHECK(error_of(dir.write("blank", "\r\n\n")).find("empty") != std::string::npos);
  const std::string big = error_of(dir.write("big", std::string(70 * 1024, 'k')));
  CHECK(big.find("64 KiB") != std::string::npos);
  CHECK(big.find("kkkk") == std::string::npos);
  error_of(dir.file(""));  // the directory itself
}

TEST_CASE("A secret from the environment", "[auth][secret]") {
  ::setenv("ADAPTER_AUTH_TEST_SECRET", "from env\n", 1);
  CHECK(read_secret_env("ADAPTER_AUTH_TEST_SECRET").value() == "from env");
  const Result<SecretSource> src = parse_secret_source("env:ADAPTER_AUTH_TEST_SECRET");
  REQUIRE(src);
  CHECK(read_secret(*src).value() == "from env");

  ::setenv("ADAPTER_AUTH_TEST_SECRET", "", 1);
  const Result<std::string> empty = read_secret_env("ADAPTER_AUTH_TEST_SECRET");
  REQUIRE_FALSE(empty);
  CHECK(empty.error().code == Errc::auth_secret_unavailable);
  CHECK(empty.error().message.find("ADAPTER_AUTH_TEST_SECRET is empty") != std::string::npos);

  ::unsetenv("ADAPTER_AUTH_TEST_SECRET");
  const Result<std::string> unset = read_secret_env("ADAPTER_AUTH_TEST_SECRET");
  REQUIRE_FALSE(unset);
  CHECK(unset.error().message.find("not set") != std::string::npos);
}
