#include "ops/engine.h"

#include <algorithm>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/crash_point.h"
#include "common/pg_conn.h"
#include "ops/actions.h"

namespace argon::ops {

namespace json = boost::json;
using catalog::Branch;
using catalog::Endpoint;
using catalog::Operation;
using catalog::Tx;

namespace {

json::object parse_params(const std::string& s) {
  std::error_code ec;
  auto v = json::parse(s, ec);
  if (ec || !v.is_object()) return {};
  return v.as_object();
}

std::string param_string(const json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v && v->is_string()) return std::string(v->as_string());
  return {};
}

// An endpoint's settings (JSON text) as the `-c name=value` pairs of its "pg_settings".
std::vector<std::pair<std::string, std::string>> pg_settings_of(const std::string& settings_json) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto settings = parse_params(settings_json);
  if (auto* pg = settings.if_contains("pg_settings"); pg && pg->is_object()) {
    for (const auto& [k, v] : pg->as_object()) {
      if (v.is_string()) out.emplace_back(std::string(k), std::string(v.as_string()));
    }
  }
  return out;
}

int64_t param_int(const json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key); v && v->is_int64()) return v->as_int64();
  return 0;
}

// Roles that belong to Argon or Postgres itself, never listed or managed through the API.
constexpr std::string_view kSystemRoleFilter =
    "rolname NOT LIKE 'pg\\_%' AND rolname NOT IN ('argon_admin', 'neon_superuser')";

}  // namespace

Engine::Engine(catalog::Catalog& catalog, storage::Storage& storage,
               compute::ComputeManager& computes, const PgInstalls& pg, const Clock& clock,
               EngineOptions options)
    : catalog_(catalog), storage_(storage), computes_(computes), pg_(pg), clock_(clock),
      options_(options), planner_(clock) {
  computes_.set_crash_callback(
      [this](const std::string& id, int /*code*/) { on_compute_crash(id); });
}

Engine::~Engine() { stop(); }

Status Engine::recover() {
  if (auto st = storage_.remove_temp_dirs(); !st) return st;
  for (const auto& id : storage_.list_branch_dirs()) {
    if (auto st = compute::ComputeManager::stop_stray(storage_.branch_pgdata(id),
                                                      options_.compute_stop_timeout);
        !st) {
      return st;
    }
  }
  std::set<std::string> referenced, snapshots;
  std::vector<Branch> ready;
  auto st = catalog_.run([&](Tx& tx) -> Status {
    const int64_t now = clock_.now_ms();
    for (auto ep : tx.list_all_endpoints()) {
      if (ep.current_state == catalog::endpoint_state::kActive) {
        ep.current_state = catalog::endpoint_state::kIdle;
        ep.suspended_at = now;
        ep.updated_at = now;
        if (auto s = tx.put_endpoint(ep); !s) return s;
      }
    }
    for (auto& op : tx.list_pending_operations()) {
      if (op.status == catalog::op_status::kRunning) {
        spdlog::info("operation {} ({}) was interrupted; it will run again", op.id, op.action);
        op.status = catalog::op_status::kScheduling;
        op.updated_at = now;
        if (auto s = tx.put_operation(op); !s) return s;
      }
    }
    std::vector<catalog::Project> projects = tx.list_deleted_projects();
    for (const auto& p : tx.list_projects(0, 1 << 30, "")) projects.push_back(p);
    for (const auto& p : projects) {
      for (const auto& b : tx.list_branches(p.id, true)) {
        referenced.insert(b.id);
        if (!b.deleted && b.current_state == catalog::branch_state::kReady) ready.push_back(b);
      }
    }
    for (const auto& s : tx.list_all_snapshots()) snapshots.insert(s.id);
    return {};
  });
  if (!st) return st;
  for (const auto& id : storage_.list_branch_dirs()) {
    if (!referenced.contains(id)) {
      spdlog::info("removing data directory of unknown branch {}", id);
      if (auto s = storage_.remove_branch(id); !s) return s;
    }
  }
  // A snapshot directory without a catalog row: its row went (a failed capture, a finished
  // delete) and a crash came before the directory did.
  for (const auto& id : storage_.list_snapshot_dirs()) {
    if (!snapshots.contains(id)) {
      spdlog::info("removing data of unknown snapshot {}", id);
      if (auto s = storage_.remove_snapshot(id); !s) return s;
    }
  }
  for (const auto& b : ready) {
    if (!storage_.branch_exists(b.id)) {
      spdlog::error("branch {} ({}) is ready in the catalog but its data directory {} is missing",
                    b.id, b.name, storage_.branch_pgdata(b.id).string());
    }
  }
  finish_deleted_projects();
  return {};
}

void Engine::start() {
  // A finalized restore interrupted by a crash gates its target's endpoints again until its swap
  // operation ends, as the API call did: no connection reaches the data being replaced.
  (void)catalog_.transact([&](Tx& tx) -> Status {
    for (const auto& op : tx.list_pending_operations()) {
      if (op.action != action::kSwapBindingId) continue;
      std::vector<std::string> ids;
      for (const auto& ep : tx.list_branch_endpoints(param_string(parse_params(op.params_json), "target_branch_id"))) {
        ids.push_back(ep.id);
      }
      hold_endpoints_until(op.id, ids);
    }
    return {};
  });
  std::lock_guard lock(mu_);
  stopping_ = false;
  threads_.emplace_back([this] { dispatch_loop(); });
  threads_.emplace_back([this] { expiry_loop(); });
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

void Engine::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  work_cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void Engine::notify() {
  {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  cv_.notify_all();
}

bool Engine::idle() {
  {
    std::lock_guard lock(mu_);
    if (!busy_projects_.empty() || !queue_.empty()) return false;
  }
  auto pending = catalog_.transact(
      [](Tx& tx) -> Result<size_t> { return tx.list_pending_operations().size(); });
  return pending && *pending == 0;
}

void Engine::dispatch_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return dirty_ || stopping_; });
    if (stopping_) break;
    dirty_ = false;
    lock.unlock();
    auto pending = catalog_.transact(
        [](Tx& tx) -> Result<std::vector<Operation>> { return tx.list_pending_operations(); });
    lock.lock();
    if (!pending) {
      spdlog::error("operations engine cannot read the catalog: {}", pending.error().detail);
      continue;
    }
    const int64_t now = clock_.now_ms();
    std::set<std::string> seen;
    for (auto& op : *pending) {
      if (!seen.insert(op.project_id).second) continue;  // FIFO: only the oldest per project
      if (busy_projects_.contains(op.project_id)) continue;
      if (op.retry_at && *op.retry_at > now) continue;
      busy_projects_.insert(op.project_id);
      queue_.push_back(std::move(op));
      work_cv_.notify_one();
    }
  }
}

void Engine::worker_loop() {
  std::unique_lock lock(mu_);
  while (true) {
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping and drained
    Operation op = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    run(op);
    lock.lock();
    busy_projects_.erase(op.project_id);
    dirty_ = true;
    cv_.notify_all();
  }
}

