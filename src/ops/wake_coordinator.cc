#include "ops/wake_coordinator.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace argon::ops {

using catalog::Tx;

void WakeCoordinator::note_finished(const catalog::Operation& op) {
  std::lock_guard l(mu_);
  auto it = pending_.find(op.endpoint_id.value_or(""));
  if (it == pending_.end() || it->second.op_id != op.id) return;
  it->second.finished = true;
  if (op.status == catalog::op_status::kFailed)
    it->second.error = op.error.value_or("start failed");
}

std::optional<compute::ComputeTarget> WakeCoordinator::serving(const catalog::Endpoint& ep) const {
  if (ep.switching_op || ep.current_state != catalog::endpoint_state::kActive) return std::nullopt;
  // The compute's own socket directory: a reset's copy keeps the one it was started in.
  auto socket_dir = env_.computes.socket_dir(ep.branch_id);
  if (!socket_dir) return std::nullopt;
  return compute::ComputeTarget{ep.id, ep.project_id, ep.branch_id, std::move(*socket_dir)};
}

std::optional<compute::ComputeTarget> WakeCoordinator::serving_now(std::string_view endpoint_id) {
  const std::uint64_t generation = env_.catalog.generation();
  std::optional<Known> known;
  {
    std::lock_guard l(mu_);
    auto it = known_.find(endpoint_id);
    if (it == known_.end()) return std::nullopt;
    if (it->second.generation != generation) {
      known_.erase(it);
      return std::nullopt;
    }
    known = it->second;
  }
  // Still that compute: a reset swaps in another one for the branch without a catalog change.
  if (env_.computes.socket_dir(known->target.branch_id) != known->target.socket_dir)
    return std::nullopt;
  return known->target;
}

Result<std::optional<compute::ComputeTarget>> WakeCoordinator::wake(std::string_view endpoint_id) {
  std::optional<Pending> recheck;  // a start that has been pending for a while
  {
    std::lock_guard l(mu_);
    auto it = pending_.find(endpoint_id);
    if (it != pending_.end()) {
      // The start is under way: no catalog read, except once a second to notice an endpoint (or its
      // start) that went away meanwhile.
      const auto now = std::chrono::steady_clock::now();
      if (!it->second.finished && now - it->second.checked_at < std::chrono::seconds(1))
        return std::nullopt;
      if (!it->second.finished) {
        it->second.checked_at = now;
        recheck = it->second;
      } else {
        auto error = it->second.error;
        pending_.erase(it);
        if (error) {
          return fail(
              ErrorCode::kUnavailable,
              fmt::format("could not start the compute for endpoint {}: {}", endpoint_id, *error));
        }
      }
    }
  }
  if (!recheck) {
    // Every connection asks: the usual answer (the compute runs) comes from a read that waits for
    // no writer. Anything else (an error to name, a start to ask for) takes the path below.
    const std::uint64_t generation = env_.catalog.generation();
    auto running = env_.catalog.read([&](Tx& tx) -> Result<std::optional<compute::ComputeTarget>> {
      auto ep = tx.find_endpoint(endpoint_id);
      if (!ep || ep->deleted || ep->disabled) return std::nullopt;
      return serving(*ep);
    });
    if (running && *running) {
      std::lock_guard l(mu_);
      known_.insert_or_assign(std::string(endpoint_id), Known{**running, generation});
      return running;
    }
  }
  std::optional<compute::ComputeTarget> ready;
  bool submitted = false;
  auto st = env_.catalog.run([&](Tx& tx) -> Status {
    auto ep = tx.find_endpoint(endpoint_id);
    if (!ep || ep->deleted) {
      if (recheck) {
        std::lock_guard l(mu_);
        pending_.erase(std::string(endpoint_id));
      }
      return fail(
          ErrorCode::kNotFound,
          fmt::format(
              "endpoint {} does not exist; check the endpoint id in the connection string's "
              "host name or options",
              endpoint_id));
    }
    if (ep->disabled) {
      return fail(
          ErrorCode::kForbidden,
          fmt::format("endpoint {} is disabled; enable it with PATCH /projects/{}/endpoints/{} "
                      "{{\"endpoint\": {{\"disabled\": false}}}}",
                      ep->id, ep->project_id, ep->id));
    }
    // Being switched by a restore: wait (bounded by the proxy) for the branch it is switched to.
    if (ep->switching_op) return {};
    if ((ready = serving(*ep))) return {};
    if (recheck) {
      auto op = tx.get_operation(ep->project_id, recheck->op_id);
      if (op && !op->terminal()) return {};  // still queued or running
    }
    std::lock_guard l(mu_);
    if (auto it = pending_.find(endpoint_id); it != pending_.end()) {
      if (!recheck || it->second.op_id != recheck->op_id)
        return {};         // another client asked a moment ago
      pending_.erase(it);  // its start is gone without a word (its project was deleted): ask again
    }
    ARGON_ASSIGN_OR_RETURN(auto op, planner_.start_endpoint(tx, *ep));
    pending_[ep->id] = Pending{op.id, false, std::nullopt, std::chrono::steady_clock::now()};
    submitted = true;
    return {};
  });
  if (!st) {
    // A start submitted in a transaction that then failed to commit was never queued.
    if (submitted) {
      std::lock_guard l(mu_);
      pending_.erase(std::string(endpoint_id));
    }
    return std::unexpected(st.error());
  }
  if (submitted) {
    spdlog::info("endpoint {}: a connection arrived while suspended; starting its compute",
                 endpoint_id);
    notify_();
  }
  return ready;
}

}  // namespace argon::ops
