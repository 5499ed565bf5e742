// The relay, in both directions. The compute-to-client side tracks message boundaries, so that a
// terminate() can finish the message in flight (bounded by kTerminateDrain) and then send FATAL
// 57P01 with the reason.
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/multiple_exceptions.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <vector>

#include "pgwire/messages.h"
#include "pgwire/wire_format.h"
#include "proxy/deadline.h"
#include "proxy/proxy_context.h"
#include "proxy/session.h"

namespace argon::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr std::size_t kRelayBuffer = 16 * 1024;  // one TLS record
constexpr auto kTerminateDrain = 1s;

std::string terminated(const std::string& reason) {
  return pgwire::error_response({"FATAL", "57P01", reason, "", ""});
}

// Runs `direction`, then closes the client's socket, however it ended. Used for a WebSocket
// tunnel, whose read does not end when the relay cancels it: closing the socket beneath ends it.
awaitable<void> then_close(awaitable<void> direction, ClientStream& client) {
  try {
    co_await std::move(direction);
  } catch (...) {
    client.close();
    throw;
  }
  client.close();
}

}  // namespace

awaitable<void> Session::relay() {
  backend_.non_blocking(true);  // for write_now()
  if (terminate_reason_) {
    const std::string out = terminated(*terminate_reason_);
    co_await client_.write(out);
    co_return;
  }
  // Bytes the client sent after its last authentication message belong to the compute.
  if (framer_.buffered() > 0) {
    auto rest = framer_.take_rest();
    co_await write_now(backend_, rest);
  }
  try {
    if (client_.tunneled()) {
      co_await (client_to_backend() || then_close(backend_to_client(), client_));
    } else {
      co_await (client_to_backend() || backend_to_client());
    }
  } catch (const asio::multiple_exceptions&) {
    // Both directions ended (the usual end of a connection).
  }
}

awaitable<void> Session::client_to_backend() {
  std::vector<char> buf(kRelayBuffer);
  for (;;) {
    auto b = asio::buffer(buf);
    std::size_t n = co_await client_.read_some(b);
    co_await write_now(backend_, std::string_view(buf.data(), n));
  }
}

awaitable<void> Session::backend_to_client() {
  std::vector<char> buf(kRelayBuffer);
  pgwire::BoundaryTracker tracker;
  for (;;) {
    boost::system::error_code ec;
    std::size_t n = co_await backend_.async_read_some(asio::buffer(buf),
                                                      asio::redirect_error(use_awaitable, ec));
    if (ec && !terminate_reason_) throw boost::system::system_error(ec);
    if (terminate_reason_) {
      // Finish the message in flight (bounded), then tell the client why the connection ends.
      std::string_view pending(buf.data(), ec ? 0 : n);
      auto give_up = std::chrono::steady_clock::now() + kTerminateDrain;
      for (;;) {
        while (!pending.empty() && !tracker.at_boundary()) {
          auto used = tracker.consume_message_part(pending);
          if (!used) co_return;
          co_await client_.write(pending.substr(0, *used));
          pending.remove_prefix(*used);
        }
        if (tracker.at_boundary() || std::chrono::steady_clock::now() > give_up) break;
        ec.clear();
        {
          SocketDeadline limit(backend_, kTerminateDrain);
          n = co_await backend_.async_read_some(asio::buffer(buf),
                                                asio::redirect_error(use_awaitable, ec));
        }
        if (ec) break;
        pending = std::string_view(buf.data(), n);
      }
      if (tracker.at_boundary()) {
        const std::string out = terminated(*terminate_reason_);
        co_await client_.write(out);
      }
      co_return;
    }
    if (!tracker.advance(std::string_view(buf.data(), n))) co_return;  // a compute never sends this
    co_await client_.write(std::string_view(buf.data(), n));
  }
}

}  // namespace argon::proxy
