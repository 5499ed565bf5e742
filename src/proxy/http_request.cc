#include "proxy/http_request.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include "proxy/endpoint_hint.h"

namespace argon::proxy {

namespace json = boost::json;

namespace {

// An array parameter as a PostgreSQL array literal, as Neon converts one.
void append_array_literal(std::string& out, const json::array& a) {
  out += '{';
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (i) out += ',';
    const json::value& v = a[i];
    if (v.is_null()) {
      out += "NULL";
    } else if (v.is_array()) {
      append_array_literal(out, v.as_array());
    } else {
      const std::string text = v.is_string() ? std::string(v.as_string()) : json::serialize(v);
      out += '"';
      for (char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      out += '"';
    }
  }
  out += '}';
}

// A parameter as text: strings as they are (what the driver sends), null as NULL, booleans and
// numbers as their JSON text, arrays as array literals, objects as JSON.
std::optional<std::string> param_text(const json::value& v) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_array()) {
    std::string out;
    append_array_literal(out, v.as_array());
    return out;
  }
  return json::serialize(v);
}

Result<HttpStatement> parse_statement(const json::value& v) {
  const json::object* o = v.if_object();
  const json::value* query = o ? o->if_contains("query") : nullptr;
  if (!query || !query->is_string()) {
    return fail(ErrorCode::kBadRequest,
                "could not parse the HTTP request body: each query is an object with a \"query\" "
                "string and an optional \"params\" array");
  }
  HttpStatement s;
  s.sql = query->as_string();
  if (const json::value* params = o->if_contains("params"); params && !params->is_null()) {
    if (!params->is_array()) {
      return fail(ErrorCode::kBadRequest,
                  "could not parse the HTTP request body: \"params\" must be an array");
    }
    for (const auto& p : params->as_array()) s.params.push_back(param_text(p));
  }
  return s;
}

}  // namespace

std::string tunnel_host(std::string_view target, std::string_view host_header) {
  std::string_view host = host_header;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      const std::string_view pair = query.substr(0, query.find('&'));
      if (pair.starts_with("address=")) host = pair.substr(8);
      query.remove_prefix(std::min(query.size(), pair.size() + 1));
    }
  }
  if (host.starts_with('[')) return std::string(host.substr(0, host.find(']') + 1));
  return std::string(host.substr(0, host.find(':')));
}

Result<ConnInfo> parse_connection_string(std::string_view text) {
  if (text.empty()) {
    return fail(ErrorCode::kBadRequest,
                "invalid header: neon-connection-string is missing; send the connection string "
                "Argon's API returned (postgresql://role:password@ep-….<proxy host>/db)");
  }
  auto url = boost::urls::parse_uri(text);
  if (!url) {
    return fail(ErrorCode::kBadRequest,
                "invalid header: neon-connection-string is not a postgresql:// URL");
  }
  if (url->scheme() != "postgres" && url->scheme() != "postgresql") {
    return fail(ErrorCode::kBadRequest, "incorrect scheme: use postgresql://");
  }
  ConnInfo info;
  info.user = url->user();
  if (info.user.empty()) return fail(ErrorCode::kBadRequest, "missing username");
  if (!url->has_password() || url->password().empty()) {
    return fail(ErrorCode::kBadRequest, "missing authentication credentials: required password");
  }
  info.password = url->password();
  auto segments = url->segments();
  if (segments.empty() || (*segments.begin()).empty()) {
    return fail(ErrorCode::kBadRequest, "missing database name");
  }
  info.database = *segments.begin();
  std::string host;
  if (url->host_type() == boost::urls::host_type::name) host = url->host();
  std::string options;
  // Boost.URL 1.81 walks past the end of an empty query followed by a fragment (`db?#x`) when its
  // params are iterated: only a query with something in it is read.
  if (!url->encoded_query().empty()) {
    for (auto param : url->params()) {
      if (param.key == "options" && param.has_value) options = param.value;
    }
  }
  auto hint = resolve_endpoint_hint(host, options);
  if (!hint) return std::unexpected(hint.error());
  if (hint->endpoint_id.empty()) {
    return fail(ErrorCode::kBadRequest,
                "missing hostname: the connection string's host must be the endpoint's "
                "(ep-….<proxy host>), or add options=endpoint%3D<endpoint id>");
  }
  info.endpoint_id = std::move(hint->endpoint_id);
  return info;
}

Result<Body> parse_body(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("could not parse the HTTP request body: {}", ec.message()));
  }
  Body body;
  if (const json::object* o = v.if_object(); o && o->contains("queries")) {
    const json::value& q = o->at("queries");
    if (!q.is_array()) {
      return fail(ErrorCode::kBadRequest,
                  "could not parse the HTTP request body: \"queries\" must be an array");
    }
    body.batch = true;
    for (const auto& item : q.as_array()) {
      auto s = parse_statement(item);
      if (!s) return std::unexpected(s.error());
      body.statements.push_back(std::move(*s));
    }
    return body;
  }
  auto s = parse_statement(v);
  if (!s) return std::unexpected(s.error());
  body.statements.push_back(std::move(*s));
  return body;
}

}  // namespace argon::proxy
