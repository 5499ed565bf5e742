#include "proxy/websocket_tunnel.h"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/websocket.hpp>

#include "proxy/client_stream.h"

namespace argon::proxy {

namespace asio = boost::asio;
namespace websocket = boost::beast::websocket;
using asio::awaitable;
using asio::use_awaitable;

namespace {

boost::system::error_code error_of(std::exception_ptr e) {
  if (!e) return {};
  try {
    std::rethrow_exception(e);
  } catch (const boost::system::system_error& se) {
    return se.code();
  } catch (...) {
    return asio::error::fault;
  }
}

}  // namespace

void ClientIo::start_read(asio::mutable_buffer b, asio::cancellation_slot slot,
                          std::function<void(boost::system::error_code, std::size_t)> done) {
  asio::co_spawn(executor_, stream_->raw_read_some(b),
                 asio::bind_cancellation_slot(
                     slot, [done = std::move(done)](std::exception_ptr e, std::size_t n) {
                       done(error_of(e), e ? 0 : n);
                     }));
}

void ClientIo::start_write(asio::const_buffer b, asio::cancellation_slot slot,
                           std::function<void(boost::system::error_code, std::size_t)> done) {
  asio::co_spawn(
      executor_,
      [stream = stream_, b]() -> awaitable<std::size_t> {
        const std::string_view data(static_cast<const char*>(b.data()), b.size());
        co_await stream->raw_write(data);
        co_return b.size();
      },
      asio::bind_cancellation_slot(slot,
                                   [done = std::move(done)](std::exception_ptr e, std::size_t n) {
                                     done(error_of(e), e ? 0 : n);
                                   }));
}

void beast_close_socket(ClientIo& io) { io.stream().close(); }

void teardown(boost::beast::role_type, ClientIo& io, boost::system::error_code& ec) {
  io.stream().close();
  ec = {};
}

WebSocketTunnel::WebSocketTunnel(ClientStream& stream, asio::any_io_executor executor)
    : ws_(ClientIo(stream, std::move(executor))) {
  ws_.binary(true);
  ws_.read_message_max(kMaxMessage);
  ws_.auto_fragment(false);
}

awaitable<void> WebSocketTunnel::accept(const HttpRequest& request) {
  co_await ws_.async_accept(request, use_awaitable);
}

awaitable<std::size_t> WebSocketTunnel::read_some(asio::mutable_buffer b) {
  co_return co_await ws_.async_read_some(b, use_awaitable);
}

awaitable<void> WebSocketTunnel::write(std::string_view data) {
  co_await ws_.async_write(asio::buffer(data), use_awaitable);
}

}  // namespace argon::proxy
