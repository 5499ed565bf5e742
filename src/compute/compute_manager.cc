#include "compute/compute_manager.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>

#include "common/file_util.h"
#include "common/pg_conn.h"
#include "compute/endpoint_access.h"

namespace argon::compute {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// The message of the last FATAL or PANIC line in PostgreSQL's output `text`, or "".
std::string fatal_reason(std::string_view text) {
  std::string reason;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    for (std::string_view level : {"FATAL:", "PANIC:"}) {
      if (auto at = line.find(level); at != std::string_view::npos) {
        std::string_view rest = line.substr(at + level.size());
        rest.remove_prefix(std::min(rest.find_first_not_of(' '), rest.size()));
        reason = fmt::format("{} {}", level, rest);
      }
    }
  }
  return reason;
}

// PostgreSQL's own reason for a failed start: the last FATAL or PANIC the compute logged after
// offset `from` (where this start began; at most the last 8 kB), or "".
std::string start_failure_reason(const fs::path& log, std::streamoff from) {
  std::ifstream in(log, std::ios::binary);
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size <= from) return "";
  in.seekg(std::max<std::streamoff>(from, size - 8192));
  const std::string tail((std::istreambuf_iterator<char>(in)), {});
  return fatal_reason(tail);
}

}  // namespace

ComputeManager::ComputeManager(ProcessRunner& runner, OsUser pg_user, bool fsync)
    : runner_(runner), pg_user_(std::move(pg_user)), fsync_(fsync) {
  monitor_ = std::thread([this] { monitor_loop(); });
}

ComputeManager::~ComputeManager() {
  {
    std::lock_guard lock(mu_);
    shutdown_ = true;
  }
  exited_cv_.notify_all();
  if (monitor_.joinable()) monitor_.join();
}

void ComputeManager::set_crash_callback(CrashCallback cb) {
  std::lock_guard lock(mu_);
  on_crash_ = std::move(cb);
}

void ComputeManager::monitor_loop() {
  std::unique_lock lock(mu_);
  while (!shutdown_) {
    std::vector<std::pair<std::string, int>> crashed;
    for (auto it = procs_.begin(); it != procs_.end();) {
      if (it->second.exit_code) {
        ++it;
        continue;
      }
      if (auto code = try_reap(it->second.pid)) {
        it->second.exit_code = *code;
        if (it->second.abandoned) {
          spdlog::info("compute {} (pid {}) exited at last", it->first, it->second.pid);
          it = procs_.erase(it);
        } else if (it->second.stopping) {
          ++it;  // stop() removes it
        } else {
          spdlog::warn("compute {} (pid {}) exited unexpectedly with status {}", it->first,
                       it->second.pid, *code);
          crashed.emplace_back(it->first, *code);
          it = procs_.erase(it);
        }
        exited_cv_.notify_all();
        continue;
      }
      ++it;
    }
    auto cb = on_crash_;
    if (!crashed.empty() && cb) {
      lock.unlock();
      for (const auto& [id, code] : crashed) cb(id, code);
      lock.lock();
    }
    exited_cv_.wait_for(lock, 100ms);
  }
}

// `link` becomes a symlink to `target` in one rename (a new link beside it, renamed over it).
static Status point_link(const fs::path& link, const fs::path& target) {
  const fs::path tmp = link.string() + ".new";
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_symlink(fs::absolute(target), tmp, ec);
  if (ec)
    return fail(ErrorCode::kInternal, fmt::format("cannot link {} to {}: {}", tmp.string(),
                                                  target.string(), ec.message()));
  if (::rename(tmp.c_str(), link.c_str()) != 0)
    return fail(ErrorCode::kInternal, fmt::format("cannot rename {} to {}: {}", tmp.string(),
                                                  link.string(), std::strerror(errno)));
  return {};
}

ComputeManager::Settings ComputeManager::with_endpoint_settings(const ComputeSpec& spec,
                                                                Settings ours) const {
  if (!fsync_) {
    ours.emplace_back("fsync", "off");
    ours.emplace_back("full_page_writes", "off");
  }
  for (const auto& s : spec.settings) ours.push_back(s);
  return ours;
}

