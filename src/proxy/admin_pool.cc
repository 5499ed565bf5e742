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

constexpr std::size_t kAdminPoolPerCompute = 4;
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

awaitable<Result<RoleSecret>> AdminPool::role_secret(fs::path socket_dir, std::string role) {
  co_return co_await asio::co_spawn(executor_, lookup(std::move(socket_dir), std::move(role)),
                                    use_awaitable);
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
  auto it = idle_.find(socket_dir);
  const auto now = std::chrono::steady_clock::now();
  while (it != idle_.end() && !it->second.empty()) {
    Idle idle = std::move(it->second.back());
    it->second.pop_back();
    if (now - idle.since < kAdminIdleLimit && still_idle(*idle.socket))
      return std::move(idle.socket);
  }
  return nullptr;
}

void AdminPool::put(const fs::path& socket_dir, std::unique_ptr<Socket> s) {
  if (stopped_) return;
  auto& pool = idle_[socket_dir];  // sweep() closes the old and the dead
  if (pool.size() < kAdminPoolPerCompute)
    pool.push_back({std::move(s), std::chrono::steady_clock::now()});
}

awaitable<void> AdminPool::sweep() {
  while (!stopped_) {
    sweep_timer_.expires_after(kAdminSweepInterval);
    boost::system::error_code ec;
    co_await sweep_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    const auto now = std::chrono::steady_clock::now();
    for (auto it = idle_.begin(); it != idle_.end();) {
      std::erase_if(it->second, [&](Idle& a) {
        return stopped_ || now - a.since >= kAdminIdleLimit || !still_idle(*a.socket);
      });
      it = it->second.empty() ? idle_.erase(it) : std::next(it);
    }
  }
}

void AdminPool::stop() {
  stopped_ = true;
  sweep_timer_.cancel();
  idle_.clear();
}

std::size_t AdminPool::idle_count() const {
  std::size_t n = 0;
  for (const auto& [dir, v] : idle_) n += v.size();
  return n;
}

}  // namespace argon::proxy
