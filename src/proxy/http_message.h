// The HTTP side of the proxy's data plane: answers and the JSON error bodies that Neon's proxy
// gives @neondatabase/serverless. The driver reads an error's fields (`code` and the rest) only
// from a 400 with a JSON body, so every error is JSON, with every key present (null when absent).
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/object.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"
#include "pgwire/messages.h"

namespace argon::proxy {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

struct HttpAnswer {
  int status = 200;
  std::string body;  // JSON unless content_type says otherwise
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // close the connection after this answer
};

// The answer's bytes, with Content-Length, CORS and Connection headers.
std::string serialize(const HttpAnswer& answer, bool keep_alive);

// A JSON error body from PostgreSQL's fields: message, code, detail, hint, position,
// internalPosition, internalQuery, severity, where, table, column, schema, dataType, constraint,
// file, line, routine.
boost::json::object error_body(const pgwire::ErrorFields& e);
// An error of the proxy's own: `message`, with code and severity "" unless given.
HttpAnswer http_error(int status, std::string message, std::string sqlstate = "",
                      std::string severity = "");
// An Error as an answer: 400 for what the client can fix (and for what a login would refuse), 503
// when the endpoint is unavailable for now, 500 for the rest.
HttpAnswer http_error(const Error& e);

}  // namespace argon::proxy
