// Error values for expected failures. Every fallible function returns Result<T>; the code is mapped
// once (error.cc) to an HTTP status and Neon error code for the API, and later to a SQLSTATE for the
// proxy. `message` is shown to the user and must say what to do; `detail` is for logs only.
#pragma once

#include <expected>
#include <string>
#include <utility>

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
  kUnavailable,         // not ready yet / shutting down; safe to retry
  kInternal,            // a bug or an environment failure (disk, process)
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

template <typename T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(ErrorCode code, std::string message, std::string detail = {}) {
  return std::unexpected(Error(code, std::move(message), std::move(detail)));
}

// The one table mapping codes to the API's answer.
int http_status(ErrorCode code);
std::string_view default_neon_code(ErrorCode code);
std::string_view to_string(ErrorCode code);

}  // namespace argon
