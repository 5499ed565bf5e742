#include "proxy/client_stream.h"

#include <openssl/err.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "proxy/websocket_tunnel.h"

namespace argon::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

namespace {

int chunk(std::size_t n) { return static_cast<int>(std::min<std::size_t>(n, INT_MAX)); }

// Before every OpenSSL call: OpenSSL keeps the descriptor's number, which after close() may already
// be another client's connection (accepted on another loop). Throws once the socket is closed.
void check_open(const tcp::socket& socket) {
  if (!socket.is_open()) throw boost::system::system_error(asio::error::bad_descriptor);
}

}  // namespace

awaitable<unsigned char> ClientStream::peek_byte() {
  for (;;) {
    unsigned char c = 0;
    const ssize_t n = ::recv(socket_.native_handle(), &c, 1, MSG_PEEK);
    if (n == 1) co_return c;
    if (n == 0) throw boost::system::system_error(asio::error::eof);
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      throw boost::system::system_error(asio::error::connection_reset);
    }
    co_await socket_.async_wait(tcp::socket::wait_read, use_awaitable);
  }
}

ClientStream::ClientStream(tcp::socket socket) : socket_(std::move(socket)) {}
ClientStream::~ClientStream() = default;

awaitable<void> ClientStream::accept_websocket(
    const boost::beast::http::request<boost::beast::http::string_body>& request, std::string host) {
  auto ws = std::make_unique<WebSocketTunnel>(*this, socket_.get_executor());
  co_await ws->accept(request);
  ws_ = std::move(ws);
  tunnel_host_ = std::move(host);
}

awaitable<std::size_t> ClientStream::read_some(asio::mutable_buffer b) {
  if (ws_) co_return co_await ws_->read_some(b);
  co_return co_await raw_read_some(b);
}

awaitable<void> ClientStream::write(std::string_view data) {
  if (ws_) {
    co_await ws_->write(data);
    co_return;
  }
  co_await raw_write(data);
}

awaitable<std::size_t> ClientStream::raw_read_some(asio::mutable_buffer b) {
  if (!tls_) co_return co_await socket_.async_read_some(b, use_awaitable);
  for (;;) {
    check_open(socket_);
    const int n = SSL_read(tls_.get(), b.data(), chunk(b.size()));
    if (n > 0) co_return static_cast<std::size_t>(n);
    co_await tls_wait(SSL_get_error(tls_.get(), n));
  }
}

awaitable<void> ClientStream::read_exact(std::string& out, std::size_t n) {
  out.resize(n);
  std::size_t have = 0;
  while (have < n) have += co_await read_some(asio::buffer(out.data() + have, n - have));
}

awaitable<void> ClientStream::raw_write(std::string_view data) {
  if (!tls_) {
    co_await write_now(socket_, data);
    co_return;
  }
  while (!data.empty()) {
    check_open(socket_);
    const int n = SSL_write(tls_.get(), data.data(), chunk(data.size()));
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    co_await tls_wait(SSL_get_error(tls_.get(), n));
  }
}

awaitable<void> ClientStream::tls_wait(int ssl_error) {
  if (ssl_error == SSL_ERROR_WANT_READ) {
    co_await socket_.async_wait(tcp::socket::wait_read, use_awaitable);
  } else if (ssl_error == SSL_ERROR_WANT_WRITE) {
    co_await socket_.async_wait(tcp::socket::wait_write, use_awaitable);
  } else {
    ERR_clear_error();
    if (ssl_error == SSL_ERROR_ZERO_RETURN) throw boost::system::system_error(asio::error::eof);
    throw boost::system::system_error(asio::error::connection_reset);
  }
}

awaitable<void> ClientStream::start_tls(SSL_CTX* context) {
  tls_.reset(SSL_new(context));
  if (!tls_ || SSL_set_fd(tls_.get(), socket_.native_handle()) != 1) {
    throw boost::system::system_error(asio::error::no_memory);
  }
  for (;;) {
    check_open(socket_);
    const int r = SSL_accept(tls_.get());
    if (r == 1) co_return;
    co_await tls_wait(SSL_get_error(tls_.get(), r));
  }
}

std::string ClientStream::server_name() const {
  const char* name = tls_ ? SSL_get_servername(tls_.get(), TLSEXT_NAMETYPE_host_name) : nullptr;
  return name ? name : tunnel_host_;
}

void ClientStream::close() {
  boost::system::error_code ec;
  socket_.close(ec);
}

}  // namespace argon::proxy
