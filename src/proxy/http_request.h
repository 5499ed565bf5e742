// What a SQL-over-HTTP request says, before anything is done with it: the connection string of
// the `Neon-Connection-String` header (role, password, database, endpoint) and the JSON body (one
// query `{query, params}` or a batch `{queries: [...]}`), with parameters turned into the text
// PostgreSQL gets as Neon's proxy turns them (arrays as array literals, objects as JSON). Pure
// functions of their input, each error a message for the client; the fuzz target
// tests/fuzz/http_request_fuzz.cc feeds them anything.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace argon::proxy {

struct HttpStatement {
  std::string sql;
  std::vector<std::optional<std::string>> params;  // text; std::nullopt is NULL
};

struct ConnInfo {
  std::string user;
  std::string password;
  std::string database;
  std::string endpoint_id;
};

// The most a request's headers may take (more is 431).
inline constexpr std::size_t kMaxRequestHeader = 16 * 1024;

// The host that names the endpoint of a WebSocket tunnel when TLS sent no SNI: the `address`
// parameter of the request target (`?address=<host>:<port>`, from a string wsProxy), else the
// Host header; without the port.
std::string tunnel_host(std::string_view target, std::string_view host_header);

// `postgresql://role:password@<endpoint>.<host>/db[?options=endpoint%3D<id>]`.
Result<ConnInfo> parse_connection_string(std::string_view text);

struct Body {
  std::vector<HttpStatement> statements;
  bool batch = false;
};

Result<Body> parse_body(std::string_view text);

}  // namespace argon::proxy
