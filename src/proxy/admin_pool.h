// The proxy's admin sessions to computes, for reading a role's current SCRAM verifier before a
// client authenticates. A few idle sessions are kept per compute (kAdminPoolPerCompute), which
// saves a backend start per client login; one idle longer than kAdminIdleLimit, or whose compute
// closed it, is closed by sweep(). Every wait on an admin socket has a deadline, so a compute that
// stops answering costs a login its error, not a coroutine and a descriptor forever.
//
// Everything here runs on one single-threaded executor (the proxy's housekeeping loop): the pool
// needs no lock, and a socket's deadline closes it on the thread that waits on it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "proxy/compute_login.h"

namespace argon::proxy {

class AdminPool {
 public:
  AdminPool(boost::asio::any_io_executor executor, std::string admin_user,
            std::chrono::milliseconds deadline);

  // The role's verifier on the compute behind `socket_dir`. Callable from any executor: the work
  // runs on the pool's, and the caller resumes on its own.
  boost::asio::awaitable<Result<RoleSecret>> role_secret(std::filesystem::path socket_dir,
                                                         std::string role);
  // Closes stale idle sessions every kAdminSweepInterval until stop().
  boost::asio::awaitable<void> sweep();
  // Ends sweep() and closes every idle session. Call on the pool's executor or after its thread
  // has stopped.
  void stop();
  // Idle sessions held now (for tests and metrics); on the pool's executor only.
  std::size_t idle_count() const;

  boost::asio::any_io_executor executor() const { return executor_; }

 private:
  using Socket = boost::asio::local::stream_protocol::socket;
  struct Idle {
    std::unique_ptr<Socket> socket;
    std::chrono::steady_clock::time_point since;
  };
  boost::asio::awaitable<Result<RoleSecret>> lookup(std::filesystem::path socket_dir,
                                                    std::string role);
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
  std::map<std::filesystem::path, std::vector<Idle>> idle_;
};

}  // namespace argon::proxy
