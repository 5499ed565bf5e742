// The proxy's admin sessions to computes, for reading a role's current SCRAM verifier before a
// client authenticates. At most kAdminSessionsPerCompute sessions to one compute exist at once
// (more lookups wait for one, bounded by the deadline), so a burst of logins or HTTP queries never
// spends the compute's connection slots on the proxy; the idle ones are kept, which saves a backend
// start per client login; one idle longer than kAdminIdleLimit, or whose compute closed it, is
// closed by sweep(). Every wait on an admin socket has a deadline, so a compute that stops
// answering costs a login its error, not a coroutine and a descriptor forever.
//
// Lookups of one role on one compute are asked one at a time: those that arrive while one is under
// way wait for it to end and then share the next, so a thousand concurrent requests of one role
// cost two queries, and each caller still gets a verifier read after it asked (a password changed
// before a request arrived counts for it).
//
// Before any of that, a verifier read earlier is used while the compute says no role has changed
// since (role_cache.h), so most logins and HTTP queries ask the compute nothing.
//
// Everything else here runs on one single-threaded executor (the proxy's housekeeping loop): the
// pool needs no lock, and a socket's deadline closes it on the thread that waits on it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "proxy/compute_login.h"
#include "proxy/role_cache.h"

namespace argon::proxy {

class AdminPool {
 public:
  AdminPool(boost::asio::any_io_executor executor, std::string admin_user,
            std::chrono::milliseconds deadline);

  // The role's verifier on the compute behind `socket_dir`. Callable from any executor: a verifier
  // the cache knows is current comes back at once, on the caller's; otherwise the lookup runs on
  // the pool's executor and the caller resumes on its own.
  boost::asio::awaitable<Result<RoleSecret>> role_secret(std::filesystem::path socket_dir,
                                                         std::string role);
  // Closes stale idle sessions every kAdminSweepInterval until stop().
  boost::asio::awaitable<void> sweep();
  // Ends sweep() and closes every idle session. Call on the pool's executor or after its thread
  // has stopped.
  void stop();
  // Idle sessions held now (for tests and metrics); on the pool's executor only.
  std::size_t idle_count() const;
  const RoleCache& cache() const { return cache_; }

  boost::asio::any_io_executor executor() const { return executor_; }

  static constexpr std::size_t kAdminSessionsPerCompute = 4;

 private:
  using Socket = boost::asio::local::stream_protocol::socket;
  struct Idle {
    std::unique_ptr<Socket> socket;
    std::chrono::steady_clock::time_point since;
  };
  // One lookup's answer, shared by the callers that joined it.
  struct Flight {
    explicit Flight(const boost::asio::any_io_executor& executor);
    std::optional<Result<RoleSecret>> result;
    boost::asio::steady_timer done;  // cancelled once `result` is set
  };
  // The lookups of one role on one compute: the one under way, and the one gathering callers.
  struct Lane {
    std::shared_ptr<Flight> running, next;
  };
  // Sessions to one compute: idle ones, how many are in use, and lookups waiting for one.
  struct Compute {
    std::vector<Idle> idle;
    std::size_t busy = 0;
    std::vector<std::shared_ptr<boost::asio::steady_timer>> waiting;
  };
  static boost::asio::awaitable<void> finished(Flight& flight);
  // Runs `role`'s lookup in its lane: joins the gathering one, or becomes it.
  boost::asio::awaitable<Result<RoleSecret>> shared_lookup(std::filesystem::path socket_dir,
                                                           std::string role);
  boost::asio::awaitable<Result<RoleSecret>> lookup(std::filesystem::path socket_dir,
                                                    std::string role);
  // Waits for a session slot on the compute (bounded by the deadline), then holds it.
  boost::asio::awaitable<Status> acquire(const std::filesystem::path& socket_dir);
  void release(const std::filesystem::path& socket_dir);
  // One exchange on `s`: log in first when `fresh`, then the verifier query.
  boost::asio::awaitable<Result<RoleSecret>> ask(Socket& s, bool fresh,
                                                 const std::filesystem::path& socket_dir,
                                                 const std::string& role);
  std::unique_ptr<Socket> take(const std::filesystem::path& socket_dir);
  void put(const std::filesystem::path& socket_dir, std::unique_ptr<Socket> s);

  boost::asio::any_io_executor executor_;
  std::string admin_user_;
  std::chrono::milliseconds deadline_;
  boost::asio::steady_timer sweep_timer_;
  bool stopped_ = false;
  std::map<std::filesystem::path, Compute> computes_;
  std::map<std::pair<std::filesystem::path, std::string>, Lane> lanes_;
  RoleCache cache_;  // thread-safe; the one member touched off the pool's executor
};

}  // namespace argon::proxy
