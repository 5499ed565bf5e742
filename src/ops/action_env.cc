#include "ops/action_env.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <chrono>
#include <set>

#include "common/pg_conn.h"
#include "storage/page_cache.h"

namespace argon::ops {

namespace json = boost::json;

std::vector<std::pair<std::string, std::string>> pg_settings_of(const std::string& settings_json) {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  const auto settings = json::parse(settings_json, ec);
  if (ec || !settings.is_object()) return out;
  if (auto* pg = settings.as_object().if_contains("pg_settings"); pg && pg->is_object()) {
    for (const auto& [k, v] : pg->as_object()) {
      if (v.is_string()) out.emplace_back(std::string(k), std::string(v.as_string()));
    }
  }
  return out;
}

void log_if_cleanup_failed(const Status& st, std::string_view what) {
  if (!st) spdlog::warn("clean-up failed ({}): {} {}", what, st.error().message, st.error().detail);
}

std::optional<BranchRuntime> ActionEnv::load_runtime(catalog::Tx& tx, std::string_view project_id,
                                                     std::string_view branch_id,
                                                     bool include_deleted) {
  auto branch = tx.get_branch(project_id, branch_id, include_deleted);
  if (!branch) return std::nullopt;
  auto project = tx.get_project(project_id, true);
  if (!project) return std::nullopt;
  return BranchRuntime{std::move(*branch), project->pg_version, tx.list_branch_endpoints(branch_id),
                       project->history_retention_seconds};
}

Result<const PgInstall*> ActionEnv::install(int pg_major) const {
  const PgInstall* inst = pg.find(pg_major);
  if (!inst)
    return fail(ErrorCode::kInternal,
                fmt::format("PostgreSQL {} is not installed on this server", pg_major));
  return inst;
}

Result<compute::ComputeSpec> ActionEnv::compute_spec(const BranchRuntime& rt) {
  ARGON_ASSIGN_OR_RETURN(const PgInstall* inst, install(rt.pg_major));
  compute::ComputeSpec spec;
  spec.id = rt.branch.id;
  spec.pgdata = storage.branch_pgdata(rt.branch.id);
  spec.run_dir = storage.run_dir(rt.branch.id);
  spec.log_file = storage.log_path(rt.branch.id);
  spec.pg = *inst;
  // The endpoint's settings.pg_settings become `-c name=value` (checked by the api).
  if (!rt.endpoints.empty()) spec.settings = pg_settings_of(rt.endpoints.front().settings_json);
  return spec;
}

Status ActionEnv::archive_into_history(const BranchRuntime& rt, compute::ComputeSpec& spec) {
  if (!rt.history()) return {};
  // basic_archive (PostgreSQL's own module) copies each completed segment into the branch's
  // archive, fsynced, under a temporary name renamed into place; the path is relative to the data
  // directory, so it follows a reset's exchange of the branch's directory.
  ARGON_RETURN_IF_ERROR(storage.prepare_archive(spec.pgdata));
  for (auto& s : std::vector<std::pair<std::string, std::string>>{
           {"archive_mode", "on"},
           {"archive_library", "basic_archive"},
           {"basic_archive.archive_directory", "../wal"},
       }) {
    spec.settings.push_back(std::move(s));
  }
  return {};
}

Status ActionEnv::ensure_compute(const BranchRuntime& rt) {
  ARGON_ASSIGN_OR_RETURN(auto spec, compute_spec(rt));
  ARGON_RETURN_IF_ERROR(archive_into_history(rt, spec));
  if (!storage.branch_exists(rt.branch.id)) {
    return fail(ErrorCode::kInternal,
                fmt::format("branch {} has no data directory; it may still be being created",
                            rt.branch.id));
  }
  return computes.start(spec, options.compute_start_timeout);
}

Status ActionEnv::start_beside(const BranchRuntime& rt, const std::string& compute_id,
                               const std::filesystem::path& pgdata) {
  ARGON_ASSIGN_OR_RETURN(auto spec, compute_spec(rt));
  // The branch's compute runs in run/<id> or, after an earlier reset, in run/<id>~: the other one
  // is free (postgres keeps its socket's path, so a socket directory is never renamed).
  if (computes.socket_dir(rt.branch.id) == spec.run_dir) spec.run_dir += "~";
  // The copy was synced when it was made: the flush PostgreSQL does before recovering it is one
  // syncfs, not a fsync of every file (as a snapshot's settling does). The endpoint's come after.
  spec.settings.insert(spec.settings.begin(), {"recovery_init_sync_method", "syncfs"});
  spec.id = compute_id;
  spec.pgdata = pgdata;
  // Its data directory is exchanged into the branch's place while it runs (a reset): the link
  // follows it there (Computes::relink).
  spec.data_link = spec.run_dir / "pgdata";
  ARGON_RETURN_IF_ERROR(archive_into_history(rt, spec));
  return computes.start(spec, options.compute_start_timeout);
}

Result<BranchRuntime> ActionEnv::runtime_of(const std::string& project_id,
                                            const std::string& branch_id, std::string_view what) {
  return catalog.read([&](catalog::Tx& tx) -> Result<BranchRuntime> {
    auto rt = load_runtime(tx, project_id, branch_id, true);
    if (!rt) return fail(ErrorCode::kConflict, fmt::format("{} no longer exists", what));
    return *rt;
  });
}

storage::PointInTime point_of(const std::optional<std::string>& lsn,
                              const std::optional<std::string>& time) {
  storage::PointInTime point;
  if (lsn) point.lsn = storage::parse_lsn(*lsn);
  if (time) point.time = parse_time_span(*time);
  return point;
}

Result<storage::RecoveryPlan> ActionEnv::plan_point(const BranchRuntime& source,
                                                    const storage::PointInTime& point) {
  ARGON_ASSIGN_OR_RETURN(const PgInstall* pg, install(source.pg_major));
  if (!source.history()) {
    return fail(ErrorCode::kBadRequest,
                "the project keeps no history (history_retention_seconds is 0); set it on the "
                "project to branch, snapshot or restore at a past point");
  }
  if (!storage.branch_exists(source.branch.id)) {
    return fail(ErrorCode::kLocked,
                fmt::format("branch {} has no data yet; retry once its operations finish",
                            source.branch.id));
  }
  const int64_t now_us = clock.now_ms() * 1000 + 999;
  const storage::HistoryWindow window{now_us - source.history_seconds * 1'000'000, now_us,
                                      source.history_seconds};
  return storage::plan_recovery(*pg, storage.runner(), storage.branch_dir(source.branch.id), point,
                                window, storage.wal_view_dir(source.branch.id),
                                storage.tool_scratch());
}

Result<uint64_t> ActionEnv::build_at_point(const BranchRuntime& source,
                                           const storage::PointInTime& point, PointBuild build,
                                           const std::string& id, const std::string& op_id,
                                           bool history) {
  const auto source_dir = storage.branch_dir(source.branch.id);
  const auto planned_at = std::chrono::steady_clock::now();
  // Pruning does not remove the image or the WAL while they are read.
  std::shared_lock reading(storage.history_mu(source.branch.id));
  ARGON_ASSIGN_OR_RETURN(auto plan, plan_point(source, point));
  const double plan_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - planned_at)
          .count();
  ARGON_ASSIGN_OR_RETURN(auto spec, compute_spec(source));
  spec.id = "pitr-" + id;
  spec.log_file = storage.log_path(id);
  for (auto& s : storage::recovery_settings(plan, source_dir))
    spec.settings.push_back(std::move(s));
  const auto built_at = std::chrono::steady_clock::now();
  auto recover = [&](const std::filesystem::path& pgdata) -> Result<ControlData> {
    spec.pgdata = pgdata;
    return computes.settle(spec, options.compute_start_timeout);
  };
  const auto& image = plan.image.pgdata;
  Result<storage::CloneStats> stats;
  std::filesystem::path pgdata;
  switch (build) {
    case PointBuild::kBranch:
      stats = storage.create_branch_at_point(id, image, recover, history);
      pgdata = storage.branch_pgdata(id);
      break;
    case PointBuild::kResetCopy:
      stats = storage.capture_reset_at_point(id, image, recover, op_id, history);
      pgdata = storage.reset_pgdata(id);
      break;
    case PointBuild::kSnapshot:
      stats = storage.create_snapshot_at_point(id, image, recover);
      pgdata = storage.snapshot_pgdata(id);
      break;
  }
  if (!stats) return std::unexpected(stats.error());
  ARGON_ASSIGN_OR_RETURN(uint64_t branched_at, storage::switch_point(pgdata));
  spdlog::info(
      "{} at a point of branch {}: image {} ({} files), recovered {} ({}), planned in {:.1f} ms, "
      "built in {:.1f} ms; branched off at {}",
      id, source.branch.id, plan.image.pgdata.parent_path().filename().string(), stats->files,
      plan.through ? "through the commit at " + storage::format_lsn(*plan.through)
                   : std::string("to the image's consistency point"),
      storage::format_lsn(plan.at.lsn), plan_ms,
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - built_at)
          .count(),
      storage::format_lsn(branched_at));
  return branched_at;
}

