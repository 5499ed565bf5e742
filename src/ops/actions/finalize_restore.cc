// finalize_restore (Neon: swap_binding_id): the restored branch N takes the target T's place
// (ARCHITECTURE.md §4). Everything slow happens while T keeps serving: N's data is complete
// (restore_branch) and its compute is started here, on its private socket, ready to accept. Only
// then the swap, the one outage a client sees: T's endpoints are marked switching in the catalog
// (the proxy holds their new connections), their clients are told why and disconnected, the
// endpoints are bound to N together with T's name and flags in one catalog transaction that also
// ends the switching, and the proxy lets connections through to N. T's compute stops last, so no
// connection made after the operation finished reaches T's data, and at once: an immediate
// shutdown, with no checkpoint that the operation (and the next restore) would wait for; T, now
// the replaced branch, recovers from its WAL when it next starts. Idempotent: after a crash the
// swap is either done (only T's compute is left to stop) or not begun (the switching mark, if set,
// holds connections until this runs again).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "common/crash_point.h"
#include "ops/action.h"
#include "ops/action_env.h"
#include "ops/actions/actions.h"

namespace argon::ops {
namespace {

using catalog::Branch;
using catalog::Tx;

class FinalizeRestore final : public TypedAction<params::FinalizeRestore> {
 public:
  using TypedAction::TypedAction;

 private:
  struct Loaded {
    std::optional<BranchRuntime> restored;
    std::optional<Branch> target;
    std::vector<catalog::Endpoint> endpoints;  // the target's
  };

  Result<Outcome> execute(catalog::Operation& op, const params::FinalizeRestore& p) override {
    ARGON_ASSIGN_OR_RETURN(Loaded loaded, env_.catalog.transact([&](Tx& tx) -> Result<Loaded> {
      return Loaded{ActionEnv::load_runtime(tx, op.project_id, op.branch_id.value_or("")),
                    tx.get_branch(op.project_id, p.target_branch_id),
                    tx.list_branch_endpoints(p.target_branch_id)};
    }));
    if (!loaded.restored) return Outcome::kSkipped;
    BranchRuntime& restored = *loaded.restored;
    if (restored.branch.restore_status == std::string("finalized")) {
      ARGON_RETURN_IF_ERROR(env_.stop_compute(p.target_branch_id, kStopNow));
      return Outcome::kDone;
    }
    if (!loaded.target)
      return fail(ErrorCode::kConflict,
                  fmt::format("target branch {} no longer exists", p.target_branch_id));
    const Branch& target = *loaded.target;
    bool serve = false;
    for (const auto& ep : loaded.endpoints) {
      serve |= !ep.disabled && (ep.current_state == catalog::endpoint_state::kActive ||
                                env_.computes.running(target.id));
    }
    if (serve) {
      // N's compute runs with the settings of the endpoints it is about to receive.
      restored.endpoints = loaded.endpoints;
      const auto reading = env_.carry_page_cache(env_.storage.branch_pgdata(restored.branch.id),
                                                 env_.storage.branch_pgdata(target.id));
      ARGON_RETURN_IF_ERROR(env_.ensure_compute(restored));
      env_.warm_up(restored.branch.id, restored.branch.id);
    }
    crash_point("swap.new_started");
    const auto ids = ids_of(loaded.endpoints);
    // The swap is the clients' outage: each step's time goes to the log.
    using Clock = std::chrono::steady_clock;
    const auto began = Clock::now();
    auto ms_since = [](Clock::time_point t) {
      return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
    };
    ARGON_RETURN_IF_ERROR(enter_switching(op.id, target.id));
    const double gated = ms_since(began);
    crash_point("swap.gated");
    env_.terminate(
        ids,
        fmt::format("terminating connection: branch {} was restored from a snapshot; reconnect to "
                    "reach the restored data",
                    target.name));
    const double terminated = ms_since(began);
    crash_point("swap.terminated");
    ARGON_RETURN_IF_ERROR(env_.catalog.run(
        [&](Tx& tx) { return swap(tx, op.project_id, restored.branch.id, target.id, p); }));
    const double swapped = ms_since(began);
    crash_point("swap.swapped");
    ARGON_RETURN_IF_ERROR(env_.sync_holds());
    spdlog::info(
        "restore onto {}: clients held {:.1f} ms (gated at {:.1f}, terminated at {:.1f}, bound at "
        "{:.1f} ms)",
        target.id, ms_since(began), gated, terminated, swapped);
    crash_point("swap.ungated");
    ARGON_RETURN_IF_ERROR(env_.stop_compute(target.id, kStopNow));
    return Outcome::kDone;
  }

  // The target's endpoints are being switched by this operation: in the catalog first, so that a
  // crash from here on still holds them at the next start, then in the proxy. (A failed swap
  // leaves the mark; the operation's end clears it, Engine::on_finished.)
  Status enter_switching(const std::string& op_id, const std::string& target_id) {
    ARGON_RETURN_IF_ERROR(env_.catalog.run([&](Tx& tx) -> Status {
      for (auto ep : tx.list_branch_endpoints(target_id)) {
        ep.switching_op = op_id;
        ARGON_RETURN_IF_ERROR(tx.put_endpoint(ep));
      }
      return {};
    }));
    return env_.sync_holds();
  }

  // N takes T's name, flags and endpoints; T becomes "<name> (old)" (or the name asked for).
  Status swap(Tx& tx, const std::string& project_id, const std::string& restored_id,
              const std::string& target_id, const params::FinalizeRestore& p) {
    auto n = tx.get_branch(project_id, restored_id);
    auto t = tx.get_branch(project_id, target_id);
    if (!n || !t)
      return fail(ErrorCode::kConflict, "the restored or the target branch was deleted meanwhile");
    const int64_t now = env_.clock.now_ms();
    const std::string name = t->name;
    if (p.old_name) {
      t->name = *p.old_name;
    } else {
      // "<name> (old)"; a second restore of the same branch gets "(old 2)", and so on, so that
      // every branch name stays unambiguous.
      const auto branches = tx.list_branches(project_id);
      auto taken = [&](const std::string& candidate) {
        for (const auto& other : branches) {
          if (other.name == candidate && other.id != t->id) return true;
        }
        return false;
      };
      t->name = name + " (old)";
      for (int i = 2; taken(t->name); ++i) t->name = fmt::format("{} (old {})", name, i);
    }
    n->name = name;
    n->is_default = t->is_default;
    n->is_protected = t->is_protected;
    n->expires_at = t->expires_at;
    n->restore_status = "finalized";
    n->restored_as = t->id;
    t->is_default = false;
    t->is_protected = false;
    t->expires_at.reset();
    n->updated_at = t->updated_at = now;
    ARGON_RETURN_IF_ERROR(tx.put_branch(*t));
    ARGON_RETURN_IF_ERROR(tx.put_branch(*n));
    const bool running = env_.computes.running(n->id);
    for (auto ep : tx.list_branch_endpoints(t->id)) {
      ep.branch_id = n->id;
      ep.switching_op.reset();  // switched: new connections reach the restored branch
      set_serving(ep, running, now);
      ARGON_RETURN_IF_ERROR(tx.put_endpoint(ep));
    }
    return {};
  }
};

}  // namespace

std::unique_ptr<Action> make_finalize_restore(ActionEnv& env) {
  return std::make_unique<FinalizeRestore>(env);
}

}  // namespace argon::ops
