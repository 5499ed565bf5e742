// A multi-step workflow (promote, refresh, rollback, setup-dev) that can be interrupted anywhere
// (Ctrl-C, a crash, a failed step) and run again with the same command: each finished step's
// result is kept in a journal file, and a re-run skips finished steps and reuses their results.
// Steps themselves are written so that one interrupted midway can run again (they look at the
// API's state first). Every step is announced on stderr; a failure names the step and prints the
// commands to continue or to undo.
#pragma once

#include <boost/json.hpp>
#include <filesystem>
#include <functional>
#include <string>

#include "cli/session.h"
#include "common/error.h"

namespace argon::cli {

class Workflow {
 public:
  // `id` names this run (e.g. "promote-dev-to-prod"); `command` is the command line to re-run.
  // `restart` forgets an earlier unfinished run.
  Workflow(Session& session, const std::string& project, const std::string& id, std::string command,
           int steps, bool restart);

  // Runs `fn` as the next step unless the journal has its result; returns that result.
  Result<boost::json::value> step(const std::string& key, const std::string& title,
                                  const std::function<Result<boost::json::value>()>& fn);
  // What to tell the user if a later step fails: the command that undoes what is done so far.
  void set_undo(std::string command) { undo_ = std::move(command); }
  // The run is complete: its journal goes.
  void finish();
  // Whether an earlier run of this workflow left a journal (it is being resumed).
  bool resumed() const { return resumed_; }
  // When the first run of this workflow began (RFC 3339): anything it created is no older.
  const std::string& started_at() const { return started_at_; }

 private:
  Status save();

  std::filesystem::path path_;
  std::string command_;
  std::string undo_;
  int steps_;
  int next_ = 0;
  bool resumed_ = false;
  boost::json::object done_;
  std::string started_at_;
};

}  // namespace argon::cli
