// Cancel keys. A client gets a BackendKeyData of the proxy's own; the compute's key stays here, so
// a CancelRequest (which arrives on a new connection, before any endpoint is known) can be passed
// to the compute that runs the query. Thread-safe.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

namespace argon::proxy {

struct CancelTarget {
  std::filesystem::path socket_dir;  // the compute's private socket directory
  std::int32_t process_id = 0;       // the compute's BackendKeyData
  std::int32_t secret_key = 0;
};

using CancelKey = std::pair<std::int32_t, std::int32_t>;  // (process id, secret) the client holds

class CancelKeys {
 public:
  // A fresh random key for the client, remembered until erase().
  CancelKey issue(const CancelTarget& target);
  std::optional<CancelTarget> find(const CancelKey& key) const;
  void erase(const CancelKey& key);

 private:
  mutable std::mutex mu_;
  std::map<CancelKey, CancelTarget> keys_;
};

// Sends the compute's own CancelRequest over its private socket, giving up after `deadline`.
// Like PostgreSQL, it tells the client nothing either way.
boost::asio::awaitable<void> forward_cancel(boost::asio::any_io_executor executor,
                                            CancelTarget target,
                                            std::chrono::milliseconds deadline);

}  // namespace argon::proxy