ProcessSpec ComputeManager::postgres_process(const ComputeSpec& spec, std::vector<std::string> mode,
                                             const Settings& settings) const {
  ProcessSpec ps;
  ps.argv = {spec.pg.bin("postgres").string()};
  for (auto& arg : mode) ps.argv.push_back(std::move(arg));
  ps.argv.push_back("-D");
  ps.argv.push_back(spec.pgdata.string());
  for (const auto& [k, v] : settings) {
    ps.argv.push_back("-c");
    ps.argv.push_back(fmt::format("{}={}", k, v));
  }
  ps.env = {"PATH=" + spec.pg.bindir.string() + ":/usr/bin:/bin", "LC_ALL=C.UTF-8", "LANG=C.UTF-8",
            "PGTZ=UTC"};
  ps.user = pg_user_;
  ps.log_file = spec.log_file;
  ps.cwd = spec.pgdata;
  return ps;
}

Status ComputeManager::start(const ComputeSpec& spec, std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(mu_);
    auto it = procs_.find(spec.id);
    if (it != procs_.end() && !it->second.exit_code) {
      if (!it->second.stopping) return {};
      return fail(ErrorCode::kUnavailable,
                  fmt::format("compute {}: the previous postgres (pid {}) has not exited yet",
                              spec.id, it->second.pid));
    }
  }
  if (auto st = stop_stray(spec.pgdata, 30s); !st) return st;
  if (auto st = make_dir(spec.run_dir, 0700); !st) return st;
  if (::geteuid() == 0) {
    if (::chown(spec.run_dir.c_str(), pg_user_.uid, pg_user_.gid) != 0) {
      return fail(ErrorCode::kInternal, fmt::format("cannot chown {}", spec.run_dir.string()));
    }
  }

  Settings settings = with_endpoint_settings(
      spec,
      {
          {"listen_addresses", ""},
          {"unix_socket_directories", spec.run_dir.string()},
          {"unix_socket_permissions", "0700"},
          {"port", std::to_string(kComputePort)},
          {"cluster_name", spec.id},
          {"logging_collector", "off"},
          {"log_line_prefix", "%m [%p] %q%u@%d "},
          {"password_encryption", "scram-sha-256"},
          {"wal_level", "replica"},
          // Keeps the WAL a live capture (branch create, snapshot) copies after pg_backup_stop.
          {"wal_keep_size", "256MB"},
          // Data a backend writes (a bulk load) is handed to the kernel's writeback as it goes,
          // not left dirty for the next checkpoint: a snapshot or branch taken right after a
          // burst of writes (the backup's checkpoint, then the clones, wait for writeback) costs
          // about what the next one does.
          {"backend_flush_after", "256kB"},
          {"max_wal_senders", "2"},
      });
  // argon_roles keeps the proxy's verifier cache honest (endpoint_access.h). Only this postmaster's
  // file may be there, so an older one goes first; the endpoint's own preloads come after ours.
  const fs::path generation_file = spec.run_dir / std::string(kRoleGenerationFile);
  std::error_code rm_ec;
  fs::remove(generation_file, rm_ec);
  if (!spec.pg.role_library.empty()) {
    std::string preload = fmt::format("\"{}\"", spec.pg.role_library.string());
    std::string theirs;  // as PostgreSQL reads repeated settings: the last one counts
    std::erase_if(settings, [&](const auto& s) {
      if (s.first != "shared_preload_libraries") return false;
      theirs = s.second;
      return true;
    });
    if (!theirs.empty()) preload += "," + theirs;
    settings.emplace_back("shared_preload_libraries", preload);
    settings.emplace_back("argon.role_generation_file", generation_file.string());
  }
  ComputeSpec started = spec;
  if (!spec.data_link.empty()) {
    ARGON_RETURN_IF_ERROR(point_link(spec.data_link, spec.pgdata));
    started.pgdata = spec.data_link;  // cwd still resolves to the data directory itself
  }
  ProcessSpec ps = postgres_process(started, {}, settings);
  // SIGQUIT = immediate shutdown: if argond is killed, its computes go down with it and crash
  // recovery on the next start makes them consistent. The supervisor never leaves orphans.
  ps.parent_death_signal = SIGQUIT;

  std::error_code size_ec;
  const auto log_from = static_cast<std::streamoff>(fs::file_size(spec.log_file, size_ec));
  auto pid = runner_.spawn(ps);
  if (!pid) return std::unexpected(pid.error());
  {
    std::lock_guard lock(mu_);
    procs_[spec.id] = Proc{*pid, spec.run_dir, spec.data_link, false, false, std::nullopt};
  }
  spdlog::info("compute {} starting (pid {}, PostgreSQL {})", spec.id, *pid, spec.pg.version);

  std::string ping =
      socket_conninfo(spec.run_dir.string(), kComputePort, kAdminRole, "postgres", 2);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    {
      std::lock_guard lock(mu_);
      auto it = procs_.find(spec.id);
      if (it == procs_.end() || it->second.exit_code) {
        if (it != procs_.end()) procs_.erase(it);
        const std::string reason = start_failure_reason(spec.log_file, size_ec ? 0 : log_from);
        return fail(ErrorCode::kInternal,
                    reason.empty() ? fmt::format("compute {} failed to start; see {}", spec.id,
                                                 spec.log_file.string())
                                   : fmt::format("compute {} failed to start: {} (log: {})",
                                                 spec.id, reason, spec.log_file.string()),
                    tail_file(spec.log_file, 1500));
      }
    }
    if (PQping(ping.c_str()) == PQPING_OK) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      (void)stop(spec.id, 10s,
                 StopMode::kFast);  // the timeout is the error to report; stop escalates to kill
      return fail(ErrorCode::kUnavailable,
                  fmt::format("compute {} did not become ready within {} s", spec.id,
                              std::chrono::duration_cast<std::chrono::seconds>(timeout).count()),
                  tail_file(spec.log_file, 1500));
    }
    std::this_thread::sleep_for(10ms);
  }
  spdlog::info("compute {} ready", spec.id);
  return {};
}

