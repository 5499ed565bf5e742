// One action carries out one kind of operation (ops/params.h). The scheduler picks the action by
// the operation's kind, parses its parameters once and calls `run`; the action loads what it needs
// from the catalog in one read, does its work through the ActionEnv, and records its result. Every
// action is idempotent: after a crash it runs again from the start and finishes or compensates.
#pragma once

#include <map>
#include <memory>

#include "catalog/model.h"
#include "common/error.h"
#include "ops/params.h"

namespace argon::ops {

class ActionEnv;

enum class Outcome { kDone, kSkipped };  // skipped: what it was for is gone (deleted meanwhile)

class Action {
 public:
  virtual ~Action() = default;
  [[nodiscard]] virtual Result<Outcome> run(catalog::Operation& op, const ActionParams& params) = 0;
};

// An action of one parameter type: `execute` gets its parameters typed.
template <typename P>
class TypedAction : public Action {
 public:
  explicit TypedAction(ActionEnv& env) : env_(env) {}
  Result<Outcome> run(catalog::Operation& op, const ActionParams& params) final {
    return execute(op, std::get<P>(params));
  }

 protected:
  [[nodiscard]] virtual Result<Outcome> execute(catalog::Operation& op, const P& params) = 0;
  ActionEnv& env_;
};

// Every action, by the kind it runs (ops/actions/*.cc).
std::map<ActionKind, std::unique_ptr<Action>> make_actions(ActionEnv& env);

}  // namespace argon::ops
