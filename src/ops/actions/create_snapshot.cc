// create_snapshot (Neon: create_timeline on the source branch): a consistent capture of the branch
// into snapshots/<id> (the backup API while its compute runs, a plain clone while it is stopped),
// settled (recovered once to a clean shutdown, with only the WAL a clean start reads), then sealed:
// made read-only, with every file's stamp recorded. So a restore starts its compute with no WAL
// replay, and a snapshot keeps no WAL its source recycles. Where a clone is cheap (reflink, or
// --snapshot-settle after) the operation seals the capture unsettled and finishes; settling comes
// right after, off its path (settle_snapshot_beside, run by ops/snapshot_checks.h), on a copy that
// then takes the capture's place. Its checksums are written after that, off the path too. A
// snapshot asked for at a point in time is accepted only if nothing committed on the branch
// between that point and the capture's end. A failure removes the data and the row: the snapshot
// disappears from the list.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "common/crash_point.h"
#include "common/pg_conn.h"
#include "ops/action.h"
#include "ops/action_env.h"
#include "ops/actions/actions.h"

namespace argon::ops {
namespace {

using catalog::Tx;
using compute::ComputeSpec;
namespace fs = std::filesystem;

// Brings the captured cluster at `pgdata` to a clean shutdown with the source's endpoint settings
// (postgres --single, no socket).
Result<ControlData> settle_cluster(ActionEnv& env, const std::string& snapshot_id,
                                   const catalog::Snapshot& snapshot, const PgInstall& pg,
                                   const fs::path& pgdata) {
  ARGON_ASSIGN_OR_RETURN(
      auto settings, env.catalog.read([&](Tx& tx) -> Result<decltype(ComputeSpec::settings)> {
        auto rt = ActionEnv::load_runtime(tx, snapshot.project_id, snapshot.source_branch_id, true);
        if (!rt || rt->endpoints.empty()) return {};
        return pg_settings_of(rt->endpoints.front().settings_json);
      }));
  ComputeSpec spec;
  spec.id = "snapshot-" + snapshot_id;
  spec.pgdata = pgdata;
  spec.log_file = env.storage.log_path(snapshot_id);
  spec.pg = pg;
  spec.settings = std::move(settings);
  const auto began = std::chrono::steady_clock::now();
  auto control = env.computes.settle(spec, env.options.compute_start_timeout);
  if (control) {
    spdlog::info("snapshot {}: recovered to a clean shutdown in {} ms", snapshot_id,
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - began)
                     .count());
  }
  return control;
}

class CreateSnapshot final : public TypedAction<params::CreateSnapshot> {
 public:
  using TypedAction::TypedAction;

 private:
  struct Loaded {
    std::optional<catalog::Snapshot> snapshot;
    std::optional<catalog::Branch> branch;
    int pg_major = 0;
  };
  struct Captured {
    std::optional<std::string> lsn;
    uint64_t bytes = 0;
  };

  Result<Outcome> execute(catalog::Operation& op, const params::CreateSnapshot& p) override {
    ARGON_ASSIGN_OR_RETURN(Loaded loaded, env_.catalog.transact([&](Tx& tx) -> Result<Loaded> {
      auto project = tx.get_project(op.project_id, true);
      return Loaded{tx.get_snapshot(op.project_id, p.snapshot_id, true),
                    tx.get_branch(op.project_id, op.branch_id.value_or(""), true),
                    project ? project->pg_version : 0};
    }));
    if (!loaded.snapshot || loaded.snapshot->deleted) return Outcome::kSkipped;
    ARGON_ASSIGN_OR_RETURN(const PgInstall* pg, env_.install(loaded.pg_major));
    const int64_t captured_at = env_.clock.now_ms();
    // Set when the snapshot was asked for at a point in time (see verify_no_commit).
    const std::optional<uint64_t> wal_end =
        p.wal_end ? storage::parse_lsn(*p.wal_end) : std::nullopt;
    const auto began = std::chrono::steady_clock::now();
    // A point of the past comes from the branch's history; one that was the branch's state when
    // asked (wal_end) is captured, unless something committed before the capture: then from the
    // history too.
    const bool at_point = p.point_lsn || p.point_time;
    auto captured = at_point && !wal_end
                        ? from_history(op, p, loaded.branch)
                        : capture(p.snapshot_id, *loaded.snapshot, loaded.branch, *pg, wal_end);
    if (at_point && wal_end && !captured && captured.error().code == ErrorCode::kConflict) {
      spdlog::info("snapshot {}: {}; building the point from the branch's history", p.snapshot_id,
                   captured.error().message);
      if (auto st = env_.storage.remove_snapshot(p.snapshot_id); !st) {
        captured = std::unexpected(st.error());
      } else {
        captured = from_history(op, p, loaded.branch);
      }
    }
    const auto was_captured = std::chrono::steady_clock::now();
    if (captured) {
      crash_point("snapshot.captured");
      if (auto st = settle_and_seal(p.snapshot_id, *loaded.snapshot, *pg); !st)
        captured = std::unexpected(st.error());
    }
    if (captured) {
      using ms = std::chrono::milliseconds;
      spdlog::info(
          "snapshot {}: captured in {} ms, {} in {} ms", p.snapshot_id,
          std::chrono::duration_cast<ms>(was_captured - began).count(),
          env_.storage.awaiting_settle(p.snapshot_id) ? "sealed to be settled after"
                                                      : "settled and sealed",
          std::chrono::duration_cast<ms>(std::chrono::steady_clock::now() - was_captured).count());
    }
    if (!captured) {
      log_if_cleanup_failed(env_.storage.remove_snapshot(p.snapshot_id),
                            "remove a snapshot that failed");
      log_if_cleanup_failed(
          env_.catalog.run([&](Tx& tx) { return tx.delete_snapshot_row(p.snapshot_id); }),
          "remove the row of a snapshot that failed");
      return std::unexpected(captured.error());
    }
    ARGON_RETURN_IF_ERROR(env_.catalog.run([&](Tx& tx) -> Status {
      auto s = tx.get_snapshot(op.project_id, p.snapshot_id, true);
      if (!s) return {};
      s->state = catalog::snapshot_state::kReady;
      if (!s->timestamp) s->timestamp = captured_at;
      if (captured->lsn && !s->lsn)
        s->lsn = captured->lsn;  // a point asked for stays what the snapshot shows
      if (captured->bytes) s->full_size = static_cast<int64_t>(captured->bytes);
      s->updated_at = env_.clock.now_ms();
      return tx.put_snapshot(*s);
    }));
    return Outcome::kDone;
  }

