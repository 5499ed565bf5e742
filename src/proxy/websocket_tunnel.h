// The PostgreSQL protocol tunnelled in a WebSocket, as @neondatabase/serverless's Pool and Client
// open it (`wss://<host>/v2`): binary messages carry the byte stream in both directions. Beast's
// WebSocket stream does the framing, masking and control frames (a ping is answered, a close
// ends the stream) over the client's socket or TLS, reached through ClientIo.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <functional>
#include <string_view>

#include "proxy/http_message.h"

namespace argon::proxy {

class ClientStream;

// ClientStream's socket-or-TLS layer as an Asio stream, for Beast.
class ClientIo {
 public:
  using executor_type = boost::asio::any_io_executor;
  ClientIo(ClientStream& stream, executor_type executor)
      : stream_(&stream), executor_(std::move(executor)) {}
  executor_type get_executor() const { return executor_; }

  template <typename Buffers, typename Token>
  auto async_read_some(const Buffers& buffers, Token&& token);
  template <typename Buffers, typename Token>
  auto async_write_some(const Buffers& buffers, Token&& token);

  ClientStream& stream() const { return *stream_; }

 private:
  // Runs one raw read or write as a coroutine and calls `done` with its outcome.
  // A cancellation emitted on `slot` (the relay ending one direction when the other ends) cancels
  // the socket wait beneath.
  void start_read(boost::asio::mutable_buffer b, boost::asio::cancellation_slot slot,
                  std::function<void(boost::system::error_code, std::size_t)> done);
  void start_write(boost::asio::const_buffer b, boost::asio::cancellation_slot slot,
                   std::function<void(boost::system::error_code, std::size_t)> done);

  ClientStream* stream_;
  executor_type executor_;
};

namespace detail {

// The first non-empty buffer of a sequence (Beast reads and writes one at a time anyway).
template <typename Buffer, typename Buffers>
Buffer first_nonempty(const Buffers& buffers) {
  for (auto it = boost::asio::buffer_sequence_begin(buffers);
       it != boost::asio::buffer_sequence_end(buffers); ++it) {
    const Buffer b = *it;
    if (b.size() > 0) return b;
  }
  return Buffer();
}

// An Asio operation whose work `start(slot, done)` does, calling `done(ec, n)` once.
template <typename Token, typename Start>
auto initiate_io(Token&& token, Start start) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      [start](auto handler) {
        auto slot = boost::asio::get_associated_cancellation_slot(handler);
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        start(slot, [shared](boost::system::error_code ec, std::size_t n) { (*shared)(ec, n); });
      },
      token);
}

}  // namespace detail

template <typename Buffers, typename Token>
auto ClientIo::async_read_some(const Buffers& buffers, Token&& token) {
  const auto b = detail::first_nonempty<boost::asio::mutable_buffer>(buffers);
  return detail::initiate_io(std::forward<Token>(token), [this, b](auto slot, auto done) {
    start_read(b, slot, std::move(done));
  });
}

template <typename Buffers, typename Token>
auto ClientIo::async_write_some(const Buffers& buffers, Token&& token) {
  const auto b = detail::first_nonempty<boost::asio::const_buffer>(buffers);
  return detail::initiate_io(std::forward<Token>(token), [this, b](auto slot, auto done) {
    start_write(b, slot, std::move(done));
  });
}

// Beast ends a WebSocket by tearing its stream down, or on a timeout closes it: here, closing the
// client's socket.
void beast_close_socket(ClientIo& io);
void teardown(boost::beast::role_type role, ClientIo& io, boost::system::error_code& ec);
template <typename Handler>
void async_teardown(boost::beast::role_type role, ClientIo& io, Handler&& handler) {
  boost::system::error_code ec;
  teardown(role, io, ec);
  boost::asio::post(io.get_executor(),
                    [h = std::forward<Handler>(handler), ec]() mutable { h(ec); });
}

class WebSocketTunnel {
 public:
  // Largest message accepted from the client (a PostgreSQL message is at most 1 GiB).
  static constexpr std::size_t kMaxMessage = std::size_t{1} << 30;

  WebSocketTunnel(ClientStream& stream, boost::asio::any_io_executor executor);
  // Answers the upgrade request with 101 Switching Protocols (or an error, thrown).
  boost::asio::awaitable<void> accept(const HttpRequest& request);
  boost::asio::awaitable<std::size_t> read_some(boost::asio::mutable_buffer b);
  boost::asio::awaitable<void> write(std::string_view data);

 private:
  boost::beast::websocket::stream<ClientIo> ws_;
};

}  // namespace argon::proxy
