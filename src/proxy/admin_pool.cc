#include "proxy/admin_pool.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>

#include "proxy/deadline.h"

namespace argon::proxy {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::awaitable;
using asio::use_awaitable;
using namespace std::chrono_literals;

namespace {

constexpr auto kAdminIdleLimit = 30s;
constexpr auto kAdminSweepInterval = 2s;

// An idle admin session is never sent anything: readable means the compute closed it or is
// shutting down (a FATAL), so it is of no more use and only holds a descriptor.
template <typename Socket>
bool still_idle(Socket& s) {
  char byte;
  const ssize_t n = ::recv(s.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

AdminPool::AdminPool(asio::any_io_executor executor, std::string admin_user,
                     std::chrono::milliseconds deadline)
    : executor_(executor),
      admin_user_(std::move(admin_user)),
      deadline_(deadline),
      sweep_timer_(executor) {}

AdminPool::Flight::Flight(const asio::any_io_executor& executor)
    : done(executor, asio::steady_timer::time_point::max()) {}

awaitable<Result<RoleSecret>> AdminPool::role_secret(fs::path socket_dir, std::string role) {
  // Taken before the lookup: a change committed after it is read again next time.
  const auto before = cache_.stamp(socket_dir);
  if (before) {
    if (auto known = cache_.find(socket_dir, role, *before)) co_return *known;
  }
  auto secret = co_await asio::co_spawn(executor_, shared_lookup(socket_dir, role), use_awaitable);
  if (secret && before) cache_.remember(socket_dir, role, *before, *secret);
  co_return secret;
}

awaitable<void> AdminPool::finished(Flight& flight) {
  if (flight.result) co_return;
  boost::system::error_code ec;
  co_await flight.done.async_wait(asio::redirect_error(use_awaitable, ec));
}

awaitable<Result<RoleSecret>> AdminPool::shared_lookup(fs::path socket_dir, std::string role) {
  const auto key = std::make_pair(socket_dir, role);
  if (auto gathering = lanes_[key].next) {
    co_await finished(*gathering);
    co_return *gathering->result;
  }
  auto mine = std::make_shared<Flight>(executor_);
  if (auto before = lanes_[key].running) {
    lanes_[key].next = mine;  // later callers join it while `before` runs
    co_await finished(*before);
    lanes_[key].next = nullptr;
  }
  lanes_[key].running = mine;
  try {
    mine->result = co_await lookup(socket_dir, role);
  } catch (const std::exception& e) {
    mine->result = fail(ErrorCode::kInternal, "the proxy's password check failed", e.what());
  }
  mine->done.cancel();
  if (auto it = lanes_.find(key); it != lanes_.end() && it->second.running == mine) {
    it->second.running = nullptr;
    if (!it->second.next) lanes_.erase(it);
  }
  co_return *mine->result;
}

awaitable<Status> AdminPool::acquire(const fs::path& socket_dir) {
  const auto deadline = std::chrono::steady_clock::now() + deadline_;
  for (;;) {
    Compute& c = computes_[socket_dir];
    if (c.busy < kAdminSessionsPerCompute) {
      ++c.busy;
      co_return Status{};
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      co_return fail(ErrorCode::kUnavailable,
                     fmt::format("the endpoint's compute did not answer the proxy's password "
                                 "checks within {} ms; try again",
                                 deadline_.count()),
                     socket_dir.string());
    }
    auto wake = std::make_shared<asio::steady_timer>(executor_, deadline);
    c.waiting.push_back(wake);
    boost::system::error_code ec;
    co_await wake->async_wait(asio::redirect_error(use_awaitable, ec));
    std::erase(computes_[socket_dir].waiting, wake);
  }
}

void AdminPool::release(const fs::path& socket_dir) {
  auto it = computes_.find(socket_dir);
  if (it == computes_.end()) return;
  --it->second.busy;
  auto& waiting = it->second.waiting;
  if (!waiting.empty()) {
    auto first = waiting.front();
    waiting.erase(waiting.begin());
    first->cancel();
  }
}

awaitable<Result<RoleSecret>> AdminPool::ask(Socket& s, bool fresh, const fs::path& socket_dir,
                                             const std::string& role) {
  if (fresh) {
    auto opened = co_await open_admin_session(s, socket_dir, admin_user_);
    if (!opened) co_return std::unexpected(opened.error());
  }
  co_return co_await query_role_secret(s, role);
}

awaitable<Result<RoleSecret>> AdminPool::lookup(fs::path socket_dir, std::string role) {
  if (auto slot = co_await acquire(socket_dir); !slot) co_return std::unexpected(slot.error());
  struct Slot {
    AdminPool& pool;
    const fs::path& dir;
    ~Slot() { pool.release(dir); }
  } slot{*this, socket_dir};
  for (;;) {
    auto s = take(socket_dir);
    const bool pooled = s != nullptr;
    if (!s) s = std::make_unique<Socket>(executor_);
    SocketDeadline limit(*s, deadline_);
    auto secret = co_await ask(*s, !pooled, socket_dir, role);
    if (limit.expired()) {
      co_return fail(ErrorCode::kUnavailable,
                     fmt::format("the endpoint's compute did not answer within {} ms; try again",
                                 deadline_.count()),
                     socket_dir.string());
    }
    if (secret) {
      put(socket_dir, std::move(s));
      co_return secret;
    }
    // A pooled session may have died with its compute; a fresh one's failure is the answer.
    if (!pooled || secret.error().code != ErrorCode::kUnavailable) co_return secret;
  }
}

std::unique_ptr<AdminPool::Socket> AdminPool::take(const fs::path& socket_dir) {
  auto it = computes_.find(socket_dir);
  const auto now = std::chrono::steady_clock::now();
  while (it != computes_.end() && !it->second.idle.empty()) {
    Idle idle = std::move(it->second.idle.back());
    it->second.idle.pop_back();
    if (now - idle.since < kAdminIdleLimit && still_idle(*idle.socket))
      return std::move(idle.socket);
  }
  return nullptr;
}

void AdminPool::put(const fs::path& socket_dir, std::unique_ptr<Socket> s) {
  if (stopped_) return;
  auto& pool = computes_[socket_dir].idle;  // sweep() closes the old and the dead
  if (pool.size() < kAdminSessionsPerCompute)
    pool.push_back({std::move(s), std::chrono::steady_clock::now()});
}

awaitable<void> AdminPool::sweep() {
  while (!stopped_) {
    sweep_timer_.expires_after(kAdminSweepInterval);
    boost::system::error_code ec;
    co_await sweep_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    const auto now = std::chrono::steady_clock::now();
    for (auto it = computes_.begin(); it != computes_.end();) {
      Compute& c = it->second;
      std::erase_if(c.idle, [&](Idle& a) {
        return stopped_ || now - a.since >= kAdminIdleLimit || !still_idle(*a.socket);
      });
      const bool unused = c.idle.empty() && c.busy == 0 && c.waiting.empty();
      it = unused ? computes_.erase(it) : std::next(it);
    }
    cache_.sweep();
  }
}

void AdminPool::stop() {
  stopped_ = true;
  sweep_timer_.cancel();
  for (auto& [dir, c] : computes_) c.idle.clear();
}

std::size_t AdminPool::idle_count() const {
  std::size_t n = 0;
  for (const auto& [dir, c] : computes_) n += c.idle.size();
  return n;
}

}  // namespace argon::proxy
