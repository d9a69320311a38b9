#include "auth/token_cache.h"

#include <catch2/catch.hpp>

#include <memory>

using namespace adapter;
using namespace adapter::auth;
using namespace std::chrono_literals;

namespace {

// A clock the test moves by hand.
struct ManualClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  TokenCache::Clock fn() {
    return [this] { return now; };
  }
};

// Records what a waiter was called with.
struct Outcome {
  int calls = 0;
  std::string token;
  Errc error = Errc::ok;
};

TokenCache::Waiter record(std::shared_ptr<Outcome> out) {
  return [out](const Result<CachedToken>& r) {
    ++out->calls;
    if (r) {
      out->token = r->value;
    } else {
      out->error = r.error().code;
    }
  };
}

void run(std::vector<TokenCache::Waiter> waiters, const Result<CachedToken>& result) {
  for (auto& w : waiters) w(result);
}

// Ends a fetch the way the async layer does: the waiters get the fetched token.
void complete(TokenCache& cache, const std::string& value, std::chrono::seconds expires_in) {
  TokenCache::Fetched done = cache.on_fetched(value, expires_in);
  CHECK(done.token.value == value);
  run(std::move(done.waiters), done.token);
}

// Fetches a token through the cache, as the async layer would, and returns it.
CachedToken fetch(TokenCache& cache, const std::string& value, std::chrono::seconds expires_in) {
  const TokenCache::Acquisition a = cache.acquire([](const Result<CachedToken>&) {});
  REQUIRE(a.action == TokenCache::Acquire::fetch);
  complete(cache, value, expires_in);
  const auto current = cache.current();
  REQUIRE(current);
  REQUIRE(current->value == value);
  return *current;
}

TokenCache::Acquire action(TokenCache& cache) {
  return cache.acquire([](const Result<CachedToken>&) {}).action;
}

}  // namespace

TEST_CASE("The first request fetches and later ones use the cached token", "[auth][token_cache]") {
  ManualClock clock;
  TokenCache cache(clock.fn());
  CHECK_FALSE(cache.current());
  fetch(cache, "t1", 3600s);
  const TokenCache::Acquisition a = cache.acquire([](const Result<CachedToken>&) {});
  CHECK(a.action == TokenCache::Acquire::use);
  CHECK(a.token.value == "t1");
  CHECK(a.token.generation == 1);
  CHECK(cache.fetches_started() == 1);
}

TEST_CASE("A long-lived token is refreshed 60 s before it expires", "[auth][token_cache]") {
  ManualClock clock;
  TokenCache cache(clock.fn());
  fetch(cache, "t1", 3600s);
  clock.now += 3539s;
  CHECK(action(cache) == TokenCache::Acquire::use);
  clock.now += 1s;  // 3540 s: inside the 60 s margin
  CHECK_FALSE(cache.current());
  CHECK(action(cache) == TokenCache::Acquire::fetch);
}

TEST_CASE("A short-lived token is refreshed when 10 percent of its life is left",
          "[auth][token_cache]") {
  ManualClock clock;
  TokenCache cache(clock.fn());
  fetch(cache, "t1", 300s);  // 10% = 30 s < 60 s
  clock.now += 269s;
  CHECK(cache.current());
  clock.now += 1s;
  CHECK_FALSE(cache.current());

  TokenCache custom(clock.fn(), TokenCachePolicy{10s, 0.5});
  fetch(custom, "t2", 100s);  // min(10 s, 50 s) = 10 s
  clock.now += 89s;
  CHECK(custom.current());
  clock.now += 1s;
  CHECK_FALSE(custom.current());
}

TEST_CASE("The lifetime counts from the start of the fetch", "[auth][token_cache]") {
  ManualClock clock;
  TokenCache cache(clock.fn());
  REQUIRE(action(cache) == TokenCache::Acquire::fetch);
  clock.now += 20s;  // the token endpoint was slow
  complete(cache, "t1", 100s);
  clock.now += 69s;  // 89 s after the fetch started; refresh at 100 - 10 = 90 s
  CHECK(cache.current());
  clock.now += 1s;
  CHECK_FALSE(cache.current());
}

TEST_CASE("Concurrent callers share one fetch in flight", "[auth][token_cache]") {
  ManualClock clock;
  TokenCache cache(clock.fn());
  auto first = std::make_shared<Outcome>();
  auto second = std::make_shared<Outcome>();
  auto third = std::make_shared<Outcome>();
  CHECK(cache.acquire(record(first)).action == TokenCache::Acquire::fetch);
  CHECK(cache.fetch_in_progress());
  CHECK(cache.acquire(record(second)).action == TokenCache::Acquire::wait);
  CHECK(cache.acquire(record(third)).action == TokenCache::Acquire::wait);
  CHECK(cache.fetches_started() == 1);
  CHECK(cache.waiting() == 3);
  CHECK(first->calls == 0);  // nothing runs inside the cache

  TokenCache::Fetched done = cache.on_fetched("t1", 3600s);
  CHECK_FALSE(cache.fetch_in_progress());
  CHECK(cache.waiting() == 0);
  CHECK(done.token.generation == 1);
  REQUIRE(done.waiters.size() == 3);
  run(std::move(done.waiters), done.token);
  for (const auto& o : {first, second, third}) {
    CHECK(o->calls == 1);
    CHECK(o->token == "t1");
  }
}

