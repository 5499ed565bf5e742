// The proxy's view of each endpoint: its open client connections (so the engine can terminate
// them), its gates and restore hold (new connections wait), and the time of its last connection
// (autosuspend reads it through ConnectionControl::activity). Thread-safe.
//
// An entry exists only while it is used. A connection that leaves without ever reaching a compute
// (an unknown `ep-…` name, a start that failed) erases an entry it leaves idle at once; other idle
// entries are erased by prune(), which the proxy runs periodically, once autosuspend has had time
// to read their last activity. So nothing a client sends grows the registry.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "compute/endpoint_access.h"

namespace argon::proxy {

class Session;

class EndpointRegistry {
 public:
  explicit EndpointRegistry(const Clock& clock) : clock_(clock) {}

  // Nesting gates of one action run (ConnectionControl::gate/ungate).
  void gate(const std::string& endpoint_id);
  void ungate(const std::string& endpoint_id);
  // The endpoints the catalog says a restore is switching; replaces the previous set.
  void set_held(const std::set<std::string>& endpoint_ids);

  // Adds the connection to the endpoint unless the endpoint is gated or held (then false: wait).
  bool try_join(const std::string& endpoint_id, const std::shared_ptr<Session>& session);
  // Removes a joined connection. `reached_compute`: it was given a compute (real activity, kept
  // until prune); otherwise an entry it leaves idle goes at once.
  void leave(const std::string& endpoint_id, const std::shared_ptr<Session>& session,
             bool reached_compute);

  std::set<std::shared_ptr<Session>> sessions_of(const std::string& endpoint_id) const;
  // Whether any of `sessions` is still joined to the endpoint.
  bool any_joined(const std::string& endpoint_id,
                  const std::set<std::shared_ptr<Session>>& sessions) const;
  std::map<std::string, compute::EndpointActivity> activity() const;

  // Erases entries with no connection, gate or hold whose last activity is older than
  // `retention`; returns how many.
  std::size_t prune(std::chrono::milliseconds retention);
  std::size_t size() const;

 private:
  struct Entry {
    int gates = 0;
    bool held = false;
    std::int64_t last_active_ms = 0;
    bool served = false;  // a connection reached the endpoint's compute
    std::set<std::shared_ptr<Session>> sessions;
    bool idle() const { return gates == 0 && !held && sessions.empty(); }
  };

  const Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace argon::proxy
