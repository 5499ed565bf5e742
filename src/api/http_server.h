// The HTTP/1.1 server under the API: Boost.Beast on Asio with C++20 coroutines. It owns sockets,
// limits (body size, header size, read deadline) and keep-alive; a synchronous handler turns each
// request into a response. Handlers run on a bounded pool of their own, never on the I/O threads:
// a handler may block (a catalog transaction, `postgres -C`, `pg_waldump`) without stalling the
// sockets of other requests or the proxy's accepts. Beast and Asio stay in http_server.cc.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "api/http_types.h"
#include "common/error.h"

namespace boost::asio {
class io_context;
}

namespace argon::api {

struct HttpLimits {
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 * 1024;
  int read_timeout_seconds = 30;
  int handler_threads = 4;  // requests handled at once; more wait for a thread, their sockets idle
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  HttpServer(boost::asio::io_context& io, Handler handler, HttpLimits limits = {});
  ~HttpServer();

  // Binds and starts accepting; returns the bound port (useful with port 0).
  Result<uint16_t> listen(const std::string& host, uint16_t port);
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Splits "host:port" ("[::1]:80" for IPv6). Errors name the flag.
Result<std::pair<std::string, uint16_t>> parse_host_port(const std::string& s,
                                                         std::string_view flag);

}  // namespace argon::api
