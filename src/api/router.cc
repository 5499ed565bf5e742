#include "api/router.h"

#include <fmt/format.h>

#include <boost/url/pct_string_view.hpp>

namespace argon::api {

namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool valid_id(std::string_view s) {
  if (s.empty() || s.size() > 60) return false;
  return s.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string_view::npos;
}

}  // namespace

void Router::add(std::string method, std::string_view pattern, int route) {
  routes_.push_back(Route{std::move(method), split_path(pattern), route});
}

Router::Match Router::match(std::string_view method, std::string_view encoded_path) const {
  const auto segments = split_path(encoded_path);
  Match out;
  for (const auto& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> caps;
    bool ok = true;
    for (size_t i = 0; i < segments.size() && ok; ++i) {
      const auto& pat = route.segments[i];
      if (pat.front() == '{') {
        auto decoded = boost::urls::make_pct_string_view(segments[i]);
        ok = decoded.has_value();
        if (ok) caps[pat.substr(1, pat.size() - 2)] = decoded->decode();
      } else {
        ok = pat == segments[i];
      }
    }
    if (!ok) continue;
    out.path_known = true;
    if (route.method == method) {
      out.route = route.id;
      out.captures = std::move(caps);
      return out;
    }
  }
  return out;
}

Status Router::check_captures(const std::map<std::string, std::string>& captures) {
  for (const auto& [name, value] : captures) {
    const bool is_name = name == "role_name" || name == "database_name";
    if (!is_name && name != "key_id" && name != "operation_id" && !valid_id(value)) {
      return fail(ErrorCode::kNotFound,
                  fmt::format("{} '{}' not found", name, value.substr(0, 64)));
    }
    if (is_name && (value.empty() || value.size() > 63)) {
      return fail(ErrorCode::kNotFound, fmt::format("{} not found", name));
    }
  }
  return {};
}

}  // namespace argon::api
