#include "cli/http_client.h"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <optional>
#include <variant>

namespace argon::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct HttpClient::Impl {
  std::string base_url;
  bool tls = false;
  std::string host, port, prefix;  // prefix: the base URL's path, e.g. "/api/v2"
  std::chrono::milliseconds timeout;
  asio::io_context io;
  ssl::context ssl_ctx{ssl::context::tls_client};
};

Result<HttpClient> HttpClient::make(const std::string& base_url,
                                    std::chrono::milliseconds timeout) {
  auto url = boost::urls::parse_uri(base_url);
  if (!url || (url->scheme() != "http" && url->scheme() != "https") || url->host().empty()) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("--api-host: '{}' is not an http:// or https:// URL", base_url));
  }
  auto impl = std::make_unique<Impl>();
  impl->base_url = base_url;
  impl->tls = url->scheme() == "https";
  impl->host = std::string(url->host());
  impl->port = url->has_port() ? std::string(url->port()) : (impl->tls ? "443" : "80");
  impl->prefix = std::string(url->path());
  while (!impl->prefix.empty() && impl->prefix.back() == '/') impl->prefix.pop_back();
  impl->timeout = timeout;
  if (impl->tls) {
    impl->ssl_ctx.set_default_verify_paths();
    impl->ssl_ctx.set_verify_mode(ssl::verify_peer);
  }
  return HttpClient(std::move(impl));
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;
HttpClient::~HttpClient() = default;

const std::string& HttpClient::base_url() const { return impl_->base_url; }

namespace {

// One exchange on a fresh connection ("Connection: close"): a request that failed midway is never
// sent again behind the user's back, so a POST cannot be applied twice.
template <typename Stream>
asio::awaitable<HttpResponse> exchange(Stream& stream, http::request<http::string_body>& req) {
  co_await http::async_write(stream, req, asio::use_awaitable);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
  co_return HttpResponse{static_cast<int>(parser.get().result_int()),
                         std::move(parser.get().body())};
}

}  // namespace

Result<HttpResponse> HttpClient::request(
    const std::string& method, const std::string& path, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  Impl& d = *impl_;
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(d.prefix + path);
  req.version(11);
  req.set(http::field::host, d.host);
  req.set(http::field::user_agent, "argon-cli");
  req.set(http::field::accept, "application/json");
  req.set(http::field::connection, "close");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();

  std::optional<std::variant<HttpResponse, std::string>> outcome;
  auto run = [&]() -> asio::awaitable<void> {
    tcp::resolver resolver(d.io);
    auto endpoints = co_await resolver.async_resolve(d.host, d.port, asio::use_awaitable);
    if (d.tls) {
      beast::ssl_stream<beast::tcp_stream> stream(d.io, d.ssl_ctx);
      if (!SSL_set_tlsext_host_name(stream.native_handle(), d.host.c_str())) {
        throw beast::system_error(beast::error_code(static_cast<int>(::ERR_get_error()),
                                                    asio::error::get_ssl_category()));
      }
      stream.set_verify_callback(ssl::host_name_verification(d.host));
      beast::get_lowest_layer(stream).expires_after(d.timeout);
      co_await beast::get_lowest_layer(stream).async_connect(endpoints, asio::use_awaitable);
      co_await stream.async_handshake(ssl::stream_base::client, asio::use_awaitable);
      outcome = co_await exchange(stream, req);
    } else {
      beast::tcp_stream stream(d.io);
      stream.expires_after(d.timeout);
      co_await stream.async_connect(endpoints, asio::use_awaitable);
      outcome = co_await exchange(stream, req);
    }
  };
  asio::co_spawn(d.io, run(), [&](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const boost::system::system_error& ex) {
      outcome = ex.code().message();
    } catch (const std::exception& ex) {
      outcome = std::string(ex.what());
    }
  });
  d.io.restart();
  d.io.run();
  if (!outcome) return fail(ErrorCode::kUnavailable, fmt::format("no answer from {}", d.base_url));
  if (auto* err = std::get_if<std::string>(&*outcome)) {
    return fail(ErrorCode::kUnavailable,
                fmt::format("cannot reach the API at {}: {}", d.base_url, *err));
  }
  return std::get<HttpResponse>(std::move(*outcome));
}

}  // namespace argon::cli