void ActionEnv::warm_up(const std::string& compute_id, const std::string& branch_id) {
  struct Names {
    std::vector<std::string> databases{"postgres"}, roles;
  };
  auto names = catalog.read([&](catalog::Tx& tx) -> Result<Names> {
    Names n;
    for (const auto& d : tx.list_databases(branch_id)) n.databases.push_back(d.name);
    for (const auto& r : tx.list_roles(branch_id)) {
      if (!r.no_login) n.roles.push_back(r.name);
    }
    return n;
  });
  if (!names) {
    spdlog::info("warming compute {}: {}", compute_id, names.error().message);
    return;
  }
  for (const auto& name : names->databases) {
    // Connecting is the warm-up (the caches are built at login).
    auto conn = PgConn::connect(computes.admin_conninfo(compute_id, name));
    if (!conn)
      spdlog::info("warming database {} of compute {} failed: {}", name, compute_id,
                   conn.error().message);
  }
  const auto socket_dir = computes.socket_dir(compute_id);
  if (control && socket_dir) control->prepare(*socket_dir, names->roles);
}

std::jthread ActionEnv::carry_page_cache(std::filesystem::path pgdata,
                                         std::filesystem::path serving) {
  return std::jthread([pgdata = std::move(pgdata), serving = std::move(serving)] {
    // Half of PostgreSQL's default shared_buffers: the catalogs and the smaller hot tables,
    // while a large cached table cannot keep the disk busy through the swap.
    constexpr std::uint64_t kBudget = 64ull << 20;
    const auto began = std::chrono::steady_clock::now();
    const auto stats = storage::warm_like(pgdata, serving, kBudget);
    spdlog::info("{}: asked the kernel to read {:.1f} MB of {} files cached for {} ({:.1f} ms)",
                 pgdata.string(), static_cast<double>(stats.bytes) / (1 << 20), stats.files,
                 serving.string(),
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began)
                     .count());
  });
}

