// Status and Result<T>: how every Stria function reports failure (public).
//
// A Status is an errno value (0 = OK) plus a message that names the thing and
// the cause. errno is the one code set shared by the wire (Error.errno_code),
// the client library and the FUSE layer, so no translation table is needed.
// Status and Result are plain values: safe to copy and move between threads.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace stria {

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(int code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == 0; }
  int code() const { return code_; }             // a POSIX errno, 0 when ok
  const std::string& message() const { return message_; }
  // Lets code treat a Status and a Result alike (r.status()).
  const Status& status() const { return *this; }
  // "ENOENT: /a/b: no such entry" style text for logs and the CLI.
  std::string ToString() const;
  // True for failures a retry may cure (timeouts, lost connections). An
  // answer such as EAGAIN (a lock held by another) is not one.
  bool retryable() const;

  // Adds context in front of the message ("open /x: " + message).
  Status Prefixed(const std::string& context) const {
    return ok() ? *this : Status(code_, context + ": " + message_);
  }

 private:
  int code_ = 0;
  std::string message_;
};

template <typename... Args>
Status Err(int code, fmt::format_string<Args...> f, Args&&... args) {
  return Status(code, fmt::format(f, std::forward<Args>(args)...));
}

// The symbolic name of an errno value ("ENOENT"), or "E<number>".
const char* ErrnoName(int code);

// Result<T>: a T or a failed Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Status status) : v_(std::move(status)) {}

  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace stria

// Returns early from a function returning Status or Result<T>.
#define STRIA_RETURN_IF_ERROR(expr)            \
  do {                                         \
    ::stria::Status _st = (expr);              \
    if (!_st.ok()) return _st;                 \
  } while (0)

#define STRIA_CONCAT_INNER(a, b) a##b
#define STRIA_CONCAT(a, b) STRIA_CONCAT_INNER(a, b)
#define STRIA_ASSIGN_OR_RETURN(lhs, expr) \
  STRIA_ASSIGN_OR_RETURN_IMPL(STRIA_CONCAT(_res_, __LINE__), lhs, expr)
#define STRIA_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
