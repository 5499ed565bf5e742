// Wake on connect, single-flight per endpoint. The proxy polls `wake` while a client waits: if the
// endpoint's compute runs it answers its socket directory; otherwise the first call queues one
// start_compute and remembers it in memory, so the other waiting clients share it without reading
// the catalog, and its outcome (or failure message) reaches every waiter.
//
// A serving endpoint's answer is remembered with the catalog's generation() read before it, and
// serving_now() gives it again while the catalog has not changed and the same compute (the same
// socket directory) still runs: so the usual connection (and every SQL-over-HTTP request) finds its
// compute without a catalog read or a thread hop, and anything that could change the answer (a
// restore's switch, a suspend, a disable, a deletion: all catalog writes; a reset's swap of the
// branch's compute) makes the next connection read the catalog again.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "compute/endpoint_access.h"
#include "ops/action_env.h"
#include "ops/planner.h"

namespace argon::ops {

class WakeCoordinator {
 public:
  WakeCoordinator(ActionEnv& env, const Planner& planner, std::function<void()> notify)
      : env_(env), planner_(planner), notify_(std::move(notify)) {}

  // compute::EndpointResolver::wake.
  Result<std::optional<compute::ComputeTarget>> wake(std::string_view endpoint_id);
  // compute::EndpointResolver::serving_now.
  std::optional<compute::ComputeTarget> serving_now(std::string_view endpoint_id);
  // A start_compute ended: the clients waiting for it learn how.
  void note_finished(const catalog::Operation& op);

 private:
  struct Pending {
    std::string op_id;
    bool finished = false;
    std::optional<std::string> error;
    std::chrono::steady_clock::time_point checked_at;  // last catalog check while pending
  };

  // The endpoint's compute when it runs and may be reached now (not being switched).
  std::optional<compute::ComputeTarget> serving(const catalog::Endpoint& ep) const;

  ActionEnv& env_;
  const Planner& planner_;
  const std::function<void()> notify_;
  // Starts that wake() asked for, by endpoint id; never held while taking the catalog's lock,
  // except inside the transaction that submits a start (so two clients cannot both submit).
  std::mutex mu_;
  std::map<std::string, Pending, std::less<>> pending_;  // guarded by mu_
  struct Known {
    compute::ComputeTarget target;
    std::uint64_t generation = 0;
  };
  std::map<std::string, Known, std::less<>> known_;  // serving endpoints; guarded by mu_
};

}  // namespace argon::ops
