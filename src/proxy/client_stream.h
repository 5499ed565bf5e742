// The client's side of a proxied connection: the TCP socket, with TLS on top once the client asked
// for it. OpenSSL runs directly on the non-blocking socket (`SSL_read`, `SSL_write`), and the
// stream waits for readiness only when OpenSSL asks for it: no Asio SSL engine, no memory BIO
// copies.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <string>
#include <string_view>

namespace argon::proxy {

// Writes what the kernel takes at once without a trip through the scheduler (the usual case for
// relayed messages, which fit the socket buffer), and only waits for the rest. The socket must be
// in non-blocking mode.
template <typename Socket>
boost::asio::awaitable<void> write_now(Socket& socket, std::string_view data) {
  boost::system::error_code ec;
  std::size_t n = socket.write_some(boost::asio::buffer(data), ec);
  if (!ec && n == data.size()) co_return;
  if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
    n = 0;
  } else if (ec) {
    throw boost::system::system_error(ec);
  }
  co_await boost::asio::async_write(socket, boost::asio::buffer(data.substr(n)),
                                    boost::asio::use_awaitable);
}

// Errors are thrown as boost::system::system_error (eof, connection_reset): the connection ends.
// Callers pass named buffers, never temporaries: GCC 12 destroys some temporaries that live across
// a co_await twice.
class WebSocketTunnel;

class ClientStream {
 public:
  explicit ClientStream(boost::asio::ip::tcp::socket socket);
  ~ClientStream();

  // The first byte the client sent, left in the socket for the next read (MSG_PEEK).
  boost::asio::awaitable<unsigned char> peek_byte();
  boost::asio::awaitable<std::size_t> read_some(boost::asio::mutable_buffer b);
  boost::asio::awaitable<void> read_exact(std::string& out, std::size_t n);
  boost::asio::awaitable<void> write(std::string_view data);
  // Runs the TLS server handshake with `context` over the socket.
  boost::asio::awaitable<void> start_tls(SSL_CTX* context);
  // Answers a WebSocket upgrade; from then on reads and writes carry the payload of binary
  // WebSocket messages (websocket_tunnel.h). `host` names the endpoint when TLS sent no SNI.
  boost::asio::awaitable<void> accept_websocket(
      const boost::beast::http::request<boost::beast::http::string_body>& request,
      std::string host);
  bool tunneled() const { return ws_ != nullptr; }

  // The socket or TLS layer beneath a WebSocket.
  boost::asio::awaitable<std::size_t> raw_read_some(boost::asio::mutable_buffer b);
  boost::asio::awaitable<void> raw_write(std::string_view data);

  bool encrypted() const { return tls_ != nullptr; }
  const SSL* ssl() const { return tls_.get(); }
  // The host name the client sent in its TLS hello, else the WebSocket's host, or "".
  std::string server_name() const;
  void close();

 private:
  // When OpenSSL needs the socket, wait for it; anything else ends the connection.
  boost::asio::awaitable<void> tls_wait(int ssl_error);

  struct SslFree {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
  };
  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<SSL, SslFree> tls_;
  std::unique_ptr<WebSocketTunnel> ws_;
  std::string tunnel_host_;
};

}  // namespace argon::proxy
