// reset_branch (Neon: create_timeline; POST /branches/{id}/restore from another branch's head): the
// branch keeps its id and endpoints and gets a consistent copy of the source's current state. The
// copy is built beside it; then its clients are gated and told why, its compute stops, the two
// directories are exchanged atomically, the old data goes to the preserve branch (or away), and the
// compute starts again if it ran. Interrupted anywhere, it runs again from where it stopped (the
// copy's marker names this operation).
#include <fmt/format.h>

#include "common/crash_point.h"
#include "common/pg_conn.h"
#include "ops/action.h"
#include "ops/action_env.h"
#include "ops/actions/actions.h"

namespace argon::ops {
namespace {

using catalog::Branch;
using catalog::Tx;

class ResetBranch final : public TypedAction<params::ResetBranch> {
 public:
  using TypedAction::TypedAction;

 private:
  struct Loaded {
    std::optional<BranchRuntime> branch;
    std::optional<Branch> source;
  };

  Result<Outcome> execute(catalog::Operation& op, const params::ResetBranch& p) override {
    ARGON_ASSIGN_OR_RETURN(Loaded loaded, env_.catalog.transact([&](Tx& tx) -> Result<Loaded> {
      return Loaded{ActionEnv::load_runtime(tx, op.project_id, op.branch_id.value_or("")),
                    tx.get_branch(op.project_id, p.source_branch_id)};
    }));
    if (!loaded.branch) return Outcome::kSkipped;
    const BranchRuntime& rt = *loaded.branch;
    const Branch& branch = rt.branch;
    bool serve = env_.computes.running(branch.id);
    for (const auto& ep : rt.endpoints)
      serve |= !ep.disabled && ep.current_state == catalog::endpoint_state::kActive;
    // Gated by this run only: a re-run after the exchange (a crash) finds no connections and gates
    // nothing, so it must lift nothing either, or it would lift another operation's gate. Clients
    // arriving meanwhile wait anyway: their start_compute waits for this operation (scheduler.h).
    std::vector<std::string> fenced;

    std::optional<std::string> lsn;
    if (!env_.storage.reset_exchanged(branch.id, op.id)) {
      auto captured = capture(op, rt, p.source_branch_id, loaded.source);
      if (!captured) {
        abandon(op, branch, p);
        return std::unexpected(captured.error());
      }
      lsn = *captured;
      crash_point("reset.captured");
      fenced = ids_of(rt.endpoints);
      env_.fence(
          fenced,
          fmt::format("terminating connection: branch {} was reset from branch {}; reconnect to "
                      "reach its new data",
                      branch.name, loaded.source->name));
      Status st = env_.stop_compute(branch.id);
      if (st) st = env_.storage.exchange_reset(branch.id);
      if (!st) {
        env_.unfence(fenced);
        return std::unexpected(st.error());
      }
      crash_point("reset.exchanged");
    }
    // The compute first, so the gate lifts as soon as it accepts; moving or removing the old data
    // (a directory the size of the database) happens after, while clients are back.
    Status st = serve ? env_.ensure_compute(rt) : Status{};
    env_.unfence(fenced);
    ARGON_RETURN_IF_ERROR(st);
    crash_point("reset.restarted");
    ARGON_RETURN_IF_ERROR(env_.storage.finish_reset(branch.id, p.preserve_branch_id));
    ARGON_RETURN_IF_ERROR(
        env_.catalog.run([&](Tx& tx) { return record(tx, op.project_id, branch.id, lsn, p); }));
    return Outcome::kDone;
  }

  // The source's current state into branches/.reset-<id>; the LSN it was captured at when it ran.
  Result<std::optional<std::string>> capture(const catalog::Operation& op, const BranchRuntime& rt,
                                             const std::string& source_id,
                                             const std::optional<Branch>& source) {
    if (!source) {
      return fail(ErrorCode::kConflict,
                  fmt::format("branch {}, the source of the reset, no longer exists", source_id));
    }
    const auto src = env_.storage.branch_pgdata(source->id);
    if (!env_.computes.running(source->id)) {
      ARGON_RETURN_IF_ERROR(env_.storage.capture_reset_from_stopped(rt.branch.id, src, op.id));
      return std::optional<std::string>();
    }
    ARGON_ASSIGN_OR_RETURN(auto conn, PgConn::connect(env_.computes.admin_conninfo(source->id)));
    ARGON_ASSIGN_OR_RETURN(auto info, env_.storage.capture_reset_from_running(
                                          rt.branch.id, src, conn, rt.pg_major, op.id));
    return std::optional<std::string>(info.stop_lsn);
  }

  // The capture failed: its copy goes, and so does the preserve branch the API made for the old
  // data (its children come back to the branch).
  void abandon(const catalog::Operation& op, const Branch& branch, const params::ResetBranch& p) {
    log_if_cleanup_failed(env_.storage.abandon_reset(branch.id),
                          "remove the copy of a reset that failed");
    if (!p.preserve_branch_id) return;
    log_if_cleanup_failed(env_.catalog.run([&](Tx& tx) -> Status {
      for (auto child : tx.list_branches(op.project_id)) {
        if (child.parent_id == *p.preserve_branch_id) {
          child.parent_id = branch.id;
          ARGON_RETURN_IF_ERROR(tx.put_branch(child));
        }
      }
      return tx.delete_branch_row(*p.preserve_branch_id);
    }),
                          "remove the preserve branch of a reset that failed");
  }

  // The branch is ready with its new data (its TTL restarts); so is the preserve branch.
  Status record(Tx& tx, const std::string& project_id, const std::string& branch_id,
                const std::optional<std::string>& lsn, const params::ResetBranch& p) {
    const int64_t now = env_.clock.now_ms();
    if (auto b = tx.get_branch(project_id, branch_id)) {
      b->parent_timestamp = now;
      if (lsn) b->parent_lsn = lsn;
      if (b->ttl_interval_seconds) b->expires_at = now + *b->ttl_interval_seconds * 1000;
      b->current_state = catalog::branch_state::kReady;
      b->pending_state.reset();
      b->state_changed_at = b->updated_at = now;
      ARGON_RETURN_IF_ERROR(tx.put_branch(*b));
      const bool running = env_.computes.running(b->id);
      for (auto ep : tx.list_branch_endpoints(b->id)) {
        set_serving(ep, running, now);
        ARGON_RETURN_IF_ERROR(tx.put_endpoint(ep));
      }
    }
    if (p.preserve_branch_id) {
      if (auto pb = tx.get_branch(project_id, *p.preserve_branch_id)) {
        pb->current_state = catalog::branch_state::kReady;
        pb->pending_state.reset();
        pb->state_changed_at = pb->updated_at = now;
        ARGON_RETURN_IF_ERROR(tx.put_branch(*pb));
      }
    }
    return {};
  }
};

}  // namespace

std::unique_ptr<Action> make_reset_branch(ActionEnv& env) {
  return std::make_unique<ResetBranch>(env);
}

}  // namespace argon::ops
