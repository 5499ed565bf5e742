#include "ops/scheduler.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>
#include <set>
#include <variant>

#include "common/crash_point.h"

namespace argon::ops {

using catalog::Operation;
using catalog::Tx;

Scheduler::Scheduler(ActionEnv& env, std::map<ActionKind, std::unique_ptr<Action>> actions,
                     Finished on_finished)
    : env_(env), actions_(std::move(actions)), on_finished_(std::move(on_finished)) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() {
  std::lock_guard lock(mu_);
  stopping_ = false;
  threads_.emplace_back([this] { dispatch_loop(); });
  for (int i = 0; i < env_.options.workers; ++i) {
    threads_.emplace_back([this] { worker_loop(Lane::kData); });
  }
  for (int i = 0; i < env_.options.compute_workers; ++i) {
    threads_.emplace_back([this] { worker_loop(Lane::kCompute); });
  }
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& cv : work_cv_) cv.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void Scheduler::notify() {
  {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  cv_.notify_all();
}

namespace {

// What an operation touches, for ordering the two lanes against each other.
struct Footprint {
  bool compute = false;
  std::set<std::string> branches;
  bool whole_project = false;  // touches branches it does not name (a row from before they were)
  // A finalize_restore's target: it keeps serving until the finalize begins, so a compute
  // operation on it (a wake) may pass a finalize still waiting for its clone.
  std::optional<std::string> swap_target;
};

Footprint footprint(const Operation& op) {
  Footprint f;
  const auto kind = parse_action_kind(op.kind);
  if (!kind) {
    f.whole_project = true;  // fails when it runs; until then it orders like anything unknown
    return f;
  }
  f.compute = is_compute_kind(*kind);
  if (op.branch_id) f.branches.insert(*op.branch_id);
  auto params = parse_params(*kind, op.params_json);
  if (!params) {
    f.whole_project = true;
    return f;
  }
  std::visit(
      [&](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, params::CreateBranch>) {
          if (p.parent_branch_id) {
            f.branches.insert(*p.parent_branch_id);
          } else if (p.source == params::CreateBranch::Source::kParent) {
            f.whole_project = true;
          }
        } else if constexpr (std::is_same_v<T, params::FinalizeRestore>) {
          f.swap_target = p.target_branch_id;
        } else if constexpr (std::is_same_v<T, params::ResetBranch>) {
          f.branches.insert(p.source_branch_id);
          if (p.preserve_branch_id) f.branches.insert(*p.preserve_branch_id);
        } else if constexpr (std::is_same_v<T, params::SuspendCompute>) {
          f.branches.insert(p.branch_id);
        }
      },
      *params);
  return f;
}

bool overlap(const std::set<std::string>& a, const std::set<std::string>& b) {
  for (const auto& x : a) {
    if (b.contains(x)) return true;
  }
  return false;
}

}  // namespace

std::vector<Operation> Scheduler::runnable(std::vector<Operation> pending) {
  // Walk oldest first, remembering per project what earlier (still pending) operations hold.
  struct Earlier {
    bool data = false;                       // a data operation
    bool compute = false;                    // a compute operation
    bool data_whole_project = false;         // a data operation touching unnamed branches
    std::set<std::string> data_branches;     // branches earlier data operations touch
    std::set<std::string> compute_branches;  // and earlier compute operations
    std::set<std::string> endpoints;         // endpoints of earlier compute operations
  };
  std::map<std::string, Earlier> earlier;
  // Branches of compute operations under way, by project: a finalize_restore waits for those on
  // its target, even later ones (a wake that passed it).
  std::map<std::string, std::set<std::string>> computing;
  for (const auto& op : pending) {
    if (!in_flight_.contains(op.id)) continue;
    if (const Footprint f = footprint(op); f.compute)
      computing[op.project_id].insert(f.branches.begin(), f.branches.end());
  }
  std::vector<Operation> out;
  for (auto& op : pending) {
    Earlier& e = earlier[op.project_id];
    const Footprint f = footprint(op);
    bool blocked;
    if (f.compute) {
      blocked = e.endpoints.contains(op.endpoint_id.value_or("")) || e.data_whole_project ||
                f.whole_project || overlap(f.branches, e.data_branches) ||
                overlap(f.branches, e.compute_branches);
      e.compute = true;
      e.endpoints.insert(op.endpoint_id.value_or(""));
      e.compute_branches.insert(f.branches.begin(), f.branches.end());
    } else {
      blocked = e.data || e.compute ||
                (f.swap_target && computing[op.project_id].contains(*f.swap_target));
      e.data = true;
      e.data_whole_project |= f.whole_project;
      e.data_branches.insert(f.branches.begin(), f.branches.end());
      // Once it runs (or is about to), later compute operations on the target wait for the swap.
      if (f.swap_target && (!blocked || in_flight_.contains(op.id)))
        e.data_branches.insert(*f.swap_target);
    }
    if (!blocked && !in_flight_.contains(op.id)) out.push_back(std::move(op));
  }
  return out;
}

void Scheduler::dispatch_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return dirty_ || stopping_; });
    if (stopping_) break;
    dirty_ = false;
    lock.unlock();
    auto pending = env_.catalog.transact(
        [](Tx& tx) -> Result<std::vector<Operation>> { return tx.list_pending_operations(); });
    lock.lock();
    if (!pending) {
      spdlog::error("operations engine cannot read the catalog: {}", pending.error().detail);
      continue;
    }
    for (auto& op : runnable(std::move(*pending))) {
      const auto kind = parse_action_kind(op.kind);
      const int lane =
          static_cast<int>(kind && is_compute_kind(*kind) ? Lane::kCompute : Lane::kData);
      in_flight_.insert(op.id);
      queue_[lane].push_back(std::move(op));
      work_cv_[lane].notify_one();
    }
  }
}

