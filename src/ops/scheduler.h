// The scheduler runs the operations the planner committed to the catalog, in two lanes:
// - data operations (clones, snapshots, restores, deletes, role/database changes) run one at a
//   time per project, in creation order, on `workers` threads; projects run in parallel;
// - compute operations (start_compute, suspend_compute) run one at a time per endpoint, in
//   creation order, on their own `compute_workers` threads, so a wake never waits behind a clone.
// The lanes meet at branches: an operation waits for every earlier one of the other lane that
// touches a branch it touches (a compute op for its branch; a data op for the branches it reads
// or changes), and a data operation waits for every earlier compute operation of its project.
// One exception: a finalize_restore's target keeps serving until the finalize begins, so a wake
// of the target passes a finalize still waiting for its clone, and the finalize then waits for
// that wake. A worker marks the operation running, runs the action its kind names, and records how
// it ended. Every action is idempotent, so an operation interrupted by a crash simply runs again.
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
  enum class Lane { kData, kCompute };
  void dispatch_loop();
  // Pending operations, oldest first, to the ones that may start now.
  std::vector<catalog::Operation> runnable(std::vector<catalog::Operation> pending);
  void worker_loop(Lane lane);
  // False when the operation could not be marked running (it stays pending).
  bool run(catalog::Operation op);
  Result<Outcome> execute(catalog::Operation& op);

  ActionEnv& env_;
  const std::map<ActionKind, std::unique_ptr<Action>> actions_;
  const Finished on_finished_;

  std::mutex mu_;
  std::condition_variable cv_;               // the dispatcher's wake-up; guarded by mu_
  std::condition_variable work_cv_[2];       // the workers' of each lane
  std::deque<catalog::Operation> queue_[2];  // guarded by mu_, by lane
  std::set<std::string> in_flight_;          // guarded by mu_: ids queued or running here
  bool dirty_ = true;                        // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace argon::ops