  // The point from the branch's history (ActionEnv::build_at_point), settled as it is built.
  Result<Captured> from_history(const catalog::Operation& op, const params::CreateSnapshot& p,
                                const std::optional<catalog::Branch>& branch) {
    if (env_.storage.snapshot_exists(p.snapshot_id)) return Captured{};  // built before a crash
    if (!branch || branch->deleted)
      return fail(ErrorCode::kConflict, "the branch to snapshot no longer exists");
    ARGON_ASSIGN_OR_RETURN(auto source,
                           env_.runtime_of(op.project_id, branch->id, "the branch to snapshot"));
    const auto point = point_of(p.point_lsn, p.point_time);
    ARGON_ASSIGN_OR_RETURN(uint64_t at,
                           env_.build_at_point(source, point, ActionEnv::PointBuild::kSnapshot,
                                               p.snapshot_id, op.id, false));
    return Captured{storage::format_lsn(at), 0};
  }

  Result<Captured> capture(const std::string& snapshot_id, const catalog::Snapshot& snapshot,
                           const std::optional<catalog::Branch>& branch, const PgInstall& pg,
                           std::optional<uint64_t> wal_end) {
    const fs::path copy = env_.storage.snapshot_pgdata(snapshot_id);
    if (env_.storage.snapshot_exists(snapshot_id)) {
      // A run before a crash completed the capture; keep it and finish it. A point-in-time one
      // must be verified again from its own WAL, unless settling or sealing began (only a
      // verified capture gets there, and settling removes that WAL); if the WAL no longer reaches
      // back, it fails.
      if (wal_end && !env_.storage.settling_begun(snapshot_id) &&
          !env_.storage.snapshot_sealed(snapshot_id))
        ARGON_RETURN_IF_ERROR(
            verify_no_commit(pg, snapshot.source_branch_id, copy, *wal_end, std::nullopt));
      return Captured{};
    }
    if (!branch || branch->deleted)
      return fail(ErrorCode::kConflict, "the branch to snapshot no longer exists");
    const fs::path pgdata = env_.storage.branch_pgdata(branch->id);
    if (!env_.computes.running(branch->id)) {
      ARGON_ASSIGN_OR_RETURN(auto stats,
                             env_.storage.create_snapshot_from_stopped(snapshot_id, pgdata));
      // The copy holds all of the stopped branch's WAL.
      if (wal_end)
        ARGON_RETURN_IF_ERROR(verify_no_commit(pg, branch->id, copy, *wal_end, std::nullopt));
      return Captured{std::nullopt, stats.bytes};
    }
    ARGON_ASSIGN_OR_RETURN(auto conn, PgConn::connect(env_.computes.admin_conninfo(branch->id)));
    if (wal_end) {
      // The backup's checkpoint removes older WAL: a temporary slot (gone with this session) keeps
      // it from the latest redo point, so [wal_end, capture end) can still be read afterwards.
      std::string slot = "argon_" + snapshot_id;
      std::replace(slot.begin(), slot.end(), '-', '_');
      ARGON_RETURN_IF_ERROR(conn.exec(
          fmt::format("SELECT pg_create_physical_replication_slot('{}', true, true)", slot)));
    }
    ARGON_ASSIGN_OR_RETURN(
        auto info, env_.storage.create_snapshot_from_running(snapshot_id, pgdata, conn, pg.major));
    if (wal_end) {
      // Up to the backup's end in the branch's own WAL (the slot kept it); after it, in the WAL the
      // snapshot copied: a restore replays all of that, not only up to the stop LSN.
      const auto stop = storage::parse_lsn(info.stop_lsn);
      ARGON_RETURN_IF_ERROR(verify_no_commit(pg, branch->id, pgdata, *wal_end, stop));
      if (stop) ARGON_RETURN_IF_ERROR(verify_no_commit(pg, branch->id, copy, *stop, std::nullopt));
    }
    return Captured{info.stop_lsn, info.stats.bytes};
  }