void Scheduler::worker_loop(Lane lane) {
  const int l = static_cast<int>(lane);
  std::unique_lock lock(mu_);
  while (true) {
    work_cv_[l].wait(lock, [&] { return stopping_ || !queue_[l].empty(); });
    if (queue_[l].empty()) return;  // stopping and drained
    Operation op = std::move(queue_[l].front());
    queue_[l].pop_front();
    lock.unlock();
    const bool ran = run(op);
    lock.lock();
    in_flight_.erase(op.id);
    // One that could not start waits for the next look (at most 500 ms), not a tight retry loop.
    if (ran) dirty_ = true;
    cv_.notify_all();
  }
}

bool Scheduler::run(Operation op) {
  const int64_t started = env_.clock.now_ms();
  op.status = catalog::op_status::kRunning;
  op.updated_at = started;
  if (auto st = env_.catalog.run([&](Tx& tx) { return tx.put_operation(op); }); !st) {
    spdlog::error("operation {} {} could not be marked running ({}); it stays pending", op.id,
                  op.kind, st.error().detail);
    return false;
  }
  spdlog::info("operation {} {} started (project {}, branch {}, endpoint {})", op.id, op.kind,
               op.project_id, op.branch_id.value_or("-"), op.endpoint_id.value_or("-"));

  Result<Outcome> result = fail(ErrorCode::kInternal, "not run");
  try {
    Foreground::Scope running(*env_.foreground);  // the snapshot checks' reads wait meanwhile
    result = execute(op);
  } catch (const std::exception& e) {
    result = fail(ErrorCode::kInternal, "internal error", e.what());
  }
  crash_point(fmt::format("{}.executed", op.action));
  const int64_t now = env_.clock.now_ms();
  op.updated_at = now;
  op.total_duration_ms = now - op.created_at;
  if (result) {
    op.status =
        *result == Outcome::kDone ? catalog::op_status::kFinished : catalog::op_status::kSkipped;
    op.error.reset();
  } else {
    op.status = catalog::op_status::kFailed;
    op.failures_count++;
    op.error = result.error().message;
    spdlog::error("operation {} {} failed: {} {}", op.id, op.kind, result.error().message,
                  result.error().detail);
  }
  if (auto st = env_.catalog.run([&](Tx& tx) { return tx.put_operation(op); }); !st) {
    // Actions are idempotent: left pending, it runs again and finds its work done.
    spdlog::error(
        "operation {} {} ended but its status could not be recorded ({}); it will run again", op.id,
        op.kind, st.error().detail);
    return true;
  }
  spdlog::info("operation {} {} {} in {} ms", op.id, op.kind, op.status, now - started);
  on_finished_(op);
  return true;
}

Result<Outcome> Scheduler::execute(Operation& op) {
  const auto kind = parse_action_kind(op.kind);
  const auto action = kind ? actions_.find(*kind) : actions_.end();
  if (action == actions_.end()) {
    return fail(ErrorCode::kInternal, "internal error",
                fmt::format("operation {} has unknown kind '{}'", op.id, op.kind));
  }
  ARGON_ASSIGN_OR_RETURN(const ActionParams params, parse_params(*kind, op.params_json));
  return action->second->run(op, params);
}

}  // namespace argon::ops