Status ActionEnv::stop_compute(std::string_view branch_id, compute::Computes::StopMode mode) {
  return computes.stop(branch_id, options.compute_stop_timeout, mode);
}

void ActionEnv::discard_branch(const std::string& branch_id) {
  log_if_cleanup_failed(stop_compute(branch_id), "stop the compute of a branch that failed");
  log_if_cleanup_failed(storage.remove_branch(branch_id),
                        "remove the data of a branch that failed");
  log_if_cleanup_failed(catalog.run([&](catalog::Tx& tx) -> Status {
    for (const auto& ep : tx.list_branch_endpoints(branch_id))
      ARGON_RETURN_IF_ERROR(tx.delete_endpoint_row(ep.id));
    return tx.delete_branch_row(branch_id);
  }),
                        "remove the rows of a branch that failed");
}

Status ActionEnv::mark_branch_ready(const std::string& project_id, const std::string& branch_id,
                                    const std::optional<std::string>& parent_lsn) {
  return catalog.run([&](catalog::Tx& tx) -> Status {
    auto b = tx.get_branch(project_id, branch_id, true);
    if (!b) return {};
    b->current_state = catalog::branch_state::kReady;
    b->pending_state.reset();
    b->state_changed_at = b->updated_at = clock.now_ms();
    if (parent_lsn) b->parent_lsn = parent_lsn;
    return tx.put_branch(*b);
  });
}

void ActionEnv::fence(const std::vector<std::string>& endpoint_ids, const std::string& reason) {
  if (!control) return;
  for (const auto& id : endpoint_ids) control->gate(id);
  terminate(endpoint_ids, reason);
}

void ActionEnv::terminate(const std::vector<std::string>& endpoint_ids, const std::string& reason) {
  if (!control) return;
  for (const auto& id : endpoint_ids) control->terminate(id, reason);
}

Status ActionEnv::sync_holds() {
  std::lock_guard l(*holds_mu);
  ARGON_ASSIGN_OR_RETURN(auto held,
                         catalog.read([&](catalog::Tx& tx) -> Result<std::set<std::string>> {
                           std::set<std::string> out;
                           for (const auto& ep : tx.list_all_endpoints()) {
                             if (ep.switching_op && !ep.deleted) out.insert(ep.id);
                           }
                           return out;
                         }));
  if (control) control->set_held(held);
  return {};
}

void ActionEnv::unfence(const std::vector<std::string>& endpoint_ids) {
  if (!control) return;
  for (const auto& id : endpoint_ids) control->ungate(id);
}

void set_serving(catalog::Endpoint& ep, bool running, int64_t now) {
  ep.current_state =
      std::string(running ? catalog::endpoint_state::kActive : catalog::endpoint_state::kIdle);
  ep.pending_state.reset();
  if (running) ep.started_at = ep.last_active = now;
  ep.updated_at = now;
}

Status for_each_project(catalog::Tx& tx,
                        const std::function<Status(const catalog::Project&)>& visit) {
  for (int64_t after_seq = 0;;) {
    auto projects = tx.list_projects(after_seq, 100, "");
    if (projects.empty()) return {};
    after_seq = projects.back().seq;
    for (const auto& p : projects) ARGON_RETURN_IF_ERROR(visit(p));
  }
}

std::vector<std::string> ids_of(const std::vector<catalog::Endpoint>& endpoints) {
  std::vector<std::string> ids;
  for (const auto& ep : endpoints) ids.push_back(ep.id);
  return ids;
}

}  // namespace argon::ops
