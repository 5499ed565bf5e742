// reset_branch (Neon: create_timeline; POST /branches/{id}/restore from another branch's head): the
// branch keeps its id and endpoints and gets a consistent copy of the source's current state.
// Everything slow happens while the branch keeps serving its old data: the copy is built beside it
// (branches/.reset-<id>) and, if the branch's compute runs, a second compute is started on the copy
// (in the branch's other socket directory, its data directory given through a link) and logged
// into. Only then the swap, the one outage a client sees: its clients are gated and told why, the
// old compute stops at once (an immediate shutdown, before its directory moves), the two
// directories are exchanged atomically, the copy's compute's link follows its data
// (Computes::relink) and it becomes the branch's (Computes::rekey), and the gate lifts. Then the
// old data goes to the preserve branch (or away).
// Interrupted anywhere, it runs again from where it stopped (the copy's marker names this
// operation); past the exchange, the branch's compute is started on the exchanged directory.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>

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
    // The copy's compute, started beside the branch's, has a name of its own until the swap.
    const std::string beside = env_.storage.reset_dir(branch.id).filename().string();
    // Gated by this run only: a re-run after the exchange (a crash) finds no connections and gates
    // nothing, so it must lift nothing either, or it would lift another operation's gate. Clients
    // arriving meanwhile wait anyway: their start_compute waits for this operation (scheduler.h).
    std::vector<std::string> fenced;
    // Each step's time goes to the log (the clients' outage is the swap's).
    using Clock = std::chrono::steady_clock;
    const auto began = Clock::now();
    Clock::time_point captured_at, prepared_at;  // prepared: the swap begins
    auto ms = [](Clock::time_point from, Clock::time_point to) {
      return std::chrono::duration<double, std::milli>(to - from).count();
    };

    std::optional<std::string> lsn;
    if (!env_.storage.reset_exchanged(branch.id, op.id)) {
      auto captured = capture(op, rt, p, loaded.source);
      if (!captured) {
        abandon(op, branch, p);
        return std::unexpected(captured.error());
      }
      lsn = *captured;
      captured_at = Clock::now();
      crash_point("reset.captured");
      if (serve) {
        // Ready to accept before any client is cut off: the copy's recovery, its start and the
        // first logins happen while the branch serves its old data.
        const auto reading = env_.carry_page_cache(env_.storage.reset_pgdata(branch.id),
                                                   env_.storage.branch_pgdata(branch.id));
        if (Status st = env_.start_beside(rt, beside, env_.storage.reset_pgdata(branch.id)); !st) {
          log_if_cleanup_failed(env_.stop_compute(beside, kStopNow),
                                "stop the compute of a reset's copy that failed to start");
          abandon(op, branch, p);
          return std::unexpected(st.error());
        }
        env_.warm_up(beside, branch.id);
        crash_point("reset.prepared");
      }
      prepared_at = Clock::now();
      // The swap, the clients' only outage: hold and end their connections, exchange the
      // directories (the copy's compute works relative to its data directory, so it follows the
      // rename; so does the old one) and make the copy's compute the branch's.
      fenced = ids_of(rt.endpoints);
      const std::string what =
          p.point_lsn || p.point_time
              ? fmt::format("restored to {} of branch {}",
                            p.point_time ? *p.point_time : "LSN " + *p.point_lsn,
                            loaded.source->name)
              : fmt::format("reset from branch {}", loaded.source->name);
      env_.fence(fenced,
                 fmt::format("terminating connection: branch {} was {}; reconnect to reach its new "
                             "data",
                             branch.name, what));
      // The old compute stops (an immediate shutdown: its clients are gone) before its data
      // directory moves: PostgreSQL writes its control file by the path it was started with, so
      // a checkpoint finishing after the exchange would write into the copy's directory.
      Status st = env_.stop_compute(branch.id, kStopNow);
      if (st) st = env_.storage.exchange_reset(branch.id);
      if (!st) {
        log_if_cleanup_failed(env_.stop_compute(beside, kStopNow),
                              "stop the compute of a reset that failed");
        env_.unfence(fenced);
        return std::unexpected(st.error());
      }
      crash_point("reset.exchanged");
      if (serve) {
        // The copy's compute was given a link as its data directory: it follows the exchange.
        // (Between the two calls it has had no client and no WAL to checkpoint.)
        Status rk = env_.computes.relink(beside, env_.storage.branch_pgdata(branch.id));
        if (rk) rk = env_.computes.rekey(beside, branch.id);
        if (!rk) {
          // Not expected (the old compute has stopped); the branch's compute starts below.
          spdlog::warn("reset of {}: {}", branch.id, rk.error().message);
          log_if_cleanup_failed(env_.stop_compute(beside, kStopNow),
                                "stop the compute of a reset's copy");
        }
      }
    }
    // After a crash past the exchange the copy's compute is gone with the old argond: the branch's
    // compute starts from the exchanged directory (clients wait for this operation meanwhile).
    Status st = serve ? env_.ensure_compute(rt) : Status{};
    env_.unfence(fenced);
    const auto ungated_at = Clock::now();
    ARGON_RETURN_IF_ERROR(st);
    crash_point("reset.restarted");
    ARGON_RETURN_IF_ERROR(env_.storage.finish_reset(branch.id, p.preserve_branch_id));
    if (!fenced.empty()) {
      spdlog::info(
          "reset of {}: captured in {:.0f} ms, the copy's compute ready in {:.0f} ms, clients held "
          "{:.1f} ms, the old data {} in {:.0f} ms",
          branch.id, ms(began, captured_at), ms(captured_at, prepared_at),
          ms(prepared_at, ungated_at), p.preserve_branch_id ? "preserved" : "removed",
          ms(ungated_at, Clock::now()));
    }
    ARGON_RETURN_IF_ERROR(
        env_.catalog.run([&](Tx& tx) { return record(tx, op.project_id, branch.id, lsn, p); }));
    return Outcome::kDone;
  }

  // The source's current state into branches/.reset-<id>, or the point of its history asked for
  // (ActionEnv::build_at_point); the LSN it was captured or branched off at.
  Result<std::optional<std::string>> capture(const catalog::Operation& op, const BranchRuntime& rt,
                                             const params::ResetBranch& p,
                                             const std::optional<Branch>& source) {
    if (!source) {
      return fail(
          ErrorCode::kConflict,
          fmt::format("branch {}, the source of the reset, no longer exists", p.source_branch_id));
    }
    if (p.point_lsn || p.point_time) {
      ARGON_ASSIGN_OR_RETURN(
          auto source_rt, env_.runtime_of(op.project_id, source->id, "the source of the restore"));
      const auto point = point_of(p.point_lsn, p.point_time);
      ARGON_ASSIGN_OR_RETURN(
          uint64_t at, env_.build_at_point(source_rt, point, ActionEnv::PointBuild::kResetCopy,
                                           rt.branch.id, op.id, rt.history()));
      return std::optional<std::string>(storage::format_lsn(at));
    }
    const auto src = env_.storage.branch_pgdata(source->id);
    if (!env_.computes.running(source->id)) {
      ARGON_RETURN_IF_ERROR(
          env_.storage.capture_reset_from_stopped(rt.branch.id, src, op.id, rt.history()));
      return std::optional<std::string>();
    }
    ARGON_ASSIGN_OR_RETURN(auto conn, PgConn::connect(env_.computes.admin_conninfo(source->id)));
    ARGON_ASSIGN_OR_RETURN(
        auto info, env_.storage.capture_reset_from_running(rt.branch.id, src, conn, rt.pg_major,
                                                           op.id, rt.history()));
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
      if (p.point_time) {
        if (auto t = parse_time_span(*p.point_time)) b->parent_timestamp = t->first_us / 1000;
      } else if (p.point_lsn) {
        b->parent_timestamp.reset();  // not known for an LSN (Neon may leave it empty too)
      }
      if (lsn) b->parent_lsn = lsn;
      // Restored to its own past: the state it had is the preserve branch, now its parent (as on
      // Neon, where the backup becomes the restored branch's parent).
      if (p.source_branch_id == b->id && p.preserve_branch_id) b->parent_id = p.preserve_branch_id;
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