Result<ControlData> ComputeManager::settle(const ComputeSpec& spec,
                                           std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(mu_);
    if (procs_.contains(spec.id))
      return fail(ErrorCode::kInternal,
                  fmt::format("compute {} runs; only a stopped cluster is settled", spec.id));
  }
  if (auto st = stop_stray(spec.pgdata, 30s); !st) return std::unexpected(st.error());
  // A standalone backend: no postmaster, no socket, no client. It runs the startup's recovery,
  // reads its commands from standard input (empty), and on that end of input shuts down with a
  // checkpoint. The endpoint's settings count (prepared transactions, preloaded libraries).
  ProcessSpec ps = postgres_process(
      spec, {"--single"},
      with_endpoint_settings(spec, {
                                       {"log_line_prefix", "%m [%p] settle "},
                                       {"wal_level", "replica"},
                                       // The one flush PostgreSQL does before replaying after a
                                       // crash: one syncfs, not a fsync of every file the
                                       // capture just cloned (and synced).
                                       {"recovery_init_sync_method", "syncfs"},
                                       // A capture's WAL ends where pg_backup_stop switched to
                                       // a segment that was not copied: recovery creates it.
                                       // Zero-filling those 16 MB and syncing them was up to
                                       // 0.5 s of a snapshot on a busy disk, for a segment
                                       // that trim_settled_wal then punches out.
                                       {"wal_init_zero", "off"},
                                   }));
  ps.argv.push_back("template1");  // the database a standalone backend connects to
  ps.parent_death_signal =
      SIGKILL;  // a crash mid-way is a crash of recovery: the next run redoes it
  std::error_code size_ec;
  const auto log_from = static_cast<std::streamoff>(fs::file_size(spec.log_file, size_ec));
  auto rc = runner_.run(ps, timeout);
  if (!rc) return std::unexpected(rc.error());
  if (*rc != 0) {
    const std::string reason = start_failure_reason(spec.log_file, size_ec ? 0 : log_from);
    return fail(ErrorCode::kInternal,
                fmt::format("settling {} failed (postgres --single exited {}){}{} (log: {})",
                            spec.pgdata.string(), *rc, reason.empty() ? "" : ": ", reason,
                            spec.log_file.string()),
                tail_file(spec.log_file, 1500));
  }
  static std::atomic<uint64_t> counter{0};
  ARGON_ASSIGN_OR_RETURN(auto control, read_controldata(spec.pg, runner_, spec.pgdata,
                                                        spec.log_file.parent_path() /
                                                            fmt::format("pg-controldata-{}.out",
                                                                        counter.fetch_add(1))));
  if (!control.shut_down)
    return fail(ErrorCode::kInternal,
                fmt::format("settling {}: postgres --single exited but the cluster is not shut "
                            "down cleanly (log: {})",
                            spec.pgdata.string(), spec.log_file.string()));
  return control;
}

