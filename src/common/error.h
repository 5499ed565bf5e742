// Error values for expected failures. Every fallible function returns Result<T>; the code is mapped
// once (error.cc) to an HTTP status and Neon error code for the API, and to a SQLSTATE for the
// proxy. `message` is shown to the user and must say what to do; `detail` is for logs only.
#pragma once

#include <expected>
#include <string>
#include <utility>

// Assigns the value of a Result expression or returns its error from the enclosing function.
#define ARGON_CONCAT_INNER(a, b) a##b
#define ARGON_CONCAT(a, b) ARGON_CONCAT_INNER(a, b)
#define ARGON_ASSIGN_OR_RETURN(lhs, expr)                                   \
  auto ARGON_CONCAT(_r_, __LINE__) = (expr);                                \
  if (!ARGON_CONCAT(_r_, __LINE__)) {                                       \
    return std::unexpected(std::move(ARGON_CONCAT(_r_, __LINE__).error())); \
  }                                                                         \
  lhs = std::move(*ARGON_CONCAT(_r_, __LINE__))
#define ARGON_RETURN_IF_ERROR(expr)                           \
  do {                                                        \
    auto _st = (expr);                                        \
    if (!_st) return std::unexpected(std::move(_st.error())); \
  } while (0)

namespace argon {

enum class ErrorCode {
  kBadRequest,          // malformed or invalid input
  kUnauthorized,        // missing or wrong API key
  kForbidden,           // authenticated but not allowed
  kNotFound,            // unknown id or name
  kConflict,            // state does not allow it (protected, has children, duplicate name)
  kLocked,              // another operation holds the resource; safe to retry
  kPreconditionFailed,  // e.g. reveal_password with store_passwords=false
  kLimitExceeded,       // a per-project limit
  kPayloadTooLarge,
  kUnavailable,  // not ready yet / shutting down; safe to retry
  kInternal,     // a bug or an environment failure (disk, process)
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::string detail;     // internal; never sent to clients
  std::string neon_code;  // overrides the default Neon `code` string when set

  Error() = default;
  Error(ErrorCode c, std::string msg, std::string det = {}, std::string neon = {})
      : code(c), message(std::move(msg)), detail(std::move(det)), neon_code(std::move(neon)) {}
};

// std::expected that may not be dropped: a caller handles the error, returns it, or says in a
// comment why ignoring it is right and casts to (void).
template <typename T>
class [[nodiscard]] Result : public std::expected<T, Error> {
 public:
  using std::expected<T, Error>::expected;
  Result(const std::expected<T, Error>& e)
      : std::expected<T, Error>(e) {}  // NOLINT: implicit on purpose
  Result(std::expected<T, Error>&& e) : std::expected<T, Error>(std::move(e)) {}  // NOLINT
};
using Status = Result<void>;

inline std::unexpected<Error> fail(ErrorCode code, std::string message, std::string detail = {}) {
  return std::unexpected(Error(code, std::move(message), std::move(detail)));
}

// The one table mapping codes to the API's answer.
int http_status(ErrorCode code);
std::string_view default_neon_code(ErrorCode code);
std::string_view to_string(ErrorCode code);
// The SQLSTATE the proxy sends in an ErrorResponse for this code (08P01 protocol violation, 28P01
// bad password, 28000 not allowed, 08004 unknown endpoint, 57P03 cannot connect now, ...).
std::string_view default_sqlstate(ErrorCode code);

}  // namespace argon