void Engine::expiry_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, options_.expiry_interval, [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    size_t deleted = 0;
    auto st = catalog_.run([&](Tx& tx) -> Status {
      for (const auto& b : tx.list_expired_branches(clock_.now_ms())) {
        bool has_children = false;
        for (const auto& c : tx.list_branches(b.project_id)) has_children |= c.parent_id == b.id;
        if (b.is_default || b.is_protected || has_children) continue;
        spdlog::info("branch {} ({}) expired; deleting it", b.id, b.name);
        planner_.delete_branch(tx, b);
        ++deleted;
      }
      const int64_t now = clock_.now_ms();
      if (options_.old_branch_retention.count() > 0) deleted += sweep_old_branches(tx, now);
      for (auto snap : tx.list_all_snapshots()) {
        if (snap.deleted || !snap.expires_at || *snap.expires_at > now) continue;
        spdlog::info("snapshot {} ({}) expired; deleting it", snap.id, snap.name);
        planner_.delete_snapshot(tx, snap);
        ++deleted;
      }
      return {};
    });
    if (!st) spdlog::error("expiry sweep failed: {}", st.error().detail);
    autosuspend_sweep();
    lock.lock();
    if (deleted) dirty_ = true;
  }
}

// A branch is "old" when a finalized restore replaced it (another branch's restored_as names it).
// It is deleted once unchanged for the retention, unless something still depends on it: an
// endpoint, a child, protection or default (none of which a swap leaves it, but users may add).
size_t Engine::sweep_old_branches(Tx& tx, int64_t now) {
  const int64_t cutoff = now - std::chrono::duration_cast<std::chrono::milliseconds>(options_.old_branch_retention).count();
  size_t deleted = 0;
  int64_t after_seq = 0;
  for (;;) {
    auto projects = tx.list_projects(after_seq, 100, "");
    if (projects.empty()) break;
    after_seq = projects.back().seq;
    for (const auto& p : projects) {
      const auto branches = tx.list_branches(p.id);
      std::set<std::string> replaced, parents;
      for (const auto& b : branches) {
        if (b.restored_as && b.restore_status == std::string("finalized")) replaced.insert(*b.restored_as);
        if (b.parent_id) parents.insert(*b.parent_id);
      }
      for (const auto& b : branches) {
        if (!replaced.contains(b.id) || b.updated_at > cutoff || b.is_default || b.is_protected ||
            parents.contains(b.id) || !tx.list_branch_endpoints(b.id).empty() ||
            b.current_state != catalog::branch_state::kReady || b.pending_state) {
          continue;
        }
        spdlog::info("branch {} ({}) was replaced by a restore and kept {} s; deleting it", b.id, b.name,
                     options_.old_branch_retention.count());
        planner_.delete_branch(tx, b);
        ++deleted;
      }
    }
  }
  return deleted;
}

void Engine::run(Operation op) {
  const int64_t started = clock_.now_ms();
  op.status = catalog::op_status::kRunning;
  op.updated_at = started;
  (void)catalog_.run([&](Tx& tx) { return tx.put_operation(op); });
  spdlog::info("operation {} {} started (project {}, branch {}, endpoint {})", op.id, op.action,
               op.project_id, op.branch_id.value_or("-"), op.endpoint_id.value_or("-"));

  Result<Outcome> result = fail(ErrorCode::kInternal, "not run");
  try {
    result = execute(op);
  } catch (const std::exception& e) {
    result = fail(ErrorCode::kInternal, "internal error", e.what());
  }
  crash_point(fmt::format("{}.executed", op.action));
  const int64_t now = clock_.now_ms();
  op.updated_at = now;
  op.total_duration_ms = now - op.created_at;
  if (result) {
    op.status = *result == Outcome::kDone ? catalog::op_status::kFinished
                                          : catalog::op_status::kSkipped;
    op.error.reset();
  } else {
    op.status = catalog::op_status::kFailed;
    op.failures_count++;
    op.error = result.error().message;
    spdlog::error("operation {} {} failed: {} {}", op.id, op.action, result.error().message,
                  result.error().detail);
  }
  (void)catalog_.run([&](Tx& tx) { return tx.put_operation(op); });
  spdlog::info("operation {} {} {} in {} ms", op.id, op.action, op.status, now - started);
  if (op.action == action::kStartCompute) note_start_finished(op);
  if (op.action == action::kSwapBindingId) release_endpoints(op.id);
  finish_deleted_projects();
}

void Engine::hold_endpoints_until(const std::string& swap_op_id, const std::vector<std::string>& endpoint_ids) {
  if (!control_ || endpoint_ids.empty()) return;
  for (const auto& ep : endpoint_ids) control_->gate(ep);
  std::lock_guard l(held_mu_);
  auto& held = held_[swap_op_id];
  held.insert(held.end(), endpoint_ids.begin(), endpoint_ids.end());
}

void Engine::release_endpoints(const std::string& swap_op_id) {
  std::vector<std::string> held;
  {
    std::lock_guard l(held_mu_);
    if (auto it = held_.find(swap_op_id); it != held_.end()) {
      held = std::move(it->second);
      held_.erase(it);
    }
  }
  if (control_) {
    for (const auto& ep : held) control_->ungate(ep);
  }
}

void Engine::note_start_finished(const Operation& op) {
  std::lock_guard l(wake_mu_);
  auto it = wakes_.find(op.endpoint_id.value_or(""));
  if (it == wakes_.end() || it->second.op_id != op.id) return;
  it->second.finished = true;
  if (op.status == catalog::op_status::kFailed) it->second.error = op.error.value_or("start failed");
}

Result<std::optional<compute::ComputeTarget>> Engine::wake(std::string_view endpoint_id) {
  std::optional<WakeState> recheck;  // a start that has been pending for a while
  {
    std::lock_guard l(wake_mu_);
    auto it = wakes_.find(endpoint_id);
    if (it != wakes_.end()) {
      // The start is under way: no catalog read, except once a second to notice an endpoint (or its
      // start) that went away meanwhile.
      const auto now = std::chrono::steady_clock::now();
      if (!it->second.finished && now - it->second.checked_at < std::chrono::seconds(1)) return std::nullopt;
      if (!it->second.finished) {
        it->second.checked_at = now;
        recheck = it->second;
      } else {
        auto error = it->second.error;
        wakes_.erase(it);
        if (error) {
          return fail(ErrorCode::kUnavailable,
                      fmt::format("could not start the compute for endpoint {}: {}", endpoint_id, *error));
        }
      }
    }
  }
  std::optional<compute::ComputeTarget> ready;
  bool submitted = false;
  auto st = catalog_.run([&](Tx& tx) -> Status {
    auto ep = tx.find_endpoint(endpoint_id);
    if (!ep || ep->deleted) {
      if (recheck) {
        std::lock_guard l(wake_mu_);
        wakes_.erase(std::string(endpoint_id));
      }
      return fail(ErrorCode::kNotFound,
                  fmt::format("endpoint {} does not exist; check the endpoint id in the connection string's "
                              "host name or options",
                              endpoint_id));
    }
    if (ep->disabled) {
      return fail(ErrorCode::kForbidden,
                  fmt::format("endpoint {} is disabled; enable it with PATCH /projects/{}/endpoints/{} "
                              "{{\"endpoint\": {{\"disabled\": false}}}}",
                              ep->id, ep->project_id, ep->id));
    }
    if (ep->current_state == catalog::endpoint_state::kActive && computes_.running(ep->branch_id)) {
      ready = compute::ComputeTarget{ep->id, ep->project_id, ep->branch_id, storage_.run_dir(ep->branch_id)};
      return {};
    }
    if (recheck) {
      auto op = tx.get_operation(ep->project_id, recheck->op_id);
      if (op && !op->terminal()) return {};  // still queued or running
    }
    std::lock_guard l(wake_mu_);
    if (auto it = wakes_.find(endpoint_id); it != wakes_.end()) {
      if (!recheck || it->second.op_id != recheck->op_id) return {};  // another client asked a moment ago
      wakes_.erase(it);  // its start is gone without a word (its project was deleted): ask again
    }
    auto op = planner_.start_endpoint(tx, *ep);
    wakes_[ep->id] = WakeState{op.id, false, std::nullopt, std::chrono::steady_clock::now()};
    submitted = true;
    return {};
  });
  if (!st) return std::unexpected(st.error());
  if (submitted) {
    spdlog::info("endpoint {}: a connection arrived while suspended; starting its compute", endpoint_id);
    notify();
  }
  return ready;
}

