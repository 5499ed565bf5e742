#include "api/http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>

namespace argon::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string error_body(std::string_view code, std::string_view message) {
  return fmt::format(R"({{"code":"{}","message":"{}"}})", code, message);
}

}  // namespace

struct HttpServer::Impl {
  asio::io_context& io;
  Handler handler;
  HttpLimits limits;
  tcp::acceptor acceptor;
  asio::thread_pool handlers;

  Impl(asio::io_context& io_, Handler h, HttpLimits l)
      : io(io_),
        handler(std::move(h)),
        limits(l),
        acceptor(io_),
        handlers(static_cast<std::size_t>(std::max(1, l.handler_threads))) {}
  ~Impl() {
    // Requests still queued are dropped with their connections; one being handled finishes.
    handlers.stop();
    handlers.join();
  }

  HttpResponse handle(const HttpRequest& r) {
    try {
      return handler(r);
    } catch (const std::exception& e) {
      spdlog::error("request {} {} failed: {}", r.method, r.target, e.what());
      HttpResponse out;
      out.status = 500;
      out.body = error_body("INTERNAL_ERROR", "internal error");
      return out;
    }
  }

  asio::awaitable<void> accept_loop() {
    while (acceptor.is_open()) {
      boost::system::error_code ec;
      tcp::socket sock =
          co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        spdlog::warn("accept failed: {}", ec.message());
        continue;
      }
      asio::co_spawn(acceptor.get_executor(), session(std::move(sock)), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket sock) {
    beast::tcp_stream stream(std::move(sock));
    beast::flat_buffer buffer;
    std::string remote;
    {
      boost::system::error_code ec;
      auto ep = stream.socket().remote_endpoint(ec);
      if (!ec) remote = ep.address().to_string();
    }
    try {
      while (true) {
        stream.expires_after(std::chrono::seconds(limits.read_timeout_seconds));
        http::request_parser<http::string_body> parser;
        parser.body_limit(limits.max_body_bytes);
        parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
        boost::system::error_code ec;
        co_await http::async_read(stream, buffer, parser,
                                  asio::redirect_error(asio::use_awaitable, ec));
        if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
            ec == asio::error::connection_reset || ec == asio::error::eof) {
          break;
        }
        if (ec) {
          // Malformed or oversized request: answer once, then close the connection.
          const bool too_big = ec == http::error::body_limit || ec == http::error::header_limit;
          http::response<http::string_body> res{
              too_big ? http::status::payload_too_large : http::status::bad_request, 11};
          res.set(http::field::content_type, "application/json");
          res.body() = too_big ? error_body("PAYLOAD_TOO_LARGE",
                                            fmt::format("request too large; the limit is {} bytes",
                                                        limits.max_body_bytes))
                               : error_body("BAD_REQUEST", "malformed HTTP request");
          res.keep_alive(false);
          res.prepare_payload();
          stream.expires_after(std::chrono::seconds(5));
          co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
          break;
        }
        auto& req = parser.get();
        HttpRequest r;
        r.method = std::string(req.method_string());
        r.target = std::string(req.target());
        for (const auto& f : req) {
          std::string name(f.name_string());
          for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          r.headers[name] = std::string(f.value());
        }
        r.body = std::move(req.body());
        r.remote_addr = remote;
        // The handler runs on the pool; this coroutine, on the connection's executor, waits.
        HttpResponse out = co_await asio::co_spawn(
            handlers.get_executor(),
            [&]() -> asio::awaitable<HttpResponse> { co_return handle(r); }, asio::use_awaitable);
        http::response<http::string_body> res{static_cast<http::status>(out.status), req.version()};
        res.set(http::field::server, "argond");
        if (!out.body.empty() || out.status != 204)
          res.set(http::field::content_type, out.content_type);
        for (const auto& [k, v] : out.headers) res.set(k, v);
        res.body() = std::move(out.body);
        res.keep_alive(req.keep_alive());
        res.prepare_payload();
        stream.expires_after(std::chrono::seconds(limits.read_timeout_seconds));
        co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
        if (ec || !res.keep_alive()) break;
      }
    } catch (const std::exception& e) {
      spdlog::debug("http session ended: {}", e.what());
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }
};

HttpServer::HttpServer(asio::io_context& io, Handler handler, HttpLimits limits)
    : impl_(std::make_unique<Impl>(io, std::move(handler), limits)) {}

HttpServer::~HttpServer() = default;

Result<uint16_t> HttpServer::listen(const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return fail(ErrorCode::kBadRequest, fmt::format("invalid listen address '{}'", host));
  tcp::endpoint ep(addr, port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("cannot listen on {}:{}: {}", host, port, ec.message()));
  }
  uint16_t bound = a.local_endpoint().port();
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  return bound;
}

void HttpServer::stop() {
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
}

Result<std::pair<std::string, uint16_t>> parse_host_port(const std::string& s,
                                                         std::string_view flag) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) {
    return fail(ErrorCode::kBadRequest, fmt::format("{} '{}': expected HOST:PORT", flag, s));
  }
  std::string host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string port_s = s.substr(colon + 1);
  if (port_s.find_first_not_of("0123456789") != std::string::npos || port_s.size() > 5) {
    return fail(ErrorCode::kBadRequest, fmt::format("{} '{}': invalid port", flag, s));
  }
  int port = std::stoi(port_s);
  if (port > 65535)
    return fail(ErrorCode::kBadRequest, fmt::format("{} '{}': invalid port", flag, s));
  return std::pair{host, static_cast<uint16_t>(port)};
}

}  // namespace argon::api
