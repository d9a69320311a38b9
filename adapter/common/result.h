// Result<T>: a value or an Error. Expected failures travel as values on the hot path; exceptions
// are reserved for startup (configuration) and genuine bugs.
//
//   Result<Message> m = Message::parse(bytes);
//   if (!m) return reject(m.error());          // m.error().where names the place: "OBX[4]-5.1"
//   use(*m);
#pragma once

#include <cassert>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "common/errc.h"

namespace adapter {

struct Error {
  Errc code = Errc::internal;
  std::string message;  // what is wrong, for a person; may quote input, so never logged by default
  std::string where;    // where it is: an HL7 path ("OBX[4]-5.1"), "file:line:col", a JSON pointer

  std::string to_string() const { return where.empty() ? message : where + ": " + message; }
};

template <class T, class E = Error>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(E error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const E& error() const& {
    assert(!ok());
    return std::get<1>(v_);
  }
  E&& error() && {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, E> v_;
};

// Status: success or an Error.
template <class E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  Result(E error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const E& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  E error_{};
  bool ok_ = true;
};

using Status = Result<void>;

inline Error make_error(Errc code, std::string message, std::string where = {}) {
  return Error{code, std::move(message), std::move(where)};
}

}  // namespace adapter