void Engine::autosuspend_sweep() {
  if (!control_) return;
  const auto activity = control_->activity();
  const int64_t now = clock_.now_ms();
  size_t suspended = 0;
  auto st = catalog_.run([&](Tx& tx) -> Status {
    for (auto ep : tx.list_all_endpoints()) {
      if (ep.deleted || ep.current_state != catalog::endpoint_state::kActive || ep.pending_state) continue;
      int connections = 0;
      int64_t last = std::max(ep.last_active.value_or(0), ep.started_at.value_or(0));
      if (auto a = activity.find(ep.id); a != activity.end()) {
        connections = a->second.connections;
        last = std::max(last, a->second.last_active_ms);
      }
      if (connections > 0) last = now;
      if (last > ep.last_active.value_or(0)) {
        ep.last_active = last;
        ARGON_RETURN_IF_ERROR(tx.put_endpoint(ep));
      }
      // 0 means the default (300 s), negative never.
      const int64_t timeout_s = ep.suspend_timeout_seconds == 0 ? kDefaultSuspendTimeoutSeconds : ep.suspend_timeout_seconds;
      if (timeout_s < 0 || connections > 0 || now - last < timeout_s * 1000) continue;
      spdlog::info("endpoint {}: no connections for {} s; suspending its compute", ep.id, (now - last) / 1000);
      planner_.suspend_endpoint(tx, ep);
      ++suspended;
    }
    return {};
  });
  if (!st) spdlog::error("autosuspend sweep failed: {} {}", st.error().message, st.error().detail);
  if (suspended) notify();
}

Result<Engine::Outcome> Engine::execute(Operation& op) {
  const auto params = parse_params(op.params_json);
  const bool snapshot_op = params.contains("snapshot_id") && !params.contains("source");
  if (op.action == action::kCreateTimeline && snapshot_op) return create_snapshot(op);
  if (op.action == action::kDeleteTimeline && snapshot_op) return delete_snapshot(op);
  if (op.action == action::kSwapBindingId) return finalize_restore(op);
  if (op.action == action::kCreateTimeline && param_string(params, "source") == "reset") return reset_branch(op);
  if (op.action == action::kCreateTimeline) return create_timeline(op);
  if (op.action == action::kStartCompute) return start_compute(op);
  if (op.action == action::kSuspendCompute) return suspend_compute(op);
  if (op.action == action::kApplyConfig) return apply_config(op);
  if (op.action == action::kDeleteTimeline) return delete_timeline(op);
  return fail(ErrorCode::kInternal, fmt::format("unknown operation action {}", op.action));
}

Result<int> Engine::project_pg_major(std::string_view project_id) {
  return catalog_.transact([&](Tx& tx) -> Result<int> {
    auto p = tx.get_project(project_id, true);
    if (!p) return fail(ErrorCode::kNotFound, fmt::format("project {} not found", project_id));
    return p->pg_version;
  });
}

compute::ComputeSpec Engine::compute_spec(const Branch& branch, int major) const {
  compute::ComputeSpec spec;
  spec.id = branch.id;
  spec.pgdata = storage_.branch_pgdata(branch.id);
  spec.run_dir = storage_.run_dir(branch.id);
  spec.log_file = storage_.log_path(branch.id);
  if (const auto* inst = pg_.find(major)) spec.pg = *inst;
  return spec;
}

Status Engine::ensure_compute(const Branch& branch) {
  auto major = project_pg_major(branch.project_id);
  if (!major) return std::unexpected(major.error());
  if (!pg_.find(*major)) {
    return fail(ErrorCode::kInternal,
                fmt::format("PostgreSQL {} is not installed on this server", *major));
  }
  if (!storage_.branch_exists(branch.id)) {
    return fail(ErrorCode::kInternal,
                fmt::format("branch {} has no data directory; it may still be being created",
                            branch.id));
  }
  auto spec = compute_spec(branch, *major);
  // The endpoint's settings.pg_settings become `-c name=value` (checked by the api).
  auto eps = catalog_.transact([&](Tx& tx) -> Result<std::vector<Endpoint>> {
    return tx.list_branch_endpoints(branch.id);
  });
  if (eps && !eps->empty()) spec.settings = pg_settings_of(eps->front().settings_json);
  return computes_.start(spec, options_.compute_start_timeout);
}

