// A connection that speaks HTTP (first_bytes.cc): HTTP/1.1 requests one after another on a
// kept-alive connection. `POST /sql` is SQL over HTTP (sql_over_http.cc) and `OPTIONS /sql` its
// CORS preflight; everything else is refused with a JSON error. A request must arrive whole within
// the handshake timeout once its first byte has, and a kept-alive connection may wait
// http_idle_timeout for the next; a request body over http_max_request gets 413 and the
// connection closes, as does anything that is not HTTP/1.x.
#include <fmt/format.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "proxy/http_request.h"
#include "proxy/proxy_context.h"
#include "proxy/session.h"

namespace argon::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;

namespace {

constexpr std::size_t kReadChunk = 16 * 1024;

HttpAnswer preflight() {
  HttpAnswer a;
  a.status = 200;
  a.content_type = "text/plain";
  a.headers = {{"Allow", "OPTIONS, POST"},
               {"Access-Control-Allow-Headers",
                "Authorization, Neon-Connection-String, Neon-Raw-Text-Output, Neon-Array-Mode, "
                "Neon-Pool-Opt-In, Neon-Batch-Read-Only, Neon-Batch-Isolation-Level, "
                "Neon-Batch-Deferrable, Content-Type"},
               {"Access-Control-Allow-Methods", "OPTIONS, POST"},
               {"Access-Control-Max-Age", "86400"}};
  return a;
}

}  // namespace

awaitable<bool> Session::serve_http() {
  if (!client_.encrypted() && !proxy_->options.allow_plaintext) {
    HttpAnswer a = http_error(400, "this Argon proxy accepts only HTTPS: use https://");
    const std::string out = serialize(a, false);
    co_await client_.write(out);
    co_return false;
  }
  beast::flat_buffer buffer;
  for (;;) {
    if (terminate_reason_ || proxy_->stopping) co_return false;
    arm_watchdog(proxy_->options.http_idle_timeout);
    http::request_parser<http::string_body> parser;
    parser.header_limit(kMaxRequestHeader);
    parser.body_limit(proxy_->options.http_max_request);
    bool started = buffer.size() > 0;
    if (started) arm_watchdog(proxy_->options.handshake_timeout);
    bool continued = false;
    std::optional<HttpAnswer> refused;
    while (!parser.is_done()) {
      if (buffer.size() == 0) {
        auto space = buffer.prepare(kReadChunk);
        std::size_t n = 0;
        try {
          n = co_await client_.read_some(space);
        } catch (const boost::system::system_error&) {
          co_return false;  // the client went away, or the watchdog closed a slow one
        }
        buffer.commit(n);
        if (!started) {
          started = true;
          arm_watchdog(proxy_->options.handshake_timeout);
        }
      }
      beast::error_code ec;
      const std::size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (ec == http::error::need_more) {
        if (used == 0 && buffer.size() > 0) {
          // A partial element: read more beside it.
          auto space = buffer.prepare(kReadChunk);
          std::size_t n = 0;
          try {
            n = co_await client_.read_some(space);
          } catch (const boost::system::system_error&) {
            co_return false;
          }
          buffer.commit(n);
        }
        continue;
      }
      if (ec == http::error::body_limit) {
        refused = http_error(413, fmt::format("request is too large (max is {} bytes)",
                                              proxy_->options.http_max_request));
      } else if (ec == http::error::header_limit) {
        refused = http_error(
            431, fmt::format("request headers are too large (max is {} bytes)", kMaxRequestHeader));
      } else if (ec) {
        refused = http_error(400, fmt::format("malformed HTTP request: {}", ec.message()));
      }
      if (refused) break;
      if (parser.is_header_done() && !continued && !parser.is_done() &&
          beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        continued = true;
        const std::string out = "HTTP/1.1 100 Continue\r\n\r\n";
        co_await client_.write(out);
      }
    }
    watchdog_.cancel();
    if (refused) {
      refused->close = true;
      const std::string out = serialize(*refused, false);
      co_await client_.write(out);
      co_return false;
    }
    HttpRequest request = parser.release();
    const std::string_view target = request.target();
    const std::string_view path = target.substr(0, target.find('?'));
    HttpAnswer answer;
    if (beast::websocket::is_upgrade(request)) {
      // On any path, as Neon's proxy: the driver asks for /v2.
      co_await client_.accept_websocket(request,
                                        tunnel_host(request.target(), request[http::field::host]));
      co_return true;
    }
    if (path == "/sql" && request.method() == http::verb::post) {
      answer = co_await sql_over_http(request);
    } else if (path == "/sql" && request.method() == http::verb::options) {
      answer = preflight();
    } else {
      answer = http_error(400, "query is not supported: send POST /sql");
    }
    const bool keep_alive = request.keep_alive() && !answer.close && !terminate_reason_;
    const std::string out = serialize(answer, keep_alive);
    co_await client_.write(out);
    if (!keep_alive) co_return false;
  }
}

}  // namespace argon::proxy
