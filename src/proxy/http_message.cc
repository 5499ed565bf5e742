#include "proxy/http_message.h"

#include <fmt/format.h>

#include <boost/beast/http/status.hpp>
#include <boost/json/serialize.hpp>

namespace argon::proxy {

namespace json = boost::json;

namespace {

json::value or_null(const std::string& s) {
  if (s.empty()) return nullptr;
  return json::string(s);
}

json::value other(const pgwire::ErrorFields& e, char code) {
  auto it = e.other.find(code);
  return it == e.other.end() ? json::value(nullptr) : json::value(json::string(it->second));
}

}  // namespace

std::string serialize(const HttpAnswer& a, bool keep_alive) {
  const auto status = static_cast<boost::beast::http::status>(a.status);
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", a.status,
                                std::string_view(boost::beast::http::obsolete_reason(status)));
  out += fmt::format("Content-Type: {}\r\nContent-Length: {}\r\n", a.content_type, a.body.size());
  out += "Access-Control-Allow-Origin: *\r\n";
  for (const auto& [name, value] : a.headers) out += fmt::format("{}: {}\r\n", name, value);
  out += keep_alive && !a.close ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  out += "\r\n";
  out += a.body;
  return out;
}

json::object error_body(const pgwire::ErrorFields& e) {
  return json::object{{"message", e.message},           {"code", e.sqlstate},
                      {"detail", or_null(e.detail)},    {"hint", or_null(e.hint)},
                      {"position", other(e, 'P')},      {"internalPosition", other(e, 'p')},
                      {"internalQuery", other(e, 'q')}, {"severity", e.severity},
                      {"where", other(e, 'W')},         {"table", other(e, 't')},
                      {"column", other(e, 'c')},        {"schema", other(e, 's')},
                      {"dataType", other(e, 'd')},      {"constraint", other(e, 'n')},
                      {"file", other(e, 'F')},          {"line", other(e, 'L')},
                      {"routine", other(e, 'R')}};
}

HttpAnswer http_error(int status, std::string message, std::string sqlstate, std::string severity) {
  pgwire::ErrorFields f;
  f.message = std::move(message);
  f.sqlstate = std::move(sqlstate);
  f.severity = std::move(severity);
  return HttpAnswer{status, json::serialize(error_body(f)), "application/json", {}, false};
}

HttpAnswer http_error(const Error& e) {
  switch (e.code) {
    case ErrorCode::kUnavailable:
      return http_error(503, e.message);
    case ErrorCode::kInternal:
      return http_error(500, e.message);
    default:
      return http_error(400, e.message);
  }
}

}  // namespace argon::proxy
