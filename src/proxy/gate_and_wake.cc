// Between the handshake and authentication: the connection joins its endpoint (waiting, bounded,
// while a gate or a restore's hold is up), then waits for the endpoint's compute, asking the
// engine to start it. Joining before the compute is chosen means a terminate() that comes later
// also reaches this connection.
#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/proxy_context.h"
#include "proxy/session.h"

namespace argon::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using namespace std::chrono_literals;

namespace {

constexpr auto kPollInterval = 10ms;
// A gate is usually up for a restore's swap, a few milliseconds: a held connection looks again
// every millisecond at first, so it follows the gate within about one, then every kPollInterval.
constexpr auto kGateFirstPolls = 50;
constexpr auto kGateFirstPollInterval = 1ms;

}  // namespace

awaitable<Status> Session::enter_endpoint() {
  const auto deadline = std::chrono::steady_clock::now() + proxy_->options.gate_timeout;
  for (int polls = 0; !proxy_->registry.try_join(endpoint_id_, shared_from_this()); ++polls) {
    if (std::chrono::steady_clock::now() > deadline) {
      co_return fail(
          ErrorCode::kUnavailable,
          fmt::format(
              "endpoint {} is being switched to another compute and did not come back within "
              "{} s; try again",
              endpoint_id_, proxy_->options.gate_timeout.count() / 1000));
    }
    co_await sleep(polls < kGateFirstPolls ? kGateFirstPollInterval : kPollInterval);
  }
  if (phase_ != Phase::kHttp) phase_ = Phase::kWaiting;
  co_return Status{};
}

awaitable<Result<compute::ComputeTarget>> Session::wait_for_compute() {
  const auto deadline = std::chrono::steady_clock::now() + proxy_->options.wake_timeout;
  for (;;) {
    auto r = co_await wake();
    if (!r) co_return std::unexpected(r.error());
    if (*r) co_return std::move(**r);
    if (terminate_reason_) co_return fail(ErrorCode::kUnavailable, *terminate_reason_);
    if (std::chrono::steady_clock::now() > deadline) {
      co_return fail(
          ErrorCode::kUnavailable,
          fmt::format("the compute for endpoint {} did not start within {} s; try again, and check "
                      "GET /projects/{{id}}/operations for the failed start",
                      endpoint_id_, proxy_->options.wake_timeout.count() / 1000));
    }
    co_await sleep(kPollInterval);
  }
}

// The resolver's answer: from its memory when it knows the endpoint serves (the usual case), or
// else asked on the proxy's blocking pool, since it reads the catalog, which may wait for another
// transaction, and the other connections on this loop must not wait with it.
awaitable<Result<std::optional<compute::ComputeTarget>>> Session::wake() {
  if (auto known = proxy_->resolver.serving_now(endpoint_id_)) co_return std::move(known);
  co_return co_await asio::co_spawn(
      *proxy_->blocking,
      [this]() -> awaitable<Result<std::optional<compute::ComputeTarget>>> {
        co_return proxy_->resolver.wake(endpoint_id_);
      },
      use_awaitable);
}

}  // namespace argon::proxy
