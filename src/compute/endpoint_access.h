// The two seams between the connection proxy and the operations engine. They meet here, in compute,
// because both may depend on it and neither on the other:
// - EndpointResolver (the engine implements it): which compute serves an endpoint, starting it when
//   it is suspended (wake on connect).
// - ConnectionControl (the proxy implements it): what the engine does to live client connections
//   around a change of compute (gate, terminate, ungate) and the activity autosuspend reads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace argon::compute {

// In a compute's socket directory, when argond started it with argon_roles
// (src/compute/argon_roles): a counter that rises with every committed role change, so the proxy
// knows a verifier it holds is still current without asking (proxy/role_cache.h). Only the running
// postmaster's own file is there: argond removes any older one before it starts the compute.
inline constexpr std::string_view kRoleGenerationFile = "argon_roles.gen";

struct ComputeTarget {
  std::string endpoint_id;
  std::string project_id;
  std::string branch_id;
  std::filesystem::path socket_dir;  // the compute's private unix-socket directory
};

class EndpointResolver {
 public:
  virtual ~EndpointResolver() = default;
  // The compute serving the endpoint when it runs. std::nullopt while it is being started: the
  // first call asks for one start and every later call shares it, however many clients wait.
  // Errors: unknown or deleted endpoint (kNotFound), disabled endpoint (kForbidden), a start that
  // failed (kUnavailable). Cheap: callers poll it while they wait.
  virtual Result<std::optional<ComputeTarget>> wake(std::string_view endpoint_id) = 0;
  // What wake() would answer for a serving endpoint, from memory only: a non-blocking lookup the
  // proxy may call on its I/O threads. std::nullopt when it does not know for sure (then wake()).
  virtual std::optional<ComputeTarget> serving_now(std::string_view endpoint_id) = 0;
};

struct EndpointActivity {
  int connections = 0;              // client connections open now
  std::int64_t last_active_ms = 0;  // last time a connection opened or closed
};

class ConnectionControl {
 public:
  virtual ~ConnectionControl() = default;
  // New connections to the endpoint wait (bounded) until ungate(); gates nest by count. For the
  // fences of one action run, paired within it.
  virtual void gate(const std::string& endpoint_id) = 0;
  virtual void ungate(const std::string& endpoint_id) = 0;
  // The endpoints whose new connections wait because the catalog says they are being switched
  // (Endpoint::switching_op); replaces the previous set, so it is a copy of catalog state, never a
  // count a crash could leave unpaired.
  virtual void set_held(const std::set<std::string>& endpoint_ids) = 0;
  // Closes every live connection of the endpoint with SQLSTATE 57P01 and `reason` as the message;
  // returns once they are closed (bounded by a few seconds).
  virtual void terminate(const std::string& endpoint_id, const std::string& reason) = 0;
  // Before connections are switched to the compute behind `socket_dir` (one a restore or a reset
  // started beside the serving one): reads what the first logins will need from it (the verifiers
  // of `roles`), so the first connections after the switch cost no more than the next ones. Best
  // effort; returns within a second or two.
  virtual void prepare(const std::filesystem::path& socket_dir,
                       const std::vector<std::string>& roles) = 0;
  virtual std::map<std::string, EndpointActivity> activity() const = 0;
};

}  // namespace argon::compute