Result<Engine::Outcome> Engine::create_timeline(Operation& op) {
  auto loaded = catalog_.transact([&](Tx& tx) -> Result<std::optional<Branch>> {
    return tx.get_branch(op.project_id, op.branch_id.value_or(""), true);
  });
  if (!loaded) return std::unexpected(loaded.error());
  if (!*loaded || (*loaded)->deleted) return Outcome::kSkipped;
  Branch branch = **loaded;
  auto params = parse_params(op.params_json);
  auto major = project_pg_major(op.project_id);
  if (!major) return std::unexpected(major.error());
  const PgInstall* pg = pg_.find(*major);
  if (!pg) {
    return fail(ErrorCode::kInternal, fmt::format("PostgreSQL {} is not installed", *major));
  }

  Status st;
  std::optional<std::string> lsn;
  if (param_string(params, "source") == "template") {
    st = storage_.ensure_template(*pg);
    if (st) st = storage_.create_branch_from_template(branch.id, pg->major);
    // The template has only the admin role: create the project's role and database now.
    if (st) st = ensure_compute(branch);
    if (st) {
      auto conn = PgConn::connect(computes_.admin_conninfo(branch.id));
      if (!conn) {
        st = std::unexpected(conn.error());
      } else {
        auto r = conn->exec(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'neon_superuser') "
            "THEN CREATE ROLE neon_superuser CREATEDB CREATEROLE NOLOGIN REPLICATION BYPASSRLS; "
            "GRANT pg_read_all_data, pg_write_all_data, pg_monitor, pg_signal_backend "
            "TO neon_superuser WITH ADMIN OPTION; END IF; END $$");
        if (!r) st = std::unexpected(r.error());
      }
    }
    if (st) {
      auto roles_dbs = catalog_.transact([&](Tx& tx) -> Result<json::array> {
        json::array changes;
        for (const auto& r : tx.list_roles(branch.id)) {
          changes.push_back({{"kind", change::kCreateRole}, {"name", r.name}});
        }
        for (const auto& d : tx.list_databases(branch.id)) {
          changes.push_back({{"kind", change::kCreateDatabase}, {"id", d.id}});
        }
        return changes;
      });
      if (!roles_dbs) {
        st = std::unexpected(roles_dbs.error());
      } else {
        Operation inner = op;
        inner.params_json = json::serialize(json::object{{"changes", *roles_dbs}});
        auto applied = apply_config(inner);
        if (!applied) st = std::unexpected(applied.error());
      }
    }
  } else if (param_string(params, "source") == "snapshot") {
    const std::string snapshot_id = param_string(params, "snapshot_id");
    if (!storage_.snapshot_exists(snapshot_id)) {
      st = fail(ErrorCode::kConflict, fmt::format("snapshot {} has no data (it was deleted or never completed)",
                                                  snapshot_id));
    } else {
      auto stats = storage_.create_branch_from_snapshot(branch.id, snapshot_id);
      if (!stats) st = std::unexpected(stats.error());
    }
  } else {
    auto parent = catalog_.transact([&](Tx& tx) -> Result<std::optional<Branch>> {
      return tx.get_branch(op.project_id, branch.parent_id.value_or(""), true);
    });
    if (!parent) return std::unexpected(parent.error());
    if (!*parent) {
      st = fail(ErrorCode::kConflict, "parent branch no longer exists");
    } else if (computes_.running((*parent)->id)) {
      auto conn = PgConn::connect(computes_.admin_conninfo((*parent)->id));
      if (!conn) {
        st = std::unexpected(conn.error());
      } else {
        auto info = storage_.create_branch_from_running(branch.id, storage_.branch_pgdata((*parent)->id),
                                                        *conn, pg->major);
        if (!info) {
          st = std::unexpected(info.error());
        } else {
          lsn = info->stop_lsn;
        }
      }
    } else {
      auto stats = storage_.create_branch_from_stopped(branch.id, storage_.branch_pgdata((*parent)->id));
      if (!stats) st = std::unexpected(stats.error());
    }
  }

  if (!st) {
    // Nothing half-made stays: the directory, the branch and its endpoints go; later operations
    // on them are skipped.
    (void)computes_.stop(branch.id, options_.compute_stop_timeout);
    (void)storage_.remove_branch(branch.id);
    (void)catalog_.run([&](Tx& tx) -> Status {
      for (const auto& ep : tx.list_branch_endpoints(branch.id)) (void)tx.delete_endpoint_row(ep.id);
      return tx.delete_branch_row(branch.id);
    });
    return std::unexpected(st.error());
  }
  auto done = catalog_.run([&](Tx& tx) -> Status {
    auto b = tx.get_branch(op.project_id, branch.id, true);
    if (!b) return {};
    b->current_state = catalog::branch_state::kReady;
    b->pending_state.reset();
    b->state_changed_at = b->updated_at = clock_.now_ms();
    if (lsn) b->parent_lsn = lsn;
    return tx.put_branch(*b);
  });
  if (!done) return std::unexpected(done.error());
  return Outcome::kDone;
}

Result<Engine::Outcome> Engine::start_compute(Operation& op) {
  auto loaded = catalog_.transact([&](Tx& tx) -> Result<std::pair<std::optional<Endpoint>, std::optional<Branch>>> {
    auto ep = tx.get_endpoint(op.project_id, op.endpoint_id.value_or(""));
    std::optional<Branch> b;
    if (ep) b = tx.get_branch(op.project_id, ep->branch_id);
    return std::pair{ep, b};
  });
  if (!loaded) return std::unexpected(loaded.error());
  auto& [ep, branch] = *loaded;
  if (!ep || !branch) return Outcome::kSkipped;
  if (ep->disabled) {
    return fail(ErrorCode::kConflict,
                fmt::format("endpoint {} is disabled; enable it with PATCH first", ep->id));
  }
  if (auto st = ensure_compute(*branch); !st) {
    (void)catalog_.run([&](Tx& tx) -> Status {
      auto e = tx.get_endpoint(op.project_id, ep->id);
      if (!e) return {};
      e->current_state = catalog::endpoint_state::kIdle;
      e->pending_state.reset();
      e->updated_at = clock_.now_ms();
      return tx.put_endpoint(*e);
    });
    return std::unexpected(st.error());
  }
  auto st = catalog_.run([&](Tx& tx) -> Status {
    auto e = tx.get_endpoint(op.project_id, ep->id);
    if (!e) return {};
    const int64_t now = clock_.now_ms();
    e->current_state = catalog::endpoint_state::kActive;
    e->pending_state.reset();
    e->started_at = e->last_active = now;
    e->updated_at = now;
    return tx.put_endpoint(*e);
  });
  if (!st) return std::unexpected(st.error());
  return Outcome::kDone;
}

std::string Engine::suspend_reason(const Operation& op, const std::string& branch_id, bool deleting) {
  const std::string endpoint_id = op.endpoint_id.value_or("");
  if (deleting) return fmt::format("terminating connection: endpoint {} was deleted", endpoint_id);
  auto ep = catalog_.transact([&](Tx& tx) -> Result<std::optional<Endpoint>> {
    return tx.get_endpoint(op.project_id, endpoint_id, true);
  });
  if (ep && *ep && (*ep)->branch_id != branch_id) {
    return fmt::format("terminating connection: endpoint {} moved to branch {}; reconnect to reach it", endpoint_id,
                       (*ep)->branch_id);
  }
  if (ep && *ep && (*ep)->disabled) return fmt::format("terminating connection: endpoint {} was disabled", endpoint_id);
  return fmt::format("terminating connection: endpoint {} is being suspended; reconnect to wake it", endpoint_id);
}

