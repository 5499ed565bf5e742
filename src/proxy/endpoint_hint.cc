#include "proxy/endpoint_hint.h"

#include <fmt/format.h>

#include <vector>

namespace argon::proxy {

namespace {

constexpr std::size_t kMaxEndpointIdLength = 64;

bool valid_endpoint_id(std::string_view id) {
  if (!id.starts_with("ep-") || id.size() > kMaxEndpointIdLength) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

Result<std::string> checked(std::string_view id, std::string_view where) {
  if (!valid_endpoint_id(id)) {
    return fail(
        ErrorCode::kNotFound,
        fmt::format(
            "\"{}\" from the {} is not an endpoint id (they look like ep-cool-darkness-12345678)",
            id.substr(0, kMaxEndpointIdLength), where));
  }
  return std::string(id);
}

// Splits libpq's `options` the way PostgreSQL does: whitespace separates, a backslash escapes the
// next character. Tokens keep their escapes so the rest can be passed on unchanged.
std::vector<std::string> split_options(std::string_view options) {
  std::vector<std::string> out;
  std::string cur;
  for (std::size_t i = 0; i < options.size(); ++i) {
    char c = options[i];
    if (c == '\\' && i + 1 < options.size()) {
      cur += c;
      cur += options[++i];
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

}  // namespace

Result<EndpointHint> resolve_endpoint_hint(std::string_view sni, std::string_view options) {
  EndpointHint hint;
  std::string from_sni;
  if (!sni.empty()) {
    auto label = sni.substr(0, sni.find('.'));
    if (label.starts_with("ep-")) {
      if (label.ends_with("-pooler")) label.remove_suffix(7);
      ARGON_ASSIGN_OR_RETURN(from_sni, checked(label, "TLS server name"));
    }
  }
  std::string from_options;
  std::string rest;
  for (const auto& token : split_options(options)) {
    std::string_view t = token;
    if (t.starts_with("--")) t.remove_prefix(2);
    if (t.starts_with("endpoint=")) {
      std::string id;
      ARGON_ASSIGN_OR_RETURN(id, checked(t.substr(9), "options parameter"));
      if (!from_options.empty() && from_options != id) {
        return fail(ErrorCode::kBadRequest, "the options parameter names two different endpoints");
      }
      from_options = std::move(id);
      continue;
    }
    if (!rest.empty()) rest += ' ';
    rest += token;
  }
  if (!from_sni.empty() && !from_options.empty() && from_sni != from_options) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("the host name names endpoint {} but options name endpoint {}; use one",
                            from_sni, from_options));
  }
  hint.endpoint_id = !from_sni.empty() ? from_sni : from_options;
  hint.remaining_options = std::move(rest);
  return hint;
}

Result<std::pair<std::string, std::string>> split_endpoint_password(std::string_view password) {
  constexpr std::string_view kPrefix = "endpoint=";
  auto sep = password.find_first_of(";$");
  if (!password.starts_with(kPrefix) || sep == std::string_view::npos) {
    return fail(
        ErrorCode::kNotFound,
        "could not tell which endpoint to connect to: use the endpoint's host name "
        "(ep-….<proxy host>, with sslmode=require), add options=endpoint%3D<endpoint id> to the "
        "connection string, or send the password as endpoint=<endpoint id>;<password>");
  }
  std::string id;
  ARGON_ASSIGN_OR_RETURN(
      id, checked(password.substr(kPrefix.size(), sep - kPrefix.size()), "password"));
  return std::pair{std::move(id), std::string(password.substr(sep + 1))};
}

}  // namespace argon::proxy
