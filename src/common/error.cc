#include "common/error.h"

namespace argon {
namespace {

struct Mapping {
  ErrorCode code;
  int status;
  std::string_view neon_code;
  std::string_view name;
  std::string_view sqlstate;  // what the proxy answers a client with
};

constexpr Mapping kMappings[] = {
    {ErrorCode::kBadRequest, 400, "BAD_REQUEST", "bad_request", "08P01"},
    {ErrorCode::kUnauthorized, 401, "UNAUTHORIZED", "unauthorized", "28P01"},
    {ErrorCode::kForbidden, 403, "FORBIDDEN", "forbidden", "28000"},
    {ErrorCode::kNotFound, 404, "NOT_FOUND", "not_found", "08004"},
    {ErrorCode::kConflict, 409, "CONFLICT", "conflict", "55000"},
    {ErrorCode::kLocked, 423, "LOCKED", "locked", "55P03"},
    {ErrorCode::kPreconditionFailed, 412, "PRECONDITION_FAILED", "precondition_failed", "55000"},
    {ErrorCode::kLimitExceeded, 422, "LIMIT_EXCEEDED", "limit_exceeded", "53300"},
    {ErrorCode::kPayloadTooLarge, 413, "PAYLOAD_TOO_LARGE", "payload_too_large", "08P01"},
    {ErrorCode::kUnavailable, 503, "SERVICE_UNAVAILABLE", "unavailable", "57P03"},
    {ErrorCode::kInternal, 500, "INTERNAL_ERROR", "internal", "XX000"},
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
std::string_view default_sqlstate(ErrorCode code) { return lookup(code).sqlstate; }

}  // namespace argon
