// The proxy's threads and the accept loop; ConnectionControl for the engine. A connection's
// phases are in session.h.
#include "proxy/proxy_server.h"

#include <fmt/format.h>
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <thread>
#include <vector>

#include "pgwire/messages.h"
#include "proxy/proxy_context.h"
#include "proxy/session.h"
#include "proxy/tls_context.h"

namespace argon::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto kJanitorInterval = 5s;
constexpr auto kTerminateWait = 5s;
constexpr auto kPrepareWait = 2000ms;

}  // namespace

// The proxy's threads. Members are destroyed in reverse order: what lives on the housekeeping loop
// (acceptor, admin pool, timer) before that loop, and that loop before the connections' loops, so
// a connection waiting on housekeeping work is destroyed while its own loop still exists.
struct ProxyServer::Loops {
  explicit Loops(int n) {
    for (int i = 0; i < n; ++i) {
      connections.push_back(std::make_unique<asio::io_context>(1));
      guards.emplace_back(connections.back()->get_executor());
    }
    guards.emplace_back(housekeeping.get_executor());
  }
  void start() {
    for (auto& c : connections) threads.emplace_back([&c] { c->run(); });
    threads.emplace_back([this] { housekeeping.run(); });
    running = true;
  }
  // Stops every loop and joins its thread; a wake under way finishes and its answer is dropped.
  void join() {
    for (auto& c : connections) c->stop();
    housekeeping.stop();
    for (auto& t : threads) t.join();
    threads.clear();
    blocking.join();
  }
  ~Loops() { join(); }

  awaitable<void> accept_loop(std::shared_ptr<ProxyContext> context);
  awaitable<void> janitor(std::shared_ptr<ProxyContext> context);

  asio::thread_pool blocking{2};
  std::atomic<bool> running{false};  // the loops' threads run (from start() on)
  std::vector<std::unique_ptr<asio::io_context>> connections;
  asio::io_context housekeeping{1};
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
  std::size_t next_loop = 0;  // accept_loop's round robin
  tcp::acceptor acceptor{housekeeping};
  asio::steady_timer janitor_timer{housekeeping};
  std::unique_ptr<AdminPool> admin;
};

awaitable<void> ProxyServer::Loops::accept_loop(std::shared_ptr<ProxyContext> context) {
  while (!context->stopping) {
    boost::system::error_code ec;
    // The connection's loop: one thread runs it, so the connection needs no strand, and a relayed
    // message is read and written on the thread that saw it arrive (no hand-off between threads).
    asio::io_context& loop = *connections[next_loop++ % connections.size()];
    tcp::socket socket =
        co_await acceptor.async_accept(loop, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (context->stopping || ec == asio::error::operation_aborted) co_return;
      spdlog::warn("proxy: accept failed: {}", ec.message());
      // Out of descriptors and the like: back off instead of spinning.
      asio::steady_timer t(housekeeping, 50ms);
      co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    socket.non_blocking(true, ec);  // for write_now()
    if (context->open_connections.load() >= context->options.max_connections) {
      // The buffer and the socket live in the handler until the write is done.
      auto msg = std::make_shared<std::string>(pgwire::error_response(
          {"FATAL", "53300", "too many connections to the Argon proxy; try again later", "", ""}));
      auto sock = std::make_shared<tcp::socket>(std::move(socket));
      asio::async_write(*sock, asio::buffer(*msg), [sock, msg](auto, auto) {});
      continue;
    }
    auto session = std::make_shared<Session>(context, std::move(socket));
    {
      std::lock_guard l(context->sessions_mu);
      context->sessions.insert(session);
    }
    ++context->open_connections;
    asio::co_spawn(loop, session->run(), [context, session](std::exception_ptr) {
      // After a burst, hand the buffers of closed connections back to the OS instead of keeping
      // them in malloc's per-thread arenas.
      if (--context->open_connections == 0) ::malloc_trim(0);
    });
  }
}

// Closes a loop's pooled HTTP backends idle too long, on that loop, until the proxy stops.
awaitable<void> sweep_http_pool(std::shared_ptr<ProxyContext> context, std::size_t loop) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!context->stopping) {
    timer.expires_after(kJanitorInterval);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    context->http_pools[loop]->sweep();
  }
  context->http_pools[loop]->clear();
}

awaitable<void> ProxyServer::Loops::janitor(std::shared_ptr<ProxyContext> context) {
  while (!context->stopping) {
    janitor_timer.expires_after(kJanitorInterval);
    boost::system::error_code ec;
    co_await janitor_timer.async_wait(asio::redirect_error(use_awaitable, ec));
    context->registry.prune(context->options.idle_endpoint_retention);
  }
}

ProxyServer::ProxyServer(ProxyOptions options, std::shared_ptr<TlsContext> tls,
                         compute::EndpointResolver& resolver, const Clock& clock)
    : context_(std::make_shared<ProxyContext>(std::move(options), std::move(tls), resolver, clock)),
      loops_(std::make_unique<Loops>(
          static_cast<int>(std::max(1u, std::thread::hardware_concurrency())))) {
  loops_->admin =
      std::make_unique<AdminPool>(loops_->housekeeping.get_executor(), context_->options.admin_user,
                                  context_->options.admin_timeout);
  context_->admin = loops_->admin.get();
  context_->blocking = &loops_->blocking;
  for (auto& loop : loops_->connections) {
    context_->http_pools.push_back(std::make_unique<HttpPool>(*loop));
  }
}

