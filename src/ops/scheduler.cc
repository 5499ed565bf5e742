#include "ops/scheduler.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

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
  for (int i = 0; i < env_.options.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

void Scheduler::stop() {
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

void Scheduler::notify() {
  {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  cv_.notify_all();
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
    std::set<std::string> seen;
    for (auto& op : *pending) {
      if (!seen.insert(op.project_id).second) continue;  // FIFO: only the oldest per project
      if (busy_projects_.contains(op.project_id)) continue;
      busy_projects_.insert(op.project_id);
      queue_.push_back(std::move(op));
      work_cv_.notify_one();
    }
  }
}

void Scheduler::worker_loop() {
  std::unique_lock lock(mu_);
  while (true) {
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping and drained
    Operation op = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    const bool ran = run(op);
    lock.lock();
    busy_projects_.erase(op.project_id);
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
