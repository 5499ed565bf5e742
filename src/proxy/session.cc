#include "proxy/session.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "pgwire/messages.h"
#include "proxy/proxy_context.h"

namespace argon::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using namespace asio::experimental::awaitable_operators;

namespace {

pgwire::ErrorFields to_fields(const Error& e) {
  pgwire::ErrorFields f;
  f.severity = "FATAL";
  f.sqlstate = std::string(default_sqlstate(e.code));
  f.message = e.message;
  return f;
}

}  // namespace

Session::Session(std::shared_ptr<ProxyContext> proxy, asio::ip::tcp::socket socket)
    : proxy_(std::move(proxy)),
      executor_(socket.get_executor()),
      client_(std::move(socket)),
      backend_(executor_),
      watchdog_(executor_) {}

void Session::terminate(std::string reason) {
  asio::post(executor_, [self = shared_from_this(), reason = std::move(reason)]() mutable {
    if (self->terminate_reason_) return;
    self->terminate_reason_ = std::move(reason);
    boost::system::error_code ec;
    if (self->phase_ == Phase::kHttp) {
      // A request under way fails with the reason and the connection closes after its answer;
      // between requests there is nothing to answer.
      if (self->http_joined_) {
        self->backend_.close(ec);
      } else {
        self->close_all();
      }
      return;
    }
    self->backend_.cancel(ec);
    // The relay finishes the message in flight and says why; before it, nothing is owed.
    if (self->phase_ != Phase::kRelaying) self->close_all();
  });
}

void Session::close_all() {
  boost::system::error_code ec;
  backend_.close(ec);
  client_.close();
}

void Session::arm_watchdog(std::chrono::milliseconds d) {
  watchdog_.expires_after(d);
  watchdog_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    if (ec) return;
    if (auto s = weak.lock()) s->close_all();
  });
}

awaitable<void> Session::run() {
  auto self = shared_from_this();
  arm_watchdog(proxy_->options.handshake_timeout);
  try {
    auto http = co_await speaks_http();
    bool tunnel = false;
    if (http && *http) {
      phase_ = Phase::kHttp;
      tunnel = co_await serve_http();
      if (tunnel) {
        // The PostgreSQL protocol from here on, inside the WebSocket, with a fresh deadline.
        phase_ = Phase::kStartup;
        arm_watchdog(proxy_->options.handshake_timeout);
      }
    }
    Status st;
    if (!http) {
      st = std::unexpected(http.error());
    } else if (!*http || tunnel) {
      st = co_await establish();
    }
    if (!st) {
      const auto& e = st.error();
      if (e.code == ErrorCode::kInternal) spdlog::error("proxy: {} ({})", e.message, e.detail);
      // An empty message: the client has had its answer (the compute's own refusal).
      if (!e.message.empty()) {
        const std::string out = pgwire::error_response(to_fields(e));
        co_await client_.write(out);
      }
    } else if (phase_ == Phase::kLoggingIn) {
      watchdog_.cancel();
      phase_ = Phase::kRelaying;
      co_await relay();
    }
  } catch (const boost::system::system_error&) {
    // The client or the compute went away, or the watchdog closed a stalled handshake.
  } catch (const std::exception& e) {
    spdlog::error("proxy: connection failed: {}", e.what());
  }
  watchdog_.cancel();
  close_all();
  if (phase_ == Phase::kHttp) {
    if (http_joined_) proxy_->registry.leave(endpoint_id_, self, true);
  } else if (phase_ != Phase::kStartup) {
    proxy_->registry.leave(endpoint_id_, self, phase_ >= Phase::kLoggingIn);
  }
  if (cancel_key_) proxy_->cancel_keys.erase(*cancel_key_);
  std::lock_guard l(proxy_->sessions_mu);
  proxy_->sessions.erase(self);
}

// GCC 12 inlines the awaitable frame's recycling allocator here and then takes its own
// aligned_alloc for a plain `new`: a false -Wmismatched-new-delete on the coroutine frame.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
awaitable<Status> Session::establish() {
  auto started = co_await handshake();
  if (!started) co_return std::unexpected(started.error());
  if (!*started) co_return Status{};  // a CancelRequest, already forwarded
  auto entered = co_await enter_endpoint();
  if (!entered) co_return entered;
  auto target = co_await wait_for_compute();
  if (!target) co_return std::unexpected(target.error());
  phase_ = Phase::kLoggingIn;
  auto secret = co_await proxy_->admin->role_secret(target->socket_dir, user_);
  if (!secret) co_return std::unexpected(secret.error());
  // The compute starts the client's backend while the client works out its SCRAM proof, so the two
  // waits overlap. The backend is never handed to a client that fails authentication: it is closed.
  auto [authed, login] = co_await (authenticate(*secret) && start_backend(*target, *secret));
  if (!authed) co_return authed;
  if (terminate_reason_) co_return fail(ErrorCode::kUnavailable, *terminate_reason_);
  auto logged_in = co_await login_to_compute(*target, std::move(login));
  if (!logged_in) co_return logged_in;
  const std::string out = pgwire::authentication_ok() + backend_greeting_;
  co_await client_.write(out);
  co_return Status{};
}
#pragma GCC diagnostic pop

awaitable<Result<Session::Message>> Session::read_message() {
  std::array<char, 4096> buf;
  for (;;) {
    auto m = framer_.next();
    if (!m) co_return std::unexpected(m.error());
    if (*m) co_return Message((*m)->type, std::string((*m)->body));
    auto b = asio::buffer(buf);
    std::size_t n = co_await client_.read_some(b);
    framer_.feed(std::string_view(buf.data(), n));
  }
}

awaitable<void> Session::sleep(std::chrono::milliseconds d) {
  asio::steady_timer t(executor_, d);
  co_await t.async_wait(use_awaitable);
}

Error Session::denied() const {
  return Error{ErrorCode::kUnauthorized,
               fmt::format("password authentication failed for user \"{}\"", user_), ""};
}

}  // namespace argon::proxy