Result<Engine::Outcome> Engine::suspend_compute(Operation& op) {
  auto params = parse_params(op.params_json);
  std::string branch_id = param_string(params, "branch_id");
  const bool delete_endpoint = params.contains("delete_endpoint");
  auto branch = catalog_.transact([&](Tx& tx) -> Result<std::optional<Branch>> {
    return tx.get_branch(op.project_id, branch_id, true);
  });
  if (!branch) return std::unexpected(branch.error());
  if (*branch && computes_.running(branch_id)) {
    if (auto st = sync_from_compute(**branch); !st) {
      spdlog::warn("could not read roles and databases from compute {} before suspending: {}",
                   branch_id, st.error().message);
    }
  }
  // Clients of this compute hear why their connection ends, and new ones wait at the gate until the
  // compute is down; then they wake whatever compute the endpoint names by then.
  const std::string endpoint_id = op.endpoint_id.value_or("");
  const bool gated = control_ && !endpoint_id.empty() && computes_.running(branch_id);
  if (gated) {
    control_->gate(endpoint_id);
    control_->terminate(endpoint_id, suspend_reason(op, branch_id, delete_endpoint));
  }
  auto stopped = computes_.stop(branch_id, options_.compute_stop_timeout);
  if (gated) control_->ungate(endpoint_id);
  if (!stopped) return std::unexpected(stopped.error());
  auto st = catalog_.run([&](Tx& tx) -> Status {
    auto e = tx.get_endpoint(op.project_id, op.endpoint_id.value_or(""), true);
    if (!e) return {};
    if (delete_endpoint) return tx.delete_endpoint_row(e->id);
    const int64_t now = clock_.now_ms();
    e->current_state = catalog::endpoint_state::kIdle;
    e->pending_state.reset();
    e->suspended_at = now;
    e->updated_at = now;
    return tx.put_endpoint(*e);
  });
  if (!st) return std::unexpected(st.error());
  return Outcome::kDone;
}

Result<Engine::Outcome> Engine::apply_config(Operation& op) {
  auto loaded = catalog_.transact([&](Tx& tx) -> Result<std::optional<Branch>> {
    return tx.get_branch(op.project_id, op.branch_id.value_or(""));
  });
  if (!loaded) return std::unexpected(loaded.error());
  if (!*loaded) return Outcome::kSkipped;
  const Branch branch = **loaded;
  const bool was_running = computes_.running(branch.id);
  if (auto st = ensure_compute(branch); !st) return std::unexpected(st.error());

  auto result = [&]() -> Status {
    auto conn = PgConn::connect(computes_.admin_conninfo(branch.id));
    if (!conn) return std::unexpected(conn.error());
    auto params = parse_params(op.params_json);
    const json::array empty;
    const auto* changes = params.if_contains("changes");
    for (const auto& cv : changes && changes->is_array() ? changes->as_array() : empty) {
      if (!cv.is_object()) continue;
      const auto& c = cv.as_object();
      const std::string kind = param_string(c, "kind");
      const std::string name = param_string(c, "name");
      if (kind == change::kCreateRole || kind == change::kResetPassword) {
        auto role = catalog_.transact([&](Tx& tx) -> Result<std::optional<catalog::Role>> {
          return tx.get_role(branch.id, name);
        });
        if (!role) return std::unexpected(role.error());
        if (!*role) continue;  // deleted since
        const auto& r = **role;
        auto exists = conn->exec("SELECT 1 FROM pg_roles WHERE rolname = $1", {r.name});
        if (!exists) return std::unexpected(exists.error());
        std::string sql;
        if (exists->rows.empty()) {
          sql = fmt::format("CREATE ROLE {} {} PASSWORD {} CREATEDB CREATEROLE IN ROLE neon_superuser",
                            conn->quote_ident(r.name), r.no_login ? "NOLOGIN" : "LOGIN",
                            conn->quote_literal(r.password));
        } else if (kind == change::kResetPassword) {
          sql = fmt::format("ALTER ROLE {} PASSWORD {}", conn->quote_ident(r.name),
                            conn->quote_literal(r.password));
        }
        if (!sql.empty()) {
          if (auto x = conn->exec(sql); !x) return std::unexpected(x.error());
        }
        if (kind == change::kResetPassword) {
          (void)conn->exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                           {r.name});
        }
      } else if (kind == change::kDeleteRole) {
        auto x = conn->exec(fmt::format("DROP ROLE IF EXISTS {}", conn->quote_ident(name)));
        if (!x) {
          (void)catalog_.run([&](Tx& tx) -> Status {
            auto r = tx.get_role(branch.id, name);
            if (!r) return {};
            r->pending_delete = false;
            return tx.put_role(*r);
          });
          return fail(ErrorCode::kConflict,
                      fmt::format("cannot delete role {}: {}", name, x.error().message));
        }
        if (auto s = catalog_.run([&](Tx& tx) { return tx.delete_role_row(branch.id, name); }); !s) return s;
      } else if (kind == change::kCreateDatabase || kind == change::kUpdateDatabase ||
                 kind == change::kDeleteDatabase) {
        const int64_t id = param_int(c, "id");
        auto db = catalog_.transact([&](Tx& tx) -> Result<std::optional<catalog::Database>> {
          return tx.get_database_by_id(id);
        });
        if (!db) return std::unexpected(db.error());
        if (!*db) continue;
        const auto& d = **db;
        const std::string current = kind == change::kUpdateDatabase ? param_string(c, "old_name") : d.name;
        auto exists = conn->exec("SELECT 1 FROM pg_database WHERE datname = $1", {current});
        if (!exists) return std::unexpected(exists.error());
        if (kind == change::kCreateDatabase) {
          if (exists->rows.empty()) {
            auto x = conn->exec(fmt::format("CREATE DATABASE {} OWNER {}", conn->quote_ident(d.name),
                                            conn->quote_ident(d.owner_name)));
            if (!x) return std::unexpected(x.error());
          }
        } else if (kind == change::kUpdateDatabase) {
          if (!exists->rows.empty() && current != d.name) {
            (void)conn->exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                             {current});
            auto x = conn->exec(fmt::format("ALTER DATABASE {} RENAME TO {}", conn->quote_ident(current),
                                            conn->quote_ident(d.name)));
            if (!x) return std::unexpected(x.error());
          }
          auto x = conn->exec(fmt::format("ALTER DATABASE {} OWNER TO {}", conn->quote_ident(d.name),
                                          conn->quote_ident(d.owner_name)));
          if (!x) return std::unexpected(x.error());
        } else {
          if (!exists->rows.empty()) {
            auto x = conn->exec(fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)",
                                            conn->quote_ident(d.name)));
            if (!x) return std::unexpected(x.error());
          }
          if (auto s = catalog_.run([&](Tx& tx) { return tx.delete_database_row(id); }); !s) return s;
        }
      }
    }
    return {};
  }();

  // A compute woken only for this change goes back to sleep (Neon: "wakes an idle endpoint briefly").
  bool keep_running = was_running;
  if (op.action == action::kCreateTimeline) keep_running = true;  // start_compute follows
  if (!keep_running) (void)computes_.stop(branch.id, options_.compute_stop_timeout);
  if (!result) return std::unexpected(result.error());
  return Outcome::kDone;
}

