#include "common/error.h"

namespace argon {
namespace {

struct Mapping {
  ErrorCode code;
  int status;
  std::string_view neon_code;
  std::string_view name;
};

constexpr Mapping kMappings[] = {
    {ErrorCode::kBadRequest, 400, "BAD_REQUEST", "bad_request"},
    {ErrorCode::kUnauthorized, 401, "UNAUTHORIZED", "unauthorized"},
    {ErrorCode::kForbidden, 403, "FORBIDDEN", "forbidden"},
    {ErrorCode::kNotFound, 404, "NOT_FOUND", "not_found"},
    {ErrorCode::kConflict, 409, "CONFLICT", "conflict"},
    {ErrorCode::kLocked, 423, "LOCKED", "locked"},
    {ErrorCode::kPreconditionFailed, 412, "PRECONDITION_FAILED", "precondition_failed"},
    {ErrorCode::kLimitExceeded, 422, "LIMIT_EXCEEDED", "limit_exceeded"},
    {ErrorCode::kPayloadTooLarge, 413, "PAYLOAD_TOO_LARGE", "payload_too_large"},
    {ErrorCode::kUnavailable, 503, "SERVICE_UNAVAILABLE", "unavailable"},
    {ErrorCode::kInternal, 500, "INTERNAL_ERROR", "internal"},
};

const Mapping& lookup(ErrorCode code) {
  for (const auto& m : kMappings) {
    if (m.code == code) return m;
  }
  return kMappings[std::size(kMappings) - 1];
}

}  // namespace

int http_status(ErrorCode code) { return lookup(code).status; }
std::string_view default_neon_code(ErrorCode code) { return lookup(code).neon_code; }
std::string_view to_string(ErrorCode code) { return lookup(code).name; }

}  // namespace argon