  // Recovery runs once instead of at every restore's start: here, or after the operation on a
  // copy (settle_snapshot_beside). Each step is idempotent, so a run after a crash anywhere
  // finishes the job; a capture sealed unsettled stays so here.
  Status settle_and_seal(const std::string& snapshot_id, const catalog::Snapshot& snapshot,
                         const PgInstall& pg) {
    // A snapshot sealed by an argond from before settling existed is left as it was.
    if (!env_.storage.settled(snapshot_id) && !env_.storage.snapshot_sealed(snapshot_id)) {
      if (env_.options.settle_after_snapshot) {
        ARGON_RETURN_IF_ERROR(env_.storage.mark_unsettled(snapshot_id));
      } else {
        ARGON_RETURN_IF_ERROR(env_.storage.begin_settling(snapshot_id));
        crash_point("snapshot.settling");
        ARGON_ASSIGN_OR_RETURN(auto control,
                               settle_cluster(env_, snapshot_id, snapshot, pg,
                                              env_.storage.snapshot_pgdata(snapshot_id)));
        crash_point("snapshot.settled");
        ARGON_RETURN_IF_ERROR(
            env_.storage.trim_settled_wal(env_.storage.snapshot_pgdata(snapshot_id), control));
        ARGON_RETURN_IF_ERROR(env_.storage.end_settling(snapshot_id));
        crash_point("snapshot.trimmed");
      }
    }
    return env_.storage.seal_snapshot(snapshot_id);
  }

  // A snapshot asked for at a point in time was accepted because nothing had committed on the
  // branch after that point by the API call, which saw the branch's WAL end at `wal_end`. Anything
  // committed in `pgdata`'s WAL from `from` (to `until`) means the point is no longer the state
  // captured.
  Status verify_no_commit(const PgInstall& pg, const std::string& branch_id, const fs::path& pgdata,
                          uint64_t from, std::optional<uint64_t> until) {
    auto history = env_.storage.wal_history(pg, pgdata, from, until);
    if (!history) {
      return fail(ErrorCode::kConflict,
                  fmt::format("could not verify that nothing committed on branch {} after the "
                              "snapshot call ({}); the "
                              "point asked for cannot be captured exactly, take the snapshot again",
                              branch_id, history.error().message));
    }
    if (history->last_commit_lsn) {
      return fail(
          ErrorCode::kConflict,
          fmt::format(
              "a transaction committed on branch {} (at LSN {}) after the snapshot call and before "
              "the capture, so the point asked for is no longer the branch's state; take the "
              "snapshot again",
              branch_id, storage::format_lsn(*history->last_commit_lsn)));
    }
    return {};
  }
};

}  // namespace

std::unique_ptr<Action> make_create_snapshot(ActionEnv& env) {
  return std::make_unique<CreateSnapshot>(env);
}

Result<bool> settle_snapshot_beside(ActionEnv& env, const std::string& snapshot_id) {
  struct Loaded {
    std::optional<catalog::Snapshot> snapshot;
    int pg_major = 0;
  };
  ARGON_ASSIGN_OR_RETURN(Loaded loaded, env.catalog.read([&](Tx& tx) -> Result<Loaded> {
    for (auto& snapshot : tx.list_all_snapshots()) {
      if (snapshot.id != snapshot_id) continue;
      auto project = tx.get_project(snapshot.project_id, true);
      return Loaded{std::move(snapshot), project ? project->pg_version : 0};
    }
    return Loaded{};
  }));
  // Not in the catalog (any more): its deletion removes the data.
  if (!loaded.snapshot || loaded.snapshot->deleted) return false;
  ARGON_ASSIGN_OR_RETURN(const PgInstall* pg, env.install(loaded.pg_major));
  const auto began = std::chrono::steady_clock::now();
  auto done = env.storage.settle_beside(snapshot_id, [&](const fs::path& pgdata) {
    return settle_cluster(env, snapshot_id, *loaded.snapshot, *pg, pgdata);
  });
  if (done && *done) {
    spdlog::info("snapshot {}: settled beside and put in place in {} ms", snapshot_id,
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - began)
                     .count());
  }
  return done;
}

}  // namespace argon::ops
