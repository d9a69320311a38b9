// The life of a bearer token, as a small state machine with an injected clock and no I/O:
// when to use the cached token, when to fetch a new one, what a 401 means, and who waits for a
// fetch already in flight.
//
//   TokenCache cache(clock);
//   TokenCache::Acquisition a = cache.acquire(waiter);  // waiter: void(const Result<CachedToken>&)
//   switch (a.action) {
//     case TokenCache::Acquire::use:   send(a.token); break;
//     case TokenCache::Acquire::fetch: start_fetch(); break;   // waiter runs when it ends
//     case TokenCache::Acquire::wait:  break;                  // waiter runs when it ends
//   }
//   // the fetch ends:  auto done = cache.on_fetched(token, expires_in);
//   //                  for (auto& w : done.waiters) post(w, done.token)
//   // or fails:        for (auto& w : cache.on_fetch_failed()) post(w, error)
//   // the server answers 401:  cache.on_unauthorized(token_used) says retry or give up
//
// Rules:
//  - A token is used until `expires_at - margin`, margin = min(refresh_margin,
//    refresh_fraction * lifetime); the lifetime counts from when the fetch started, so time spent
//    waiting for the token endpoint does not stretch it.
//  - One fetch at a time: callers arriving while a fetch is in flight wait for its result (or,
//    if the old token has not expired yet and only its refresh margin has started, keep using it).
//  - A 401 makes the token stale and asks for one new fetch. If the token that gets a 401 was
//    itself fetched because of a 401, the answer is give_up (Errc::auth_unauthorized): the server
//    refuses fresh tokens, and fetching again would loop. That token stays cached until it
//    expires, so later deliveries fail fast instead of hammering the token endpoint; after it
//    expires the next fetch starts a new cycle. A caller resends one request at most once after a
//    401.
//
// Thread-safety: none. The owner serialises every call (run them on one strand); waiters are
// returned, never called from inside, so they can be posted back to the owner's executor.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace adapter::auth {

struct CachedToken {
  std::string value;             // never logged
  std::uint64_t generation = 0;  // which fetch produced it (1, 2, ...): identifies it in a 401
};

struct TokenCachePolicy {
  // Refresh this long before expiry...
  std::chrono::seconds refresh_margin{60};
  // ...or this share of the token's lifetime before expiry, whichever is smaller (a fixed 60 s
  // margin would make a 60 s token useless).
  double refresh_fraction = 0.1;
};

class TokenCache {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  using Waiter = std::function<void(const Result<CachedToken>&)>;

  explicit TokenCache(Clock clock, TokenCachePolicy policy = {});

  enum class Acquire {
    use,    // current() holds a usable token; the waiter was not kept
    fetch,  // the caller must fetch now and report with on_fetched / on_fetch_failed; waiter queued
    wait,   // a fetch is in flight; the waiter is queued for its result
  };
  struct Acquisition {
    Acquire action;
    CachedToken token;  // the token to send, when action == use
  };
  Acquisition acquire(Waiter waiter);

  // The token to send now, or nullopt when a fetch is needed (acquire() starts it).
  std::optional<CachedToken> current() const;

  // The fetch started by Acquire::fetch succeeded. Stores the token and hands back every queued
  // waiter with it; the caller chooses where the waiters run.
  struct Fetched {
    CachedToken token;
    std::vector<Waiter> waiters;
  };
  Fetched on_fetched(std::string token, std::chrono::seconds expires_in);

  // The fetch failed. Hands back the waiters to be called with the error; the next acquire()
  // starts a new fetch (the delivery backoff paces it).
  std::vector<Waiter> on_fetch_failed();

  enum class Unauthorized {
    retry,    // acquire() again and resend once (a fetch is needed or a newer token exists)
    give_up,  // a token fetched after a 401 was refused too: fail with Errc::auth_unauthorized
  };
  Unauthorized on_unauthorized(const CachedToken& used);

  bool fetch_in_progress() const { return fetch_in_progress_; }
  std::size_t waiting() const { return waiters_.size(); }
  std::uint64_t fetches_started() const { return fetches_started_; }

  // The error a give_up turns into.
  static Error unauthorized_error();

 private:
  using TimePoint = std::chrono::steady_clock::time_point;

  Clock clock_;
  TokenCachePolicy policy_;

  std::optional<CachedToken> token_;
  std::uint64_t generation_ = 0;
  TimePoint refresh_at_{};                 // use the token before this...
  TimePoint expires_at_{};                 // ...and, while a refresh is in flight, until this
  bool stale_ = false;                     // a 401 was seen with token_
  bool token_after_unauthorized_ = false;  // token_ was fetched because its predecessor got a 401

  bool fetch_in_progress_ = false;
  bool fetch_after_unauthorized_ = false;  // the fetch in flight replaces a token that got a 401
  TimePoint fetch_started_at_{};
  std::uint64_t fetches_started_ = 0;
  std::vector<Waiter> waiters_;
};

}  // namespace adapter::auth
