// What a SQL-over-HTTP request says, before anything is done with it: the connection string of
// the `Neon-Connection-String` header (role, password, database, endpoint) and the JSON body (one
// query `{query, params}` or a batch `{queries: [...]}`), with parameters turned into the text
// PostgreSQL gets as Neon's proxy turns them (arrays as array literals, objects as JSON). Pure
// functions of their input, each error a message for the client; the fuzz target
// tests/fuzz/http_request_fuzz.cc feeds them anything.
#pragma once

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

// `postgresql://role:password@<endpoint>.<host>/db[?options=endpoint%3D<id>]`.
Result<ConnInfo> parse_connection_string(std::string_view text);

struct Body {
  std::vector<HttpStatement> statements;
  bool batch = false;
};

Result<Body> parse_body(std::string_view text);

}  // namespace argon::proxy