Status ComputeManager::check_settings(
    const PgInstall& pg, const std::vector<std::pair<std::string, std::string>>& settings,
    const fs::path& scratch_dir) {
  if (settings.empty()) return {};
  std::error_code ec;
  {
    // API requests check settings concurrently; the empty configuration is written once.
    static std::mutex scratch_mu;
    std::lock_guard lock(scratch_mu);
    fs::create_directories(scratch_dir, ec);
    if (!fs::exists(scratch_dir / "postgresql.conf")) {
      if (auto st = write_file_atomic(scratch_dir / "postgresql.conf", "", 0600); !st) return st;
    }
  }
  static std::atomic<uint64_t> counter{0};
  ProcessSpec ps;
  ps.argv = {pg.bin("postgres").string(), "-C", settings.front().first, "-D", scratch_dir.string()};
  for (const auto& [k, v] : settings) {
    ps.argv.push_back("-c");
    ps.argv.push_back(fmt::format("{}={}", k, v));
  }
  ps.env = {"LC_ALL=C.UTF-8", "LANG=C.UTF-8", "PGTZ=UTC"};
  ps.log_file = scratch_dir / fmt::format("check-{}.out", counter.fetch_add(1));
  auto rc = runner_.run(ps, 10s);
  auto out = read_file(ps.log_file);
  fs::remove(ps.log_file, ec);
  if (!rc) return std::unexpected(rc.error());
  if (*rc == 0) return {};
  const std::string reason = out ? fatal_reason(*out) : "";
  return fail(ErrorCode::kBadRequest,
              reason.empty() ? fmt::format("PostgreSQL {} refuses them (postgres -C exited {})",
                                           pg.version, *rc)
                             : fmt::format("PostgreSQL {} refuses them: {}", pg.version, reason));
}

Status ComputeManager::stop(std::string_view id, std::chrono::milliseconds timeout, StopMode mode) {
  std::unique_lock lock(mu_);
  auto it = procs_.find(id);
  if (it == procs_.end()) return {};
  Proc& p = it->second;
  p.stopping = true;
  const pid_t pid = p.pid;
  // SIGINT: fast shutdown (checkpoint, clean exit); SIGQUIT: immediate shutdown.
  if (!p.exit_code) ::kill(pid, mode == StopMode::kImmediate ? SIGQUIT : SIGINT);
  // Only this pid's entry: a start() after a stop that gave up must not be mistaken for it. The
  // stop reaps the process itself, within a few milliseconds of its exit, instead of waiting for
  // the monitor's next round (every 100 ms): a restore's swap and a suspend wait for this.
  auto reaped = [&] {
    auto i = procs_.find(id);
    if (i == procs_.end() || i->second.pid != pid || i->second.exit_code) return true;
    if (auto code = try_reap(pid)) {
      i->second.exit_code = *code;
      exited_cv_.notify_all();
      return true;
    }
    return false;
  };
  auto wait_reaped = [&](std::chrono::milliseconds t) {
    const auto deadline = std::chrono::steady_clock::now() + t;
    while (!reaped()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      exited_cv_.wait_for(lock, 2ms);
    }
    return true;
  };
  bool done = wait_reaped(timeout);
  if (!done) {
    spdlog::warn("compute {} did not stop within {} ms; immediate shutdown", id, timeout.count());
    ::kill(pid, SIGQUIT);
    done = wait_reaped(10s);
    if (!done) {
      ::kill(pid, SIGKILL);
      done = wait_reaped(10s);
    }
  }
  auto i = procs_.find(id);
  if (!done) {
    // Still not reaped after SIGKILL (a process stuck in the kernel, say): forgetting it would let
    // a second postgres start on the same data directory while this one can still write to it.
    if (i != procs_.end() && i->second.pid == pid) i->second.abandoned = true;
    return fail(ErrorCode::kInternal,
                fmt::format("compute {}: postgres pid {} did not exit after SIGKILL", id, pid));
  }
  if (i != procs_.end() && i->second.pid == pid) procs_.erase(i);
  spdlog::info("compute {} stopped", id);
  return {};
}

void ComputeManager::stop_all(std::chrono::milliseconds timeout) {
  // Shutdown: each stop escalates to immediate shutdown, then kill; nothing is left to report to.
  for (const auto& id : running_ids()) (void)stop(id, timeout, StopMode::kFast);
}

bool ComputeManager::running(std::string_view id) const {
  std::lock_guard lock(mu_);
  auto it = procs_.find(id);
  return it != procs_.end() && it->second.serving();
}

std::vector<std::string> ComputeManager::running_ids() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, p] : procs_) out.push_back(id);
  return out;
}