ProxyServer::~ProxyServer() {
  stop();
  // After the threads are joined nothing runs on the loops: the admin pool's sockets can go, and
  // the connections still on the loops are destroyed with them.
  loops_->join();
  loops_->admin->stop();
  for (auto& pool : context_->http_pools) pool->clear();  // their sockets before their loops
  loops_.reset();
}

Result<int> ProxyServer::listen() {
  const auto& o = context_->options;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(o.listen_host, ec);
  if (ec)
    return fail(ErrorCode::kBadRequest,
                fmt::format("invalid --proxy-listen host {}", o.listen_host));
  tcp::endpoint ep(addr, static_cast<unsigned short>(o.listen_port));
  auto& a = loops_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return fail(ErrorCode::kUnavailable, fmt::format("cannot listen on {}:{} for the proxy: {}",
                                                     o.listen_host, o.listen_port, ec.message()));
  }
  return static_cast<int>(a.local_endpoint().port());
}

void ProxyServer::start() {
  loops_->start();
  auto& hk = loops_->housekeeping;
  asio::co_spawn(hk, loops_->accept_loop(context_), asio::detached);
  asio::co_spawn(hk, loops_->janitor(context_), asio::detached);
  asio::co_spawn(hk, loops_->admin->sweep(), asio::detached);
  for (std::size_t i = 0; i < loops_->connections.size(); ++i) {
    asio::co_spawn(*loops_->connections[i], sweep_http_pool(context_, i), asio::detached);
  }
}

void ProxyServer::stop() {
  if (context_->stopping.exchange(true)) return;
  asio::post(loops_->housekeeping, [loops = loops_.get()] {
    boost::system::error_code ec;
    loops->acceptor.close(ec);
    loops->janitor_timer.cancel();
    loops->admin->stop();
  });
  std::set<std::shared_ptr<Session>> all;
  {
    std::lock_guard l(context_->sessions_mu);
    all = context_->sessions;
  }
  for (const auto& s : all) s->terminate("terminating connection: Argon is shutting down");
}

void ProxyServer::gate(const std::string& endpoint_id) { context_->registry.gate(endpoint_id); }

void ProxyServer::ungate(const std::string& endpoint_id) { context_->registry.ungate(endpoint_id); }

void ProxyServer::set_held(const std::set<std::string>& endpoint_ids) {
  context_->registry.set_held(endpoint_ids);
}

void ProxyServer::terminate(const std::string& endpoint_id, const std::string& reason) {
  const auto victims = context_->registry.sessions_of(endpoint_id);
  for (const auto& s : victims) s->terminate(reason);
  // Then the idle HTTP backends, each on its loop: posted after the requests' terminate(), so a
  // request that ends before it sees the reason and pools nothing, and one that pooled is dropped.
  for (std::size_t i = 0; i < loops_->connections.size(); ++i) {
    asio::post(*loops_->connections[i], [pool = context_->http_pools[i].get(), endpoint_id] {
      pool->drop_endpoint(endpoint_id);
    });
  }
  if (victims.empty()) return;
  // Bounded wait for them to be gone, so the caller may stop the compute behind them. A session
  // closes within a loop's turn, usually well under a millisecond, and a restore's clients wait
  // for this: look often.
  const auto deadline = std::chrono::steady_clock::now() + kTerminateWait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!context_->registry.any_joined(endpoint_id, victims)) return;
    std::this_thread::sleep_for(1ms);
  }
  spdlog::warn("proxy: connections of endpoint {} still closing after 5 s", endpoint_id);
}

void ProxyServer::prepare(const std::filesystem::path& socket_dir,
                          const std::vector<std::string>& roles) {
  // Before start() (a restore run again at argond's start) or while stopping, nothing would
  // serve the lookups: the first logins read the verifiers themselves.
  AdminPool* admin = context_->admin;
  if (!admin || !loops_->running || context_->stopping) return;
  // The lookups run on the admin pool's loop; each leaves its verifier in the role cache (and
  // the pool an idle admin session to that compute). A few roles at most: the rest, if a branch
  // has more, are looked up by their first login as usual.
  constexpr std::size_t kMaxRoles = 16;
  std::vector<std::future<Result<RoleSecret>>> lookups;
  for (std::size_t i = 0; i < roles.size() && i < kMaxRoles; ++i) {
    lookups.push_back(asio::co_spawn(admin->executor(), admin->role_secret(socket_dir, roles[i]),
                                     asio::use_future));
  }
  const auto deadline = std::chrono::steady_clock::now() + kPrepareWait;
  for (auto& f : lookups) {
    if (f.wait_until(deadline) != std::future_status::ready) {
      spdlog::info("proxy: the verifiers on {} were not read within {} ms; first logins read them",
                   socket_dir.string(), kPrepareWait.count());
      return;
    }
  }
}

std::map<std::string, compute::EndpointActivity> ProxyServer::activity() const {
  return context_->registry.activity();
}

}  // namespace argon::proxy
