#include "cli/workflow.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>

#include "cli/output.h"
#include "common/clock.h"
#include "common/file_util.h"

namespace argon::cli {

namespace json = boost::json;
namespace fs = std::filesystem;

Workflow::Workflow(Session&, const std::string& project, const std::string& id, std::string command,
                   int steps, bool restart)
    : command_(std::move(command)), steps_(steps) {
  std::string file = project + "-" + id;
  for (auto& c : file) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  }
  path_ = context_path().parent_path() / "runs" / (file + ".json");
  if (restart) finish();
  if (auto text = read_file(path_)) {
    boost::system::error_code ec;
    auto v = json::parse(*text, ec);
    if (!ec && v.is_object() && v.as_object().contains("steps") && v.at("steps").is_object()) {
      done_ = v.at("steps").as_object();
      resumed_ = !done_.empty();
      if (v.as_object().contains("started_at") && v.at("started_at").is_string()) {
        started_at_ = std::string(v.at("started_at").as_string());
      }
    }
  }
  if (started_at_.empty()) started_at_ = format_time(std::time(nullptr));
  if (resumed_)
    say(fmt::format("continuing an unfinished run ({} step(s) done before)", done_.size()));
}

Result<json::value> Workflow::step(const std::string& key, const std::string& title,
                                   const std::function<Result<json::value>()>& fn) {
  const int n = ++next_;
  if (auto it = done_.find(key); it != done_.end()) {
    say(fmt::format("[{}/{}] {}: done in an earlier run", n, steps_, title));
    return it->value();
  }
  say(fmt::format("[{}/{}] {}", n, steps_, title));
  const auto start = std::chrono::steady_clock::now();
  auto r = fn();
  if (!r) {
    std::string message = fmt::format(
        "step {}/{} ({}) failed: {}\n  to continue once the cause is fixed, run the same "
        "command again: {}",
        n, steps_, title, r.error().message, command_);
    if (!undo_.empty()) message += fmt::format("\n  to undo what is done: {}", undo_);
    return std::unexpected(Error(r.error().code, message));
  }
  done_[key] = *r;
  if (auto st = save(); !st) return std::unexpected(st.error());
  say(fmt::format("      done in {:.1f} s",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()));
  return r;
}

Status Workflow::save() {
  std::error_code ec;
  fs::create_directories(path_.parent_path(), ec);
  return write_file_atomic(
      path_,
      json::serialize(
          json::object{{"command", command_}, {"started_at", started_at_}, {"steps", done_}}) +
          "\n",
      0600);
}

void Workflow::finish() {
  std::error_code ec;
  fs::remove(path_, ec);
}

}  // namespace argon::cli