TEST_CASE("A failed fetch fails every waiter and the next request fetches again",
          "[auth][token_cache]") {
  ManualClock clock;
  TokenCache cache(clock.fn());
  auto a = std::make_shared<Outcome>();
  auto b = std::make_shared<Outcome>();
  REQUIRE(cache.acquire(record(a)).action == TokenCache::Acquire::fetch);
  REQUIRE(cache.acquire(record(b)).action == TokenCache::Acquire::wait);
  run(cache.on_fetch_failed(), make_error(Errc::auth_token_refused, "invalid_client"));
  CHECK(a->error == Errc::auth_token_refused);
  CHECK(b->error == Errc::auth_token_refused);
  CHECK_FALSE(cache.fetch_in_progress());
  CHECK(action(cache) == TokenCache::Acquire::fetch);
  CHECK(cache.fetches_started() == 2);
}

TEST_CASE("During the refresh margin callers keep the old token while one refresh runs",
          "[auth][token_cache]") {
  ManualClock clock;
  TokenCache cache(clock.fn());
  fetch(cache, "old", 600s);
  clock.now += 550s;  // inside the 60 s margin, 50 s before expiry
  auto refresher = std::make_shared<Outcome>();
  CHECK(cache.acquire(record(refresher)).action == TokenCache::Acquire::fetch);
  const TokenCache::Acquisition other = cache.acquire([](const Result<CachedToken>&) {});
  CHECK(other.action == TokenCache::Acquire::use);
  CHECK(other.token.value == "old");
  clock.now += 50s;  // the old token has expired now: wait for the refresh
  CHECK(action(cache) == TokenCache::Acquire::wait);
  CHECK(cache.fetches_started() == 2);
  complete(cache, "new", 600s);
  CHECK(refresher->token == "new");
  CHECK(cache.current()->value == "new");
}

TEST_CASE("A 401 makes the token stale and the next request fetches once", "[auth][token_cache]") {
  ManualClock clock;
  TokenCache cache(clock.fn());
  const CachedToken t1 = fetch(cache, "t1", 3600s);
  CHECK(cache.on_unauthorized(t1) == TokenCache::Unauthorized::retry);
  CHECK_FALSE(cache.current());
  // A second request that was using t1 at the same time gets its 401 too: still one fetch.
  CHECK(cache.on_unauthorized(t1) == TokenCache::Unauthorized::retry);
  CHECK(action(cache) == TokenCache::Acquire::fetch);
  CHECK(action(cache) == TokenCache::Acquire::wait);
  complete(cache, "t2", 3600s);
  CHECK(cache.fetches_started() == 2);
  const CachedToken t2 = cache.current().value();
  CHECK(t2.value == "t2");
  CHECK(t2.generation == 2);
  // A late 401 for the old token asks for a resend with t2, not for another fetch.
  CHECK(cache.on_unauthorized(t1) == TokenCache::Unauthorized::retry);
  CHECK(cache.current()->value == "t2");
  CHECK(action(cache) == TokenCache::Acquire::use);
}

TEST_CASE("A 401 with the token fetched after a 401 gives up instead of looping",
          "[auth][token_cache]") {
  ManualClock clock;
  TokenCache cache(clock.fn());
  const CachedToken t1 = fetch(cache, "t1", 3600s);
  REQUIRE(cache.on_unauthorized(t1) == TokenCache::Unauthorized::retry);
  const CachedToken t2 = fetch(cache, "t2", 3600s);
  CHECK(cache.on_unauthorized(t2) == TokenCache::Unauthorized::give_up);
  CHECK(TokenCache::unauthorized_error().code == Errc::auth_unauthorized);
  // No refresh loop: later requests keep t2 (and fail fast on their 401) without fetching.
  for (int i = 0; i < 5; ++i) {
    CHECK(action(cache) == TokenCache::Acquire::use);
    CHECK(cache.on_unauthorized(t2) == TokenCache::Unauthorized::give_up);
  }
  CHECK(cache.fetches_started() == 2);
  // When t2 expires, a new cycle starts: a fresh token, which may be refreshed once again.
  clock.now += 3600s;
  const CachedToken t3 = fetch(cache, "t3", 3600s);
  CHECK(cache.on_unauthorized(t3) == TokenCache::Unauthorized::retry);
  const CachedToken t4 = fetch(cache, "t4", 3600s);
  CHECK(cache.on_unauthorized(t4) == TokenCache::Unauthorized::give_up);
  CHECK(cache.fetches_started() == 4);
}

TEST_CASE("A token that expires normally is not treated as refused", "[auth][token_cache]") {
  ManualClock clock;
  TokenCache cache(clock.fn());
  fetch(cache, "t1", 120s);
  clock.now += 120s;
  const CachedToken t2 = fetch(cache, "t2", 120s);  // a normal refresh, not after a 401
  CHECK(cache.on_unauthorized(t2) == TokenCache::Unauthorized::retry);
  const CachedToken t3 = fetch(cache, "t3", 120s);
  CHECK(cache.on_unauthorized(t3) == TokenCache::Unauthorized::give_up);
}

TEST_CASE("A 401 while a refresh is in flight marks that refresh as the replacement",
          "[auth][token_cache]") {
  ManualClock clock;
  TokenCache cache(clock.fn());
  const CachedToken t1 = fetch(cache, "t1", 600s);
  clock.now += 560s;
  REQUIRE(action(cache) == TokenCache::Acquire::fetch);  // a routine refresh starts
  CHECK(cache.on_unauthorized(t1) == TokenCache::Unauthorized::retry);
  CHECK(action(cache) == TokenCache::Acquire::wait);  // t1 is stale: wait, do not use it
  complete(cache, "t2", 600s);
  const CachedToken t2 = cache.current().value();
  CHECK(cache.on_unauthorized(t2) == TokenCache::Unauthorized::give_up);
  CHECK(cache.fetches_started() == 2);
}
