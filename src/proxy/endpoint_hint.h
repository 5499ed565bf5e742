// Which endpoint a client wants, from what it sent before authenticating (ARCHITECTURE.md §5), in
// order: the TLS SNI host name's first label (`ep-…`, a `-pooler` suffix allowed), the startup
// `options` value `endpoint=<id>` (or `--endpoint=<id>`), or, when neither is there, the password
// prefix `endpoint=<id>;<password>` (or `$` as separator). Pure string logic.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "common/error.h"

namespace argon::proxy {

struct EndpointHint {
  std::string endpoint_id;        // empty: ask for the password form
  std::string remaining_options;  // `options` without the endpoint part, for the compute
};

Result<EndpointHint> resolve_endpoint_hint(std::string_view sni, std::string_view options);

// Splits "endpoint=<id>;<password>" / "endpoint=<id>$<password>" into id and password.
Result<std::pair<std::string, std::string>> split_endpoint_password(std::string_view password);

}  // namespace argon::proxy