std::optional<fs::path> ComputeManager::socket_dir(std::string_view id) const {
  std::lock_guard lock(mu_);
  auto it = procs_.find(id);
  if (it == procs_.end() || !it->second.serving()) return std::nullopt;
  return it->second.run_dir;
}

Status ComputeManager::rekey(std::string_view from, std::string_view to) {
  std::lock_guard lock(mu_);
  if (procs_.contains(to))
    return fail(ErrorCode::kConflict, fmt::format("compute {} still has a process", to));
  auto it = procs_.find(from);
  if (it == procs_.end() || !it->second.serving())
    return fail(ErrorCode::kConflict, fmt::format("compute {} is not running", from));
  auto node = procs_.extract(it);
  node.key() = std::string(to);
  procs_.insert(std::move(node));
  spdlog::info("compute {} is now compute {}", from, to);
  return {};
}

Status ComputeManager::relink(std::string_view id, const fs::path& pgdata) {
  std::lock_guard lock(mu_);
  auto it = procs_.find(id);
  if (it == procs_.end() || !it->second.serving() || it->second.data_link.empty())
    return fail(ErrorCode::kConflict,
                fmt::format("compute {} is not running with a data link", id));
  return point_link(it->second.data_link, pgdata);
}

std::string ComputeManager::admin_conninfo(std::string_view id, std::string_view dbname) const {
  auto dir = socket_dir(id);
  return socket_conninfo(dir ? dir->string() : "/nonexistent", kComputePort, kAdminRole, dbname,
                         10) +
         " options='-c log_min_error_statement=panic'";
}

Status ComputeManager::stop_stray(const fs::path& pgdata, std::chrono::milliseconds timeout) {
  std::ifstream in(pgdata / "postmaster.pid");
  if (!in) return {};
  std::string pid_line, dir_line;
  std::getline(in, pid_line);
  std::getline(in, dir_line);
  const long recorded = std::atol(pid_line.c_str());
  // A standalone backend (postgres --single, a settle) records its pid negated.
  const bool standalone = recorded < 0;
  const pid_t pid = static_cast<pid_t>(standalone ? -recorded : recorded);
  if (pid <= 1 || ::kill(pid, 0) != 0) return {};  // stale file; postgres handles it
  std::error_code ec;
  // Only a postmaster on this very data directory is ours to stop. PostgreSQL works in its data
  // directory, so its working directory is that directory even after a rename (a reset's copy is
  // started beside the branch and renamed into place while it runs), when the path it recorded is
  // no longer its own. Without access to /proc/<pid>/cwd, the recorded path decides.
  const fs::path cwd = fmt::format("/proc/{}/cwd", pid);
  bool same = false;
  if (fs::exists(cwd, ec)) {
    same = fs::equivalent(cwd, pgdata, ec);
  } else {
    same = fs::weakly_canonical(dir_line, ec) == fs::weakly_canonical(pgdata, ec);
  }
  if (!same) return {};
  auto wait_gone = [&](std::chrono::milliseconds t) {
    auto deadline = std::chrono::steady_clock::now() + t;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::kill(pid, 0) != 0) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  };
  auto exe = fs::read_symlink(fmt::format("/proc/{}/exe", pid), ec);
  if (ec) {
    // No executable any more: a process exiting (the parent-death signal of a killed argond) or a
    // zombie its new parent has not reaped yet. Postgres counts it as alive and would refuse to
    // start, so wait until it is gone.
    if (wait_gone(timeout)) return {};
    return fail(ErrorCode::kInternal,
                fmt::format("postgres pid {} on {} has exited but is not reaped yet", pid,
                            pgdata.string()));
  }
  if (exe.filename() != "postgres") return {};
  spdlog::warn("stopping postgres pid {} left running on {} by an earlier argond", pid,
               pgdata.string());
  if (standalone) {
    // A settle cut short (its argond was killed and the signal has not ended it yet): nobody is
    // connected to it, and the next settle redoes its recovery.
    ::kill(pid, SIGKILL);
    if (wait_gone(timeout)) return {};
    return fail(ErrorCode::kInternal, fmt::format("cannot stop stray postgres pid {}", pid));
  }
  ::kill(pid, SIGINT);
  if (wait_gone(timeout)) return {};
  ::kill(pid, SIGQUIT);
  if (wait_gone(10s)) return {};
  ::kill(pid, SIGKILL);
  if (wait_gone(10s)) return {};
  return fail(ErrorCode::kInternal, fmt::format("cannot stop stray postgres pid {}", pid));
}

}  // namespace argon::compute
