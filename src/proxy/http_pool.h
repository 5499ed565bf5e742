// Idle backend connections kept between SQL-over-HTTP requests, so that a query over HTTP skips
// the backend start (~2.5 ms) as a query on an open connection does. One pool per connection loop,
// used only on that loop's thread (a socket belongs to the loop that opened it), so it needs no
// lock. Keyed by the compute's socket directory as well as endpoint, role and database: a restore's
// new compute never gets a connection to the old one. At most kPerEndpoint idle per endpoint and
// loop (extra ones are closed), none idle longer than kIdleLimit; a connection the compute closed
// (it stopped) is noticed when taken. The engine's terminate() of an endpoint drops them all.
#pragma once

#include <boost/asio/execution_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "proxy/cancel_keys.h"

namespace argon::proxy {

struct PooledBackend {
  std::unique_ptr<boost::asio::local::stream_protocol::socket> socket;
  CancelTarget cancel;  // the compute's key for this backend
};

class HttpPool {
 public:
  static constexpr std::size_t kPerEndpoint = 20;
  static constexpr std::chrono::minutes kIdleLimit{5};

  struct Key {
    std::string endpoint_id;
    std::filesystem::path socket_dir;
    std::string role;
    std::string database;
    auto operator<=>(const Key&) const = default;
  };

  explicit HttpPool(boost::asio::execution_context& loop) : loop_(&loop) {}
  boost::asio::execution_context* loop() const { return loop_; }

  // The most recently used live idle connection for `key`, if any.
  std::optional<PooledBackend> take(const Key& key);
  void put(const Key& key, PooledBackend backend);
  // Closes every idle connection of the endpoint (its compute is being stopped or switched).
  void drop_endpoint(std::string_view endpoint_id);
  // Closes connections idle longer than kIdleLimit (`now` for tests).
  void sweep(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());
  void clear();
  std::size_t idle_count() const;

 private:
  struct Idle {
    PooledBackend backend;
    std::chrono::steady_clock::time_point since;
  };
  std::size_t idle_of(std::string_view endpoint_id) const;

  boost::asio::execution_context* loop_;
  std::map<Key, std::vector<Idle>> idle_;
};

}  // namespace argon::proxy
