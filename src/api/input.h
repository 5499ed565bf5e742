// Typed, validated reads from a JSON request body. Every error names the field by its full path
// ("branch.name: ...") and says what is expected, as Neon-shaped 400s.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "api/http_types.h"
#include "common/error.h"

namespace argon::api {

// Parses the body as a JSON object. An empty body is an empty object (clients send body-less POSTs
// with any Content-Type). Depth and size are bounded by the parser and the HTTP layer.
Result<boost::json::object> parse_body(const HttpRequest& req);

// A query (or path) parameter that must be a decimal integer in [min, max]; nullopt when absent.
Result<std::optional<int64_t>> parse_int_param(const std::optional<std::string>& value,
                                               std::string_view name, int64_t min, int64_t max);
// A pagination cursor this server issued: `prefix` then a number. Absent or empty = the start (0).
Result<int64_t> parse_cursor(const std::optional<std::string>& value, std::string_view prefix = "");

class Fields {
 public:
  // `obj` may be null (the enclosing key was absent): every read then yields nullopt.
  Fields(const boost::json::object* obj, std::string prefix)
      : obj_(obj), prefix_(std::move(prefix)) {}

  bool has(std::string_view key) const;
  std::string path(std::string_view key) const;

  Result<std::optional<std::string>> string(std::string_view key, size_t min_len = 0,
                                            size_t max_len = 256) const;
  Result<std::optional<bool>> boolean(std::string_view key) const;
  Result<std::optional<int64_t>> integer(std::string_view key, int64_t min, int64_t max) const;
  Result<std::optional<double>> number(std::string_view key, double min, double max) const;
  // RFC 3339 time (ms since the epoch); outer nullopt = absent, inner nullopt = explicit null.
  Result<std::optional<std::optional<int64_t>>> time_or_null(std::string_view key) const;
  // A nested object; error if present and not an object. Absent or null gives Fields(nullptr).
  Result<Fields> object(std::string_view key) const;
  Result<const boost::json::array*> array(std::string_view key) const;
  // A JSON object kept as serialized text (settings blobs).
  Result<std::optional<std::string>> object_text(std::string_view key) const;

  const boost::json::object* raw() const { return obj_; }

 private:
  const boost::json::value* get(std::string_view key) const;
  const boost::json::object* obj_;
  std::string prefix_;
};

}  // namespace argon::api