Status Engine::sync_from_compute(const Branch& branch) {
  // Changes queued through the API are authoritative until applied: skip while any is pending.
  auto pending = catalog_.transact([&](Tx& tx) -> Result<bool> {
    for (const auto& op : tx.list_pending_operations()) {
      if (op.branch_id == branch.id && op.action == action::kApplyConfig) return true;
    }
    return false;
  });
  if (!pending) return std::unexpected(pending.error());
  if (*pending) return {};
  auto conn = PgConn::connect(computes_.admin_conninfo(branch.id));
  if (!conn) return std::unexpected(conn.error());
  auto roles = conn->exec(fmt::format("SELECT rolname, rolcanlogin FROM pg_roles WHERE {}",
                                      kSystemRoleFilter));
  if (!roles) return std::unexpected(roles.error());
  auto dbs = conn->exec(
      "SELECT datname, pg_get_userbyid(datdba) FROM pg_database "
      "WHERE datname NOT IN ('postgres', 'template0', 'template1')");
  if (!dbs) return std::unexpected(dbs.error());
  return catalog_.run([&](Tx& tx) -> Status {
    const int64_t now = clock_.now_ms();
    std::set<std::string> pg_roles, pg_dbs;
    for (size_t i = 0; i < roles->rows.size(); ++i) {
      std::string name = roles->value(i, 0);
      pg_roles.insert(name);
      if (!tx.get_role(branch.id, name)) {
        catalog::Role r{branch.project_id, branch.id, name, "", false, roles->value(i, 1) != "t",
                        now, now, false};
        if (auto s = tx.put_role(r); !s) return s;
      }
    }
    for (const auto& r : tx.list_roles(branch.id)) {
      if (!pg_roles.contains(r.name)) (void)tx.delete_role_row(branch.id, r.name);
    }
    for (size_t i = 0; i < dbs->rows.size(); ++i) {
      std::string name = dbs->value(i, 0), owner = dbs->value(i, 1);
      pg_dbs.insert(name);
      auto d = tx.get_database(branch.id, name);
      if (!d) {
        catalog::Database nd{0, branch.project_id, branch.id, name, owner, now, now, false};
        if (auto s = tx.put_database(nd); !s) return s;
      } else if (d->owner_name != owner) {
        d->owner_name = owner;
        d->updated_at = now;
        if (auto s = tx.put_database(*d); !s) return s;
      }
    }
    for (const auto& d : tx.list_databases(branch.id)) {
      if (!pg_dbs.contains(d.name)) (void)tx.delete_database_row(d.id);
    }
    return {};
  });
}

Result<Engine::Outcome> Engine::delete_timeline(Operation& op) {
  const std::string id = op.branch_id.value_or("");
  if (auto st = computes_.stop(id, options_.compute_stop_timeout); !st) return std::unexpected(st.error());
  crash_point("delete.stopped");
  if (auto st = storage_.remove_branch(id); !st) return std::unexpected(st.error());
  auto st = catalog_.run([&](Tx& tx) -> Status {
    for (const auto& ep : tx.list_all_endpoints()) {
      if (ep.branch_id == id) (void)tx.delete_endpoint_row(ep.id);
    }
    return tx.delete_branch_row(id);
  });
  if (!st) return std::unexpected(st.error());
  return Outcome::kDone;
}

Result<Engine::Outcome> Engine::create_snapshot(Operation& op) {
  const auto params = parse_params(op.params_json);
  const std::string snapshot_id = param_string(params, "snapshot_id");
  auto loaded = catalog_.transact([&](Tx& tx) -> Result<std::pair<std::optional<catalog::Snapshot>, std::optional<Branch>>> {
    return std::pair{tx.get_snapshot(op.project_id, snapshot_id, true),
                     tx.get_branch(op.project_id, op.branch_id.value_or(""), true)};
  });
  if (!loaded) return std::unexpected(loaded.error());
  auto& [snapshot, branch] = *loaded;
  if (!snapshot || snapshot->deleted) return Outcome::kSkipped;
  auto major = project_pg_major(op.project_id);
  if (!major) return std::unexpected(major.error());
  const int64_t captured_at = clock_.now_ms();
  // Set when the snapshot was asked for at a point in time (see verify_no_commit).
  const std::optional<uint64_t> wal_end =
      params.contains("wal_end") ? storage::parse_lsn(param_string(params, "wal_end")) : std::nullopt;
  std::optional<std::string> lsn;
  uint64_t bytes = 0;
  Status st;
  if (storage_.snapshot_exists(snapshot_id)) {
    // A run before a crash completed the capture; keep it and finish sealing it. A point-in-time
    // one must be verified again from its own WAL: if that no longer reaches back, it fails.
    st = storage_.seal_snapshot(snapshot_id);
    if (st && wal_end) st = verify_no_commit(op.project_id, snapshot->source_branch_id, storage_.snapshot_pgdata(snapshot_id), *wal_end, std::nullopt);
  } else if (!branch || branch->deleted) {
    st = fail(ErrorCode::kConflict, "the branch to snapshot no longer exists");
  } else if (computes_.running(branch->id)) {
    auto conn = PgConn::connect(computes_.admin_conninfo(branch->id));
    const auto pgdata = storage_.branch_pgdata(branch->id);
    if (!conn) {
      st = std::unexpected(conn.error());
    } else if (wal_end) {
      // The backup's checkpoint removes older WAL: a temporary slot (gone with this session) keeps
      // it from the latest redo point, so [wal_end, capture end) can still be read afterwards.
      std::string slot = "argon_" + snapshot_id;
      std::replace(slot.begin(), slot.end(), '-', '_');
      auto r = conn->exec(fmt::format("SELECT pg_create_physical_replication_slot('{}', true, true)", slot));
      if (!r) st = std::unexpected(r.error());
    }
    if (st && conn) {
      auto info = storage_.create_snapshot_from_running(snapshot_id, pgdata, *conn, *major);
      if (!info) {
        st = std::unexpected(info.error());
      } else {
        lsn = info->stop_lsn;
        bytes = info->stats.bytes;
        if (wal_end) {
          // Up to the backup's end in the branch's own WAL (the slot kept it); after it, in the WAL
          // the snapshot copied: a restore replays all of that, not only up to the stop LSN.
          const auto stop = storage::parse_lsn(info->stop_lsn);
          st = verify_no_commit(op.project_id, branch->id, pgdata, *wal_end, stop);
          if (st && stop) {
            st = verify_no_commit(op.project_id, branch->id, storage_.snapshot_pgdata(snapshot_id), *stop, std::nullopt);
          }
        }
      }
    }
  } else {
    auto stats = storage_.create_snapshot_from_stopped(snapshot_id, storage_.branch_pgdata(branch->id));
    if (!stats) {
      st = std::unexpected(stats.error());
    } else {
      bytes = stats->bytes;
      // The copy holds all of the stopped branch's WAL.
      if (wal_end) st = verify_no_commit(op.project_id, branch->id, storage_.snapshot_pgdata(snapshot_id), *wal_end, std::nullopt);
    }
  }
  if (!st) {
    // Nothing half-made stays: no data, and the snapshot disappears from the list.
    (void)storage_.remove_snapshot(snapshot_id);
    (void)catalog_.run([&](Tx& tx) { return tx.delete_snapshot_row(snapshot_id); });
    return std::unexpected(st.error());
  }
  crash_point("snapshot.captured");
  auto done = catalog_.run([&](Tx& tx) -> Status {
    auto s = tx.get_snapshot(op.project_id, snapshot_id, true);
    if (!s) return {};
    s->state = catalog::snapshot_state::kReady;
    if (!s->timestamp) s->timestamp = captured_at;
    if (lsn && !s->lsn) s->lsn = lsn;  // a point asked for stays what the snapshot shows
    if (bytes) s->full_size = static_cast<int64_t>(bytes);
    s->updated_at = clock_.now_ms();
    return tx.put_snapshot(*s);
  });
  if (!done) return std::unexpected(done.error());
  return Outcome::kDone;
}

