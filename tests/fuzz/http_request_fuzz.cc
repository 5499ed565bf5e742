// libFuzzer target for what SQL over HTTP and the WebSocket upgrade read from a client before
// anything runs. Each input is taken two ways:
// - as bytes on the wire: Beast's request parser with the proxy's header limit, then, for a whole
//   request, what the proxy reads from it (the tunnel's endpoint host from the target and Host,
//   the `Neon-Connection-String` header, the JSON body);
// - split at its first newline: the connection string alone, then the body alone, so the fuzzer
//   reaches deep into both without having to build a request around them.
// Any crash, sanitizer report, or accepted request missing what the proxy needs next (role,
// password, database, endpoint, a statement) is a bug.
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proxy/http_request.h"

namespace {

namespace http = boost::beast::http;

void check(bool ok) {
  if (!ok) std::abort();
}

void fuzz_connection_string(std::string_view text) {
  if (auto info = argon::proxy::parse_connection_string(text)) {
    check(!info->user.empty() && !info->password.empty() && !info->database.empty());
    check(!info->endpoint_id.empty());
  } else {
    check(!info.error().message.empty());
  }
}

void fuzz_body(std::string_view text) {
  if (auto parsed = argon::proxy::parse_body(text)) {
    check(parsed->batch || parsed->statements.size() == 1);
    for (const auto& s : parsed->statements) check(s.params.size() <= text.size());
  } else {
    check(!parsed.error().message.empty());
  }
}

void fuzz_wire(std::string_view input) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(argon::proxy::kMaxRequestHeader);
  parser.body_limit(1 << 20);
  boost::system::error_code ec;
  std::size_t used = 0;
  while (used < input.size() && !parser.is_done()) {
    const std::size_t n =
        parser.put(boost::asio::buffer(input.data() + used, input.size() - used), ec);
    if (ec == http::error::need_more) break;
    if (ec) return;
    if (n == 0) break;
    used += n;
  }
  if (!parser.is_header_done()) return;
  const auto& request = parser.get();
  const std::string host = argon::proxy::tunnel_host(request.target(), request[http::field::host]);
  check(host.size() <= input.size());
  if (!parser.is_done()) return;
  fuzz_connection_string(request["Neon-Connection-String"]);
  fuzz_body(request.body());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  fuzz_wire(input);
  const auto newline = input.find('\n');
  fuzz_connection_string(input.substr(0, newline));
  fuzz_body(newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1));
  return 0;
}
