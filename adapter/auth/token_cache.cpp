#include "auth/token_cache.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace adapter::auth {

TokenCache::TokenCache(Clock clock, TokenCachePolicy policy)
    : clock_(std::move(clock)), policy_(policy) {}

Error TokenCache::unauthorized_error() {
  return make_error(Errc::auth_unauthorized,
                    "the server answered 401 to a token fetched after a previous 401; check the "
                    "client's registration and scopes on the server");
}

std::optional<CachedToken> TokenCache::current() const {
  if (!token_ || stale_) return std::nullopt;
  const TimePoint now = clock_();
  if (now < refresh_at_) return token_;
  // In the refresh margin: keep using the old token while its replacement is being fetched.
  if (fetch_in_progress_ && now < expires_at_) return token_;
  return std::nullopt;
}

TokenCache::Acquisition TokenCache::acquire(Waiter waiter) {
  if (std::optional<CachedToken> token = current()) return {Acquire::use, std::move(*token)};
  waiters_.push_back(std::move(waiter));
  if (fetch_in_progress_) return {Acquire::wait, {}};
  fetch_in_progress_ = true;
  fetch_after_unauthorized_ = stale_;
  fetch_started_at_ = clock_();
  ++fetches_started_;
  return {Acquire::fetch, {}};
}

TokenCache::Fetched TokenCache::on_fetched(std::string token, std::chrono::seconds expires_in) {
  assert(fetch_in_progress_);
  fetch_in_progress_ = false;
  const auto lifetime = std::max(expires_in, std::chrono::seconds(0));
  const auto share = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::duration<double>(
      static_cast<double>(lifetime.count()) * policy_.refresh_fraction));
  const auto margin = std::min(policy_.refresh_margin, share);
  token_ = CachedToken{std::move(token), ++generation_};
  expires_at_ = fetch_started_at_ + lifetime;
  refresh_at_ = expires_at_ - margin;
  stale_ = false;
  token_after_unauthorized_ = fetch_after_unauthorized_;
  fetch_after_unauthorized_ = false;
  return {*token_, std::exchange(waiters_, {})};
}

std::vector<TokenCache::Waiter> TokenCache::on_fetch_failed() {
  assert(fetch_in_progress_);
  fetch_in_progress_ = false;
  fetch_after_unauthorized_ = false;
  return std::exchange(waiters_, {});
}

TokenCache::Unauthorized TokenCache::on_unauthorized(const CachedToken& used) {
  // An older token than the cached one: a newer token exists (or is being fetched); resend.
  if (!token_ || used.generation != token_->generation) return Unauthorized::retry;
  // The token that replaced a refused one is refused too: a real failure, not a reason to loop.
  if (token_after_unauthorized_) return Unauthorized::give_up;
  stale_ = true;
  // A refresh may already be in flight (the token was in its refresh margin): its result is now
  // the token that replaces a refused one.
  if (fetch_in_progress_) fetch_after_unauthorized_ = true;
  return Unauthorized::retry;
}

}  // namespace adapter::auth