Result<storage::WalHistory> Engine::branch_wal_history(const Branch& branch) {
  if (!storage_.branch_exists(branch.id)) {
    return fail(ErrorCode::kLocked, fmt::format("branch {} has no data yet; retry once its operations finish", branch.id));
  }
  auto major = project_pg_major(branch.project_id);
  if (!major) return std::unexpected(major.error());
  const PgInstall* pg = pg_.find(*major);
  if (!pg) return fail(ErrorCode::kInternal, fmt::format("PostgreSQL {} is not installed on this server", *major));
  return storage_.wal_history(*pg, storage_.branch_pgdata(branch.id));
}

Status Engine::check_pg_settings(int pg_major, const std::string& settings_json, std::string_view field) {
  const auto settings = pg_settings_of(settings_json);
  if (settings.empty()) return {};
  const PgInstall* pg = pg_.find(pg_major);
  if (!pg) return fail(ErrorCode::kInternal, fmt::format("PostgreSQL {} is not installed on this server", pg_major));
  auto st = computes_.check_settings(*pg, settings, storage_.data_dir() / "run" / ".settings-check");
  if (!st && st.error().code == ErrorCode::kBadRequest) {
    return fail(ErrorCode::kBadRequest, fmt::format("{}: {}", field, st.error().message));
  }
  return st;
}

// A snapshot asked for at a point in time was accepted because nothing had committed on the branch
// after that point by the API call, which saw the branch's WAL end at `wal_end`. Anything committed
// in `pgdata`'s WAL from `from` (to `until`) means the point is no longer the state captured.
Status Engine::verify_no_commit(const std::string& project_id, const std::string& branch_id,
                                const std::filesystem::path& pgdata, uint64_t from, std::optional<uint64_t> until) {
  auto major = project_pg_major(project_id);
  if (!major) return std::unexpected(major.error());
  const PgInstall* pg = pg_.find(*major);
  if (!pg) return fail(ErrorCode::kInternal, fmt::format("PostgreSQL {} is not installed on this server", *major));
  auto history = storage_.wal_history(*pg, pgdata, from, until);
  if (!history) {
    return fail(ErrorCode::kConflict,
                fmt::format("could not verify that nothing committed on branch {} after the snapshot call ({}); the "
                            "point asked for cannot be captured exactly, take the snapshot again",
                            branch_id, history.error().message));
  }
  if (history->last_commit_lsn) {
    return fail(ErrorCode::kConflict,
                fmt::format("a transaction committed on branch {} (at LSN {}) after the snapshot call and before the "
                            "capture, so the point asked for is no longer the branch's state; take the snapshot again",
                            branch_id, storage::format_lsn(*history->last_commit_lsn)));
  }
  return {};
}

Result<Engine::Outcome> Engine::delete_snapshot(Operation& op) {
  const std::string snapshot_id = param_string(parse_params(op.params_json), "snapshot_id");
  if (auto st = storage_.remove_snapshot(snapshot_id); !st) return std::unexpected(st.error());
  auto st = catalog_.run([&](Tx& tx) { return tx.delete_snapshot_row(snapshot_id); });
  if (!st) return std::unexpected(st.error());
  return Outcome::kDone;
}

