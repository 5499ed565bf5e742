// The CLI's command tree (CLI11): resource commands over the Neon API v2. Parsing picks one
// command; run() then opens a Session and carries it out.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>

#include "cli/session.h"
#include "common/error.h"

namespace argon::cli {

// Exit codes (README, "argon CLI").
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       // the API refused the request, or an operation failed
inline constexpr int kExitUsage = 2;        // bad arguments or input
inline constexpr int kExitNotFound = 3;     // unknown or ambiguous project, branch or snapshot
inline constexpr int kExitUnreachable = 4;  // the API cannot be reached, or a wait timed out
inline constexpr int kExitAuth = 5;         // the API key was refused

int exit_code_for(const Error& e);

// "24h", "30m", "7d", "90s" → seconds.
Result<int64_t> parse_duration(const std::string& text);

// The workflow commands (workflows.cc); `select` makes one the command to run.
void add_workflow_commands(CLI::App& app,
                           const std::function<void(std::function<Status(Session&)>)>& select);

class Commands {
 public:
  explicit Commands(CLI::App& app);
  ~Commands();
  // Runs the command parsing chose.
  Status run();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace argon::cli
