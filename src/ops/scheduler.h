// The scheduler runs the operations the planner committed to the catalog. A dispatcher thread reads
// the pending operations and hands the oldest of each project to a worker pool (per-project FIFO:
// a project's operations run one at a time in creation order; projects run in parallel). A worker
// marks the operation running, runs the action its kind names, and records how it ended. Every
// action is idempotent, so an operation interrupted by a crash simply runs again.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "catalog/model.h"
#include "ops/action.h"
#include "ops/action_env.h"

namespace argon::ops {

class Scheduler {
 public:
  // Called on the worker after an operation's end was recorded.
  using Finished = std::function<void(const catalog::Operation&)>;

  Scheduler(ActionEnv& env, std::map<ActionKind, std::unique_ptr<Action>> actions,
            Finished on_finished);
  ~Scheduler();

  void start();
  // Stops dispatching and waits for the running operations.
  void stop();
  // Operations were committed: look again.
  void notify();

 private:
  void dispatch_loop();
  void worker_loop();
  // False when the operation could not be marked running (it stays pending).
  bool run(catalog::Operation op);
  Result<Outcome> execute(catalog::Operation& op);

  ActionEnv& env_;
  const std::map<ActionKind, std::unique_ptr<Action>> actions_;
  const Finished on_finished_;

  std::mutex mu_;
  std::condition_variable cv_;            // the dispatcher's wake-up; guarded by mu_
  std::condition_variable work_cv_;       // the workers'
  std::deque<catalog::Operation> queue_;  // guarded by mu_
  std::set<std::string>
      busy_projects_;      // guarded by mu_: a project with an operation queued or running
  bool dirty_ = true;      // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace argon::ops
