// create_branch (Neon: create_timeline): a new branch's data directory, from the template cluster
// (a new project's first branch, whose roles and databases are then created), from its parent's
// current state (a consistent capture when the parent runs, a plain clone when it is stopped), or
// from a point of its parent's history (a base image recovered from the parent's archive:
// ActionEnv::build_at_point). A failure removes the directory, the branch and its endpoints; the
// later operations on them are skipped.
#include <fmt/format.h>

#include "common/pg_conn.h"
#include "ops/action.h"
#include "ops/action_env.h"
#include "ops/actions/actions.h"
#include "ops/cluster_config.h"

namespace argon::ops {
namespace {

using catalog::Branch;
using catalog::Tx;
using Source = params::CreateBranch::Source;

class CreateBranch final : public TypedAction<params::CreateBranch> {
 public:
  using TypedAction::TypedAction;

 private:
  struct Loaded {
    std::optional<BranchRuntime> branch;
    std::optional<Branch> parent;
  };

  Result<Outcome> execute(catalog::Operation& op, const params::CreateBranch& p) override {
    ARGON_ASSIGN_OR_RETURN(Loaded loaded, env_.catalog.transact([&](Tx& tx) -> Result<Loaded> {
      Loaded l{ActionEnv::load_runtime(tx, op.project_id, op.branch_id.value_or(""), true),
               std::nullopt};
      if (l.branch && l.branch->branch.parent_id)
        l.parent = tx.get_branch(op.project_id, *l.branch->branch.parent_id, true);
      return l;
    }));
    if (!loaded.branch || loaded.branch->branch.deleted) return Outcome::kSkipped;
    const BranchRuntime& rt = *loaded.branch;
    ARGON_ASSIGN_OR_RETURN(const PgInstall* pg, env_.install(rt.pg_major));

    std::optional<std::string> lsn;
    Status st = p.source == Source::kTemplate ? from_template(rt, *pg)
                : p.point_lsn || p.point_time ? from_history(rt, loaded.parent, p, lsn)
                                              : from_parent(rt, loaded.parent, *pg, lsn);
    if (!st) {
      env_.discard_branch(rt.branch.id);
      return std::unexpected(st.error());
    }
    ARGON_RETURN_IF_ERROR(env_.mark_branch_ready(op.project_id, rt.branch.id, lsn));
    return Outcome::kDone;
  }

  Status from_template(const BranchRuntime& rt, const PgInstall& pg) {
    ARGON_RETURN_IF_ERROR(env_.storage.ensure_template(pg));
    ARGON_RETURN_IF_ERROR(
        env_.storage.create_branch_from_template(rt.branch.id, pg.major, rt.history()));
    ARGON_RETURN_IF_ERROR(env_.ensure_compute(rt));
    return ClusterConfig(env_).initialize(rt.branch);
  }

  Status from_parent(const BranchRuntime& rt, const std::optional<Branch>& parent,
                     const PgInstall& pg, std::optional<std::string>& lsn) {
    if (!parent) return fail(ErrorCode::kConflict, "parent branch no longer exists");
    const auto src = env_.storage.branch_pgdata(parent->id);
    if (!env_.computes.running(parent->id)) {
      ARGON_RETURN_IF_ERROR(
          env_.storage.create_branch_from_stopped(rt.branch.id, src, rt.history()));
      return {};
    }
    ARGON_ASSIGN_OR_RETURN(auto conn, PgConn::connect(env_.computes.admin_conninfo(parent->id)));
    ARGON_ASSIGN_OR_RETURN(auto info, env_.storage.create_branch_from_running(
                                          rt.branch.id, src, conn, pg.major, rt.history()));
    lsn = info.stop_lsn;
    return {};
  }

  Status from_history(const BranchRuntime& rt, const std::optional<Branch>& parent,
                      const params::CreateBranch& p, std::optional<std::string>& lsn) {
    if (!parent) return fail(ErrorCode::kConflict, "parent branch no longer exists");
    const auto point = point_of(p.point_lsn, p.point_time);
    if (!point.lsn && !point.time)
      return fail(ErrorCode::kInternal, "create_branch: unreadable point in its parameters");
    ARGON_ASSIGN_OR_RETURN(auto parent_rt,
                           env_.runtime_of(rt.branch.project_id, parent->id, "the parent branch"));
    ARGON_ASSIGN_OR_RETURN(uint64_t at,
                           env_.build_at_point(parent_rt, point, ActionEnv::PointBuild::kBranch,
                                               rt.branch.id, "", rt.history()));
    lsn = storage::format_lsn(at);
    return {};
  }
};

}  // namespace

std::unique_ptr<Action> make_create_branch(ActionEnv& env) {
  return std::make_unique<CreateBranch>(env);
}

}  // namespace argon::ops
