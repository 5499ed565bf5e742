#include "api/input.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cmath>

#include "common/clock.h"

namespace argon::api {

namespace json = boost::json;

Result<json::object> parse_body(const HttpRequest& req) {
  std::string_view body = req.body;
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.front())))
    body.remove_prefix(1);
  if (body.empty()) return json::object{};
  // The Content-Type is not trusted either way: curl -d labels JSON as form data.
  json::parse_options opts;
  opts.max_depth = 32;
  std::error_code ec;
  json::value v = json::parse(body, ec, {}, opts);
  if (ec) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("request body is not valid JSON: {}", ec.message()));
  }
  if (!v.is_object()) return fail(ErrorCode::kBadRequest, "request body must be a JSON object");
  return std::move(v.as_object());
}

Result<std::optional<int64_t>> parse_int_param(const std::optional<std::string>& value,
                                               std::string_view name, int64_t min, int64_t max) {
  if (!value) return std::optional<int64_t>{};
  const std::string& v = *value;
  if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos ||
      std::stoll(v) < min || std::stoll(v) > max) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("{}: must be an integer between {} and {}", name, min, max));
  }
  return std::stoll(v);
}

Result<int64_t> parse_cursor(const std::optional<std::string>& value, std::string_view prefix) {
  if (!value || value->empty()) return 0;
  std::string_view v = *value;
  if (!v.starts_with(prefix) || v.size() == prefix.size() || v.size() > prefix.size() + 18 ||
      v.find_first_not_of("0123456789", prefix.size()) != std::string_view::npos) {
    return fail(ErrorCode::kBadRequest, "cursor: not a cursor this server returned");
  }
  return std::stoll(std::string(v.substr(prefix.size())));
}

bool Fields::has(std::string_view key) const { return obj_ && obj_->contains(key); }

std::string Fields::path(std::string_view key) const {
  return prefix_.empty() ? std::string(key) : fmt::format("{}.{}", prefix_, key);
}

const json::value* Fields::get(std::string_view key) const {
  if (!obj_) return nullptr;
  const json::value* v = obj_->if_contains(key);
  if (!v || v->is_null()) return nullptr;
  return v;
}

Result<std::optional<std::string>> Fields::string(std::string_view key, size_t min_len,
                                                  size_t max_len) const {
  const json::value* v = get(key);
  if (!v) return std::optional<std::string>{};
  if (!v->is_string()) {
    return fail(ErrorCode::kBadRequest, fmt::format("{}: must be a string", path(key)));
  }
  std::string s(v->as_string());
  if (s.size() < min_len || s.size() > max_len) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("{}: must be {} to {} characters long", path(key), min_len, max_len));
  }
  if (s.find('\0') != std::string::npos) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("{}: must not contain NUL characters", path(key)));
  }
  return s;
}

Result<std::optional<bool>> Fields::boolean(std::string_view key) const {
  const json::value* v = get(key);
  if (!v) return std::optional<bool>{};
  if (!v->is_bool())
    return fail(ErrorCode::kBadRequest, fmt::format("{}: must be true or false", path(key)));
  return v->as_bool();
}

Result<std::optional<int64_t>> Fields::integer(std::string_view key, int64_t min,
                                               int64_t max) const {
  const json::value* v = get(key);
  if (!v) return std::optional<int64_t>{};
  auto out_of_range = [&] {
    return fail(ErrorCode::kBadRequest,
                fmt::format("{}: must be between {} and {}", path(key), min, max));
  };
  int64_t n = 0;
  if (v->is_int64()) {
    n = v->as_int64();
  } else if (v->is_uint64()) {  // only above INT64_MAX: smaller ones parse as int64
    if (v->as_uint64() > static_cast<uint64_t>(INT64_MAX)) return out_of_range();
    n = static_cast<int64_t>(v->as_uint64());
  } else if (v->is_double() && std::trunc(v->as_double()) == v->as_double()) {  // 5.0, 1e3
    // Only doubles in [-2^63, 2^63) convert to int64_t; converting any other is undefined.
    if (!(v->as_double() >= -0x1p63 && v->as_double() < 0x1p63)) return out_of_range();
    n = static_cast<int64_t>(v->as_double());
  } else {
    return fail(ErrorCode::kBadRequest, fmt::format("{}: must be an integer", path(key)));
  }
  if (n < min || n > max) return out_of_range();
  return n;
}

Result<std::optional<double>> Fields::number(std::string_view key, double min, double max) const {
  const json::value* v = get(key);
  if (!v) return std::optional<double>{};
  if (!v->is_number())
    return fail(ErrorCode::kBadRequest, fmt::format("{}: must be a number", path(key)));
  double d = v->to_number<double>();
  if (!(d >= min && d <= max)) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("{}: must be between {} and {}", path(key), min, max));
  }
  return d;
}

Result<std::optional<std::optional<int64_t>>> Fields::time_or_null(std::string_view key) const {
  if (!obj_ || !obj_->contains(key)) return std::optional<std::optional<int64_t>>{};
  const json::value& v = obj_->at(key);
  if (v.is_null()) return std::optional<std::optional<int64_t>>{std::optional<int64_t>{}};
  if (!v.is_string()) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("{}: must be an RFC 3339 time such as 2030-01-01T00:00:00Z, or null",
                            path(key)));
  }
  auto t = parse_time(std::string_view(v.as_string()));
  if (!t) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("{}: '{}' is not an RFC 3339 time such as 2030-01-01T00:00:00Z",
                            path(key), std::string_view(v.as_string()).substr(0, 64)));
  }
  return std::optional<std::optional<int64_t>>{std::optional<int64_t>{*t * 1000}};
}

Result<Fields> Fields::object(std::string_view key) const {
  const json::value* v = get(key);
  if (!v) return Fields(nullptr, path(key));
  if (!v->is_object())
    return fail(ErrorCode::kBadRequest, fmt::format("{}: must be an object", path(key)));
  return Fields(&v->as_object(), path(key));
}

Result<const json::array*> Fields::array(std::string_view key) const {
  const json::value* v = get(key);
  if (!v) return static_cast<const json::array*>(nullptr);
  if (!v->is_array())
    return fail(ErrorCode::kBadRequest, fmt::format("{}: must be an array", path(key)));
  return &v->as_array();
}

Result<std::optional<std::string>> Fields::object_text(std::string_view key) const {
  const json::value* v = get(key);
  if (!v) return std::optional<std::string>{};
  if (!v->is_object())
    return fail(ErrorCode::kBadRequest, fmt::format("{}: must be an object", path(key)));
  return json::serialize(*v);
}

}  // namespace argon::api