// The restored branch N takes the target T's place (ARCHITECTURE.md §4): N's compute starts while T
// still serves; then T's endpoints are gated, their clients told why and disconnected, the
// endpoints bound to N together with T's name and flags in one catalog transaction, and the gate
// lifted; T's compute stops last. Idempotent: after a crash the swap is either done (only T's
// compute is left to stop) or not begun.
Result<Engine::Outcome> Engine::finalize_restore(Operation& op) {
  auto params = parse_params(op.params_json);
  const std::string target_id = param_string(params, "target_branch_id");
  const std::string old_name = param_string(params, "old_name");
  auto loaded = catalog_.transact([&](Tx& tx) -> Result<std::pair<std::optional<Branch>, std::optional<Branch>>> {
    return std::pair{tx.get_branch(op.project_id, op.branch_id.value_or("")),
                     tx.get_branch(op.project_id, target_id)};
  });
  if (!loaded) return std::unexpected(loaded.error());
  auto& [restored, target] = *loaded;
  if (!restored) return Outcome::kSkipped;
  if (restored->restore_status == std::string("finalized")) {
    if (auto st = computes_.stop(target_id, options_.compute_stop_timeout); !st) return std::unexpected(st.error());
    return Outcome::kDone;
  }
  if (!target) return fail(ErrorCode::kConflict, fmt::format("target branch {} no longer exists", target_id));
  auto endpoints = catalog_.transact([&](Tx& tx) -> Result<std::vector<Endpoint>> {
    return tx.list_branch_endpoints(target->id);
  });
  if (!endpoints) return std::unexpected(endpoints.error());
  bool serve = false;
  for (const auto& ep : *endpoints) {
    serve |= !ep.disabled && (ep.current_state == catalog::endpoint_state::kActive || computes_.running(target->id));
  }
  if (serve) {
    if (auto st = ensure_compute(*restored); !st) return std::unexpected(st.error());
  }
  crash_point("swap.new_started");
  const std::string reason = fmt::format(
      "terminating connection: branch {} was restored from a snapshot; reconnect to reach the restored data",
      target->name);
  if (control_) {
    for (const auto& ep : *endpoints) control_->gate(ep.id);
    for (const auto& ep : *endpoints) control_->terminate(ep.id, reason);
  }
  crash_point("swap.gated");
  auto swapped = catalog_.run([&](Tx& tx) -> Status {
    auto n = tx.get_branch(op.project_id, restored->id);
    auto t = tx.get_branch(op.project_id, target->id);
    if (!n || !t) return fail(ErrorCode::kConflict, "the restored or the target branch was deleted meanwhile");
    const int64_t now = clock_.now_ms();
    const std::string name = t->name;
    t->name = old_name;
    if (t->name.empty()) {
      // "<name> (old)"; a second restore of the same branch gets "(old 2)", and so on, so that every
      // branch name stays unambiguous.
      auto taken = [&](const std::string& candidate) {
        for (const auto& other : tx.list_branches(op.project_id)) {
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
    const bool running = computes_.running(n->id);
    for (auto ep : tx.list_branch_endpoints(t->id)) {
      ep.branch_id = n->id;
      ep.current_state = std::string(running ? catalog::endpoint_state::kActive : catalog::endpoint_state::kIdle);
      ep.pending_state.reset();
      if (running) ep.started_at = ep.last_active = now;
      ep.updated_at = now;
      ARGON_RETURN_IF_ERROR(tx.put_endpoint(ep));
    }
    return {};
  });
  crash_point("swap.swapped");
  if (control_) {
    for (const auto& ep : *endpoints) control_->ungate(ep.id);
  }
  if (!swapped) return std::unexpected(swapped.error());
  if (auto st = computes_.stop(target->id, options_.compute_stop_timeout); !st) return std::unexpected(st.error());
  return Outcome::kDone;
}

// POST /branches/{id}/restore from another branch's head (reset from parent): the branch keeps its
// id and endpoints and gets a consistent copy of the source's current state. The copy is built
// beside it; then its clients are gated and told why, its compute stops, the two directories are
// exchanged atomically, the old data goes to the preserve branch (or away), and the compute
// starts again if it ran. Interrupted anywhere, it runs again from where it stopped.
Result<Engine::Outcome> Engine::reset_branch(Operation& op) {
  const auto params = parse_params(op.params_json);
  const std::string source_id = param_string(params, "source_branch_id");
  const std::string preserve = param_string(params, "preserve_branch_id");
  const std::optional<std::string> preserve_id = preserve.empty() ? std::nullopt : std::optional(preserve);
  auto loaded = catalog_.transact([&](Tx& tx) -> Result<std::pair<std::optional<Branch>, std::optional<Branch>>> {
    return std::pair{tx.get_branch(op.project_id, op.branch_id.value_or("")), tx.get_branch(op.project_id, source_id)};
  });
  if (!loaded) return std::unexpected(loaded.error());
  auto& [branch, source] = *loaded;
  if (!branch) return Outcome::kSkipped;
  auto major = project_pg_major(op.project_id);
  if (!major) return std::unexpected(major.error());
  auto endpoints = catalog_.transact([&](Tx& tx) -> Result<std::vector<Endpoint>> {
    return tx.list_branch_endpoints(branch->id);
  });
  if (!endpoints) return std::unexpected(endpoints.error());
  bool serve = computes_.running(branch->id);
  for (const auto& ep : *endpoints) serve |= !ep.disabled && ep.current_state == catalog::endpoint_state::kActive;

  std::optional<std::string> lsn;
  if (!storage_.reset_exchanged(branch->id, op.id)) {
    Status st;
    if (!source) {
      st = fail(ErrorCode::kConflict, fmt::format("branch {}, the source of the reset, no longer exists", source_id));
    } else if (computes_.running(source->id)) {
      auto conn = PgConn::connect(computes_.admin_conninfo(source->id));
      if (!conn) {
        st = std::unexpected(conn.error());
      } else {
        auto info = storage_.capture_reset_from_running(branch->id, storage_.branch_pgdata(source->id), *conn, *major, op.id);
        if (!info) st = std::unexpected(info.error());
        else lsn = info->stop_lsn;
      }
    } else {
      auto stats = storage_.capture_reset_from_stopped(branch->id, storage_.branch_pgdata(source->id), op.id);
      if (!stats) st = std::unexpected(stats.error());
    }
    if (!st) {
      (void)storage_.abandon_reset(branch->id);
      if (preserve_id) {
        (void)catalog_.run([&](Tx& tx) -> Status {
          for (auto child : tx.list_branches(op.project_id)) {
            if (child.parent_id == *preserve_id) {
              child.parent_id = branch->id;  // the children come back
              (void)tx.put_branch(child);
            }
          }
          return tx.delete_branch_row(*preserve_id);
        });
      }
      return std::unexpected(st.error());
    }
    crash_point("reset.captured");
    const std::string reason = fmt::format(
        "terminating connection: branch {} was reset from branch {}; reconnect to reach its new data", branch->name,
        source->name);
    if (control_) {
      for (const auto& ep : *endpoints) control_->gate(ep.id);
      for (const auto& ep : *endpoints) control_->terminate(ep.id, reason);
    }
    if (auto s = computes_.stop(branch->id, options_.compute_stop_timeout); !s) {
      if (control_) for (const auto& ep : *endpoints) control_->ungate(ep.id);
      return std::unexpected(s.error());
    }
    if (auto s = storage_.exchange_reset(branch->id); !s) {
      if (control_) for (const auto& ep : *endpoints) control_->ungate(ep.id);
      return std::unexpected(s.error());
    }
    crash_point("reset.exchanged");
  }
  Status st = storage_.finish_reset(branch->id, preserve_id);
  if (st && serve) st = ensure_compute(*branch);
  if (control_) for (const auto& ep : *endpoints) control_->ungate(ep.id);
  if (!st) return std::unexpected(st.error());
  auto done = catalog_.run([&](Tx& tx) -> Status {
    const int64_t now = clock_.now_ms();
    auto b = tx.get_branch(op.project_id, branch->id);
    if (b) {
      b->parent_timestamp = now;
      if (lsn) b->parent_lsn = lsn;
      if (b->ttl_interval_seconds) b->expires_at = now + *b->ttl_interval_seconds * 1000;  // the TTL restarts
      b->current_state = catalog::branch_state::kReady;
      b->pending_state.reset();
      b->state_changed_at = b->updated_at = now;
      ARGON_RETURN_IF_ERROR(tx.put_branch(*b));
      const bool running = computes_.running(b->id);
      for (auto ep : tx.list_branch_endpoints(b->id)) {
        ep.current_state = std::string(running ? catalog::endpoint_state::kActive : catalog::endpoint_state::kIdle);
        ep.pending_state.reset();
        if (running) ep.started_at = ep.last_active = now;
        ep.updated_at = now;
        ARGON_RETURN_IF_ERROR(tx.put_endpoint(ep));
      }
    }
    if (preserve_id) {
      if (auto pb = tx.get_branch(op.project_id, *preserve_id)) {
        pb->current_state = catalog::branch_state::kReady;
        pb->pending_state.reset();
        pb->state_changed_at = pb->updated_at = now;
        ARGON_RETURN_IF_ERROR(tx.put_branch(*pb));
      }
    }
    return {};
  });
  if (!done) return std::unexpected(done.error());
  return Outcome::kDone;
}

void Engine::on_compute_crash(const std::string& branch_id) {
  (void)catalog_.run([&](Tx& tx) -> Status {
    const int64_t now = clock_.now_ms();
    for (auto ep : tx.list_branch_endpoints(branch_id)) {
      ep.current_state = catalog::endpoint_state::kIdle;
      ep.suspended_at = now;
      ep.updated_at = now;
      (void)tx.put_endpoint(ep);
    }
    return {};
  });
}

void Engine::finish_deleted_projects() {
  (void)catalog_.run([&](Tx& tx) -> Status {
    for (const auto& p : tx.list_deleted_projects()) {
      if (!tx.list_branches(p.id, true).empty() || !tx.list_snapshots(p.id, true).empty()) continue;
      bool pending = false;
      for (const auto& op : tx.list_pending_operations()) pending |= op.project_id == p.id;
      if (pending) continue;
      spdlog::info("project {} deleted", p.id);
      (void)tx.delete_project_operations(p.id);
      crash_point("project.removing");  // inside the transaction: it must roll back whole
      (void)tx.delete_project_row(p.id);
    }
    return {};
  });
}

}  // namespace argon::ops
