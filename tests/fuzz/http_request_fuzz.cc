// libFuzzer target for what SQL over HTTP parses from a client before anything runs: the
// `Neon-Connection-String` header (a URL, with the endpoint from its host or `options`) and the
// JSON body (one query or a batch, parameters turned into PostgreSQL text). The input's first line
// is the header; the rest is the body. Any crash, sanitizer report, or accepted request missing
// what the proxy needs next (role, password, database, endpoint, a statement) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proxy/http_request.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto newline = input.find('\n');
  const std::string_view header = input.substr(0, newline);
  const std::string_view body =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);

  if (auto info = argon::proxy::parse_connection_string(header)) {
    check(!info->user.empty() && !info->password.empty() && !info->database.empty());
    check(!info->endpoint_id.empty());
  } else {
    check(!info.error().message.empty());
  }
  if (auto parsed = argon::proxy::parse_body(body)) {
    check(parsed->batch || parsed->statements.size() == 1);
    for (const auto& s : parsed->statements) check(s.params.size() <= body.size());
  } else {
    check(!parsed.error().message.empty());
  }
  return 0;
}
