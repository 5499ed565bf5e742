#include "storage/storage.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <regex>

#include "common/cluster_names.h"
#include "common/crash_point.h"
#include "storage/manifest.h"

namespace argon::storage {

namespace fs = std::filesystem;

namespace {
constexpr std::string_view kTmpPrefix = ".tmp-";
constexpr const char* kResetPrefix = ".reset-";
constexpr const char* kResetMarker = "reset-op";
constexpr const char* kSettlingMarker = "settling";
constexpr const char* kSettledMarker = "settled";
constexpr const char* kUnsettledMarker = "unsettled";

// A file in a snapshot's directory that says a step began or ended (put_marker: an empty one,
// written durably once).
Status put_marker(const fs::path& dir, const char* name) {
  std::error_code ec;
  if (fs::exists(dir / name, ec)) return {};
  return write_file_atomic(dir / name, "", 0600);
}
bool has_marker(const fs::path& dir, const char* name) {
  std::error_code ec;
  return fs::exists(dir / name, ec);
}
}  // namespace

CloneFilter base_backup_filter(const fs::path& rel, bool is_dir) {
  const std::string first = rel.begin()->string();
  const bool top = std::distance(rel.begin(), rel.end()) == 1;
  if (top && !is_dir &&
      (first == "postmaster.pid" || first == "postmaster.opts" || first == "backup_label" ||
       first == "tablespace_map" || first == "backup_label.old" || first == "standby.signal" ||
       first == "recovery.signal")) {
    return CloneFilter::kSkip;
  }
  if (top && is_dir &&
      (first == "pg_wal" || first == "pg_replslot" || first == "pg_dynshmem" ||
       first == "pg_notify" || first == "pg_serial" || first == "pg_snapshots" ||
       first == "pg_stat_tmp" || first == "pg_subtrans")) {
    return CloneFilter::kEmptyDir;
  }
  if (rel.filename().string().starts_with("pgsql_tmp")) return CloneFilter::kSkip;
  return CloneFilter::kInclude;
}

Storage::Storage(StorageOptions options, std::unique_ptr<CloneDriver> driver, ProcessRunner& runner)
    : options_(std::move(options)), driver_(std::move(driver)), runner_(runner) {}

fs::path Storage::branch_dir(std::string_view id) const {
  return options_.data_dir / "branches" / std::string(id);
}
fs::path Storage::branch_pgdata(std::string_view id) const { return branch_dir(id) / "pgdata"; }
fs::path Storage::template_pgdata(int major) const {
  return options_.data_dir / "templates" / fmt::format("pg{}", major) / "pgdata";
}
fs::path Storage::run_dir(std::string_view id) const {
  return options_.data_dir / "run" / std::string(id);
}
fs::path Storage::log_path(std::string_view id) const {
  return options_.data_dir / "logs" / fmt::format("{}.log", id);
}

Result<fs::path> Storage::install_library(const fs::path& built, std::string_view name) {
  ARGON_ASSIGN_OR_RETURN(std::string bytes, read_file(built));
  const fs::path to = options_.data_dir / "lib" / std::string(name);
  // A running postmaster keeps the file it mapped; the next start loads the new one. (Called at
  // startup, before any compute starts: none sees the copy before it is the Postgres user's.)
  if (auto have = read_file(to); !have || *have != bytes) {
    ARGON_RETURN_IF_ERROR(write_file_atomic(to, bytes, 0600));
  }
  // Like everything under the data directory, private: the Postgres user's alone.
  if (::chown(to.c_str(), options_.pg_user.uid, options_.pg_user.gid) != 0 ||
      ::chmod(to.c_str(), 0600) != 0) {
    return fail(ErrorCode::kInternal,
                fmt::format("cannot hand {} to the Postgres user", to.string()));
  }
  return to;
}

Status Storage::prepare_layout() {
  const auto& d = options_.data_dir;
  // 0711: the Postgres user may traverse to its own directories but list nothing.
  for (auto [path, mode] : {std::pair{d, 0711},
                            {d / "branches", 0711},
                            {d / "templates", 0711},
                            {d / "snapshots", 0711},
                            {d / "run", 0711},
                            {d / "lib", 0711},
                            {d / "logs", 0700}}) {
    if (auto st = make_dir(path, static_cast<mode_t>(mode)); !st) return st;
  }
  // Every ancestor must be traversable by the Postgres user, or it cannot open its data directory.
  if (::geteuid() == 0 && options_.pg_user.uid != 0) {
    for (fs::path p = fs::absolute(d).parent_path(); !p.empty(); p = p.parent_path()) {
      struct stat st {};
      if (::stat(p.c_str(), &st) == 0 && !(st.st_mode & S_IXOTH) &&
          !(st.st_uid == options_.pg_user.uid && (st.st_mode & S_IXUSR))) {
        return fail(ErrorCode::kBadRequest,
                    fmt::format("the Postgres user '{}' cannot reach {} because {} is not "
                                "searchable by others; run 'chmod o+x {}' or choose another "
                                "--data-dir",
                                options_.pg_user.name, d.string(), p.string(), p.string()));
      }
      if (p == p.root_path()) break;
    }
  }
  // Unix socket paths are limited to 107 bytes: run/<id>~/.s.PGSQL.5432 must fit (the `~` for a
  // reset's copy, started beside the branch's compute: ops/actions/reset_branch.cc).
  if ((d / "run" / "br-xxxxxxxxxxx-xxxxxxxxxx-00000000~" / compute_socket_file()).string().size() >
      107) {
    return fail(ErrorCode::kBadRequest,
                fmt::format("--data-dir {} is too long for unix socket paths; use a shorter path",
                            d.string()));
  }
  return {};
}

Status Storage::sync_fs(const fs::path& dir) {
  if (!options_.fsync) return {};
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return fail(ErrorCode::kInternal, fmt::format("open {} for sync failed", dir.string()));
  int rc = ::syncfs(fd);
  ::close(fd);
  if (rc != 0) return fail(ErrorCode::kInternal, fmt::format("syncfs {} failed", dir.string()));
  return {};
}

Status Storage::build_dir(const fs::path& final_dir,
                          const std::function<Status(const fs::path&)>& fill) {
  std::error_code ec;
  if (fs::exists(final_dir, ec)) return {};
  fs::path tmp =
      final_dir.parent_path() / (std::string(kTmpPrefix) + final_dir.filename().string());
  if (auto st = remove_tree(tmp); !st) return st;
  if (auto st = make_dir(tmp, 0711); !st) return st;
  Status st = fill(tmp / "pgdata");
  if (st) crash_point("storage.filled");
  if (st) st = sync_fs(tmp);
  if (st) st = rename_durable(tmp, final_dir);
  if (!st) {
    // The build's error is the one to report; recover() removes .tmp-* leftovers.
    (void)remove_tree(tmp);
    return st;
  }
  return {};
}

Status Storage::ensure_template(const PgInstall& pg) {
  fs::path pgdata = template_pgdata(pg.major);
  return build_dir(pgdata.parent_path(), [&](const fs::path& tmp_pgdata) -> Status {
    spdlog::info("creating the PostgreSQL {} template cluster (initdb, once per version)",
                 pg.major);
    if (::geteuid() == 0) {
      if (::chown(tmp_pgdata.parent_path().c_str(), options_.pg_user.uid, options_.pg_user.gid) !=
          0) {
        return fail(ErrorCode::kInternal, "cannot chown template directory");
      }
    }
    ProcessSpec spec;
    spec.argv = {pg.bin("initdb").string(),
                 "-D",
                 tmp_pgdata.string(),
                 "-U",
                 std::string(kAdminRole),
                 "--auth-local=trust",
                 "--auth-host=reject",
                 "-E",
                 "UTF8",
                 "--locale=C.UTF-8"};
    if (!options_.fsync) spec.argv.push_back("--no-sync");
    spec.env = {"PATH=" + pg.bindir.string() + ":/usr/bin:/bin", "LC_ALL=C.UTF-8", "LANG=C.UTF-8"};
    spec.user = options_.pg_user;
    spec.log_file = log_path(fmt::format("initdb-pg{}", pg.major));
    auto code = runner_.run(spec, std::chrono::minutes(5));
    if (!code) return std::unexpected(code.error());
    if (*code != 0) {
      return fail(ErrorCode::kInternal,
                  fmt::format("initdb failed (exit {}): {}", *code, tail_file(spec.log_file, 800)));
    }
    // Computes take every setting on their command line; the template keeps initdb's defaults.
    return {};
  });
}

bool Storage::branch_exists(std::string_view id) const {
  std::error_code ec;
  return fs::exists(branch_pgdata(id) / "PG_VERSION", ec);
}

Status Storage::create_branch_from_template(std::string_view id, int major, bool history) {
  return build_dir(branch_dir(id), [&](const fs::path& tmp_pgdata) -> Status {
    CloneOptions opts;
    opts.owner = options_.pg_user;
    auto stats = clone_tree(*driver_, template_pgdata(major), tmp_pgdata, opts);
    if (!stats) return std::unexpected(stats.error());
    if (history) return begin_history(tmp_pgdata.parent_path(), std::nullopt);
    return {};
  });
}

Result<CloneStats> Storage::create_branch_from_stopped(std::string_view id, const fs::path& src,
                                                       bool history) {
  return capture_stopped(branch_dir(id), src, false, history);
}

Result<CaptureInfo> Storage::create_branch_from_running(std::string_view id, const fs::path& src,
                                                        PgConn& admin, int major, bool history) {
  return capture_running(branch_dir(id), src, admin, major, history);
}

Result<CloneStats> Storage::recover_at_point(
    const fs::path& final_dir, const fs::path& image_pgdata, const SettleFn& recover, int copies,
    const std::function<Status(const fs::path& tmp_pgdata, const ControlData&)>& then) {
  ARGON_RETURN_IF_ERROR(check_space(final_dir, image_pgdata, copies));
  CloneStats out;
  auto st = build_dir(final_dir, [&](const fs::path& tmp_pgdata) -> Status {
    CloneOptions opts;
    opts.owner = options_.pg_user;
    ARGON_ASSIGN_OR_RETURN(out, clone_tree(*driver_, image_pgdata, tmp_pgdata, opts));
    ARGON_RETURN_IF_ERROR(write_file_atomic(tmp_pgdata / "recovery.signal", "", 0600));
    (void)::chown((tmp_pgdata / "recovery.signal").c_str(), options_.pg_user.uid,
                  options_.pg_user.gid);  // as for backup_label: best effort
    // The recovered cluster's first WAL (its timeline's history file) is marked for archiving.
    ARGON_RETURN_IF_ERROR(prepare_archive(tmp_pgdata));
    crash_point("history.cloned");
    ARGON_ASSIGN_OR_RETURN(auto control, recover(tmp_pgdata));
    crash_point("history.recovered");
    return then(tmp_pgdata, control);
  });
  if (!st) return std::unexpected(st.error());
  return out;
}

Result<CloneStats> Storage::create_branch_at_point(std::string_view id,
                                                   const fs::path& image_pgdata,
                                                   const SettleFn& recover, bool history) {
  return recover_at_point(branch_dir(id), image_pgdata, recover, history ? 2 : 1,
                          [&](const fs::path& tmp_pgdata, const ControlData&) -> Status {
                            if (history)
                              return begin_history(tmp_pgdata.parent_path(), std::nullopt);
                            return {};
                          });
}

Result<CloneStats> Storage::capture_reset_at_point(std::string_view id,
                                                   const fs::path& image_pgdata,
                                                   const SettleFn& recover,
                                                   const std::string& op_id, bool history) {
  const fs::path dir = reset_dir(id);
  auto stats = recover_at_point(dir, image_pgdata, recover, history ? 2 : 1,
                                [&](const fs::path& tmp_pgdata, const ControlData&) -> Status {
                                  if (history)
                                    return begin_history(tmp_pgdata.parent_path(), std::nullopt);
                                  return {};
                                });
  if (!stats) return stats;
  if (auto st = write_file_atomic(dir / kResetMarker, op_id, 0600); !st)
    return std::unexpected(st.error());
  return stats;
}

Result<CloneStats> Storage::create_snapshot_at_point(std::string_view id,
                                                     const fs::path& image_pgdata,
                                                     const SettleFn& recover) {
  // Recovery ended in a clean shutdown: the snapshot is settled as it is built.
  return recover_at_point(
      snapshot_dir(id), image_pgdata, recover, 1,
      [&](const fs::path& tmp_pgdata, const ControlData& control) -> Status {
        ARGON_RETURN_IF_ERROR(trim_settled_wal(tmp_pgdata, control));
        ARGON_RETURN_IF_ERROR(put_marker(tmp_pgdata.parent_path(), kSettlingMarker));
        return put_marker(tmp_pgdata.parent_path(), kSettledMarker);
      });
}

Status Storage::prepare_archive(const fs::path& pgdata) {
  const fs::path wal = pgdata.parent_path() / kArchiveDir;
  std::error_code ec;
  if (fs::is_directory(wal, ec)) return {};
  ARGON_RETURN_IF_ERROR(make_dir(wal, 0700));
  if (::geteuid() == 0 && ::chown(wal.c_str(), options_.pg_user.uid, options_.pg_user.gid) != 0)
    return fail(ErrorCode::kInternal, fmt::format("cannot chown {}", wal.string()));
  return {};
}

Status Storage::begin_history(const fs::path& dir, const std::optional<std::string>& stop_lsn) {
  ARGON_RETURN_IF_ERROR(prepare_archive(dir / "pgdata"));
  const fs::path images = dir / kImagesDir;
  ARGON_RETURN_IF_ERROR(make_dir(images, 0700));
  const fs::path tmp = images / std::string(kTmpPrefix);
  ARGON_RETURN_IF_ERROR(remove_tree(tmp));
  ARGON_RETURN_IF_ERROR(make_dir(tmp, 0700));
  CloneOptions opts;
  opts.owner = options_.pg_user;
  opts.filter = [](const fs::path& rel, bool is_dir) {
    if (!is_dir && (rel == "postmaster.pid" || rel == "postmaster.opts")) return CloneFilter::kSkip;
    return CloneFilter::kInclude;
  };
  ARGON_RETURN_IF_ERROR(clone_tree(*driver_, dir / "pgdata", tmp / "pgdata", opts));
  if (stop_lsn) ARGON_RETURN_IF_ERROR(write_file_atomic(tmp / "stop-lsn", *stop_lsn, 0600));
  // Named once complete, by the time then: every commit the image holds is older.
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return rename_durable(tmp, images / std::to_string(now_ms));
}

Result<BaseImage> Storage::take_image(std::string_view branch_id, PgConn& admin, int major) {
  const fs::path dir = branch_dir(branch_id);
  auto identity = [&]() -> std::optional<ino_t> {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return std::nullopt;
    return st.st_ino;
  };
  const auto before = identity();
  if (!before) return fail(ErrorCode::kConflict, fmt::format("branch {} has no data", branch_id));
  const fs::path images = dir / kImagesDir;
  ARGON_RETURN_IF_ERROR(make_dir(images, 0700));
  const fs::path pending = images / ".pending";
  ARGON_RETURN_IF_ERROR(remove_tree(pending));
  ARGON_ASSIGN_OR_RETURN(auto info, capture_running(pending, dir / "pgdata", admin, major, false));
  ARGON_RETURN_IF_ERROR(write_file_atomic(pending / "stop-lsn", info.stop_lsn, 0600));
  if (identity() != before) {
    (void)remove_tree(pending);
    return fail(ErrorCode::kConflict,
                fmt::format("branch {}'s data was replaced while its image was taken", branch_id));
  }
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const fs::path final_dir = images / std::to_string(now_ms);
  ARGON_RETURN_IF_ERROR(rename_durable(pending, final_dir));
  return BaseImage{final_dir / "pgdata", now_ms, parse_lsn(info.stop_lsn)};
}

std::shared_mutex& Storage::history_mu(std::string_view branch_id) {
  return history_mus_[std::hash<std::string_view>{}(branch_id) % history_mus_.size()];
}

Result<Storage::Pruned> Storage::prune_history(std::string_view branch_id, const PgInstall& pg,
                                               int64_t floor_ms, bool everything) {
  std::unique_lock lock(history_mu(branch_id));
  const fs::path dir = branch_dir(branch_id);
  Pruned out;
  auto size_of = [](const fs::path& p) {
    uint64_t n = 0;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return static_cast<uint64_t>(fs::file_size(p, ec));
    for (auto it = fs::recursive_directory_iterator(p, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      std::error_code fe;
      if (it->is_regular_file(fe)) n += it->file_size(fe);
    }
    return n;
  };
  // What an interrupted take_image left (it runs on the same thread as this, never beside it).
  {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir / kImagesDir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.starts_with('.')) ARGON_RETURN_IF_ERROR(remove_tree(e.path()));
    }
  }
  const auto images = list_images(dir);
  // The oldest image kept, and the segment its replay starts from.
  size_t keep_from = 0;
  std::optional<uint64_t> keep_segno;
  if (everything) {
    keep_from = images.size();
  } else {
    for (size_t i = 0; i < images.size(); ++i) {
      if (images[i].taken_ms <= floor_ms) keep_from = i;
    }
    if (images.empty() || keep_from == 0) return out;  // nothing older than what is needed
    const auto& anchor = images[keep_from];
    ARGON_ASSIGN_OR_RETURN(auto control,
                           read_controldata(pg, runner_, anchor.pgdata, tool_scratch()));
    uint64_t start = control.redo_lsn;
    // A backup capture replays from its label's start, which may precede the copied pg_control's.
    if (auto label = read_file(anchor.pgdata / "backup_label")) {
      static const std::regex start_re(R"(START WAL LOCATION: ([0-9A-F]+/[0-9A-F]+))");
      std::smatch m;
      if (std::regex_search(*label, m, start_re)) {
        if (auto l = parse_lsn(m[1].str())) start = std::min(start, *l);
      }
    }
    keep_segno = start / control.segment_bytes;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir / kArchiveDir, ec)) {
      const std::string name = e.path().filename().string();
      // Segments, and their .partial and .backup files.
      if (name.size() < 24 || !is_wal_segment_name(std::string_view(name).substr(0, 24))) continue;
      if (wal_segment_number(name, control.segment_bytes) >= *keep_segno) continue;
      out.bytes += size_of(e.path());
      fs::remove(e.path(), ec);
      if (ec)
        return fail(ErrorCode::kInternal,
                    fmt::format("cannot remove {}: {}", e.path().string(), ec.message()));
      ++out.wal_files;
    }
  }
  for (size_t i = 0; i < keep_from; ++i) {
    const fs::path image_dir = images[i].pgdata.parent_path();
    out.bytes += size_of(image_dir);
    ARGON_RETURN_IF_ERROR(remove_tree(image_dir));
    ++out.images;
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir / kArchiveDir, ec)) {
    const std::string name = e.path().filename().string();
    // basic_archive's temporary files: one being written now is left alone; one an interrupted
    // archiver left (it names each with the time) goes once it is an hour old.
    if (name.starts_with("archtemp")) {
      std::error_code te;
      const auto age = fs::file_time_type::clock::now() - fs::last_write_time(e.path(), te);
      if (te || age < std::chrono::hours(1)) continue;
    } else if (!everything) {
      continue;
    }
    out.bytes += size_of(e.path());
    fs::remove(e.path(), ec);
    ++out.wal_files;
  }
  if ((out.images || out.wal_files) && options_.fsync) (void)fsync_path(dir / kArchiveDir);
  return out;
}

fs::path Storage::wal_view_dir(std::string_view branch_id) const {
  static std::atomic<uint64_t> counter{0};
  return options_.data_dir / "branches" /
         fmt::format("{}view-{}-{}", kTmpPrefix, branch_id, counter.fetch_add(1));
}

fs::path Storage::tool_scratch() const {
  static std::atomic<uint64_t> counter{0};
  return options_.data_dir / "logs" / fmt::format("pg-tool-{}.out", counter.fetch_add(1));
}

// Before a clone: room for it (all of it with the copy driver; blocks are shared with reflink)
// plus a margin that keeps the computes on this filesystem able to write WAL. Running out of
// space midway would also take the serving branch down: Postgres stops when it cannot write WAL.
Status Storage::check_space(const fs::path& final_dir, const fs::path& src, int copies) {
  constexpr uint64_t kMargin = 64ull << 20;
  std::error_code ec;
  if (fs::exists(final_dir, ec)) return {};  // already built (a re-run)
  uint64_t need = kMargin;
  if (driver_->name() != "reflink") {
    for (auto it = fs::recursive_directory_iterator(src, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      std::error_code fe;
      if (it->is_regular_file(fe)) need += it->file_size(fe) * static_cast<uint64_t>(copies);
    }
  }
  struct statvfs v {};
  if (::statvfs(options_.data_dir.c_str(), &v) != 0) return {};
  const uint64_t free = static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  if (free >= need) return {};
  return fail(
      ErrorCode::kConflict,
      fmt::format(
          "not enough free space in {}: this copy needs about {} MB (with {} MB kept free for the "
          "computes' WAL) and {} MB are free",
          options_.data_dir.string(), need >> 20, kMargin >> 20, free >> 20));
}

Result<CloneStats> Storage::capture_stopped(const fs::path& final_dir, const fs::path& src,
                                            bool writable, bool history) {
  ARGON_RETURN_IF_ERROR(check_space(final_dir, src, history ? 2 : 1));
  CloneStats out;
  auto st = build_dir(final_dir, [&](const fs::path& tmp_pgdata) -> Status {
    CloneOptions opts;
    opts.owner = options_.pg_user;
    opts.owner_writable = writable;
    opts.filter = [](const fs::path& rel, bool is_dir) {
      if (!is_dir && (rel == "postmaster.pid" || rel == "postmaster.opts"))
        return CloneFilter::kSkip;
      return CloneFilter::kInclude;
    };
    auto stats = clone_tree(*driver_, src, tmp_pgdata, opts);
    if (!stats) return std::unexpected(stats.error());
    out = *stats;
    if (history) return begin_history(tmp_pgdata.parent_path(), std::nullopt);
    return {};
  });
  if (!st) return std::unexpected(st.error());
  return out;
}

Result<CaptureInfo> Storage::capture_running(const fs::path& final_dir, const fs::path& src,
                                             PgConn& admin, int major, bool history) {
  ARGON_RETURN_IF_ERROR(check_space(final_dir, src, history ? 2 : 1));
  CaptureInfo info;
  auto st = build_dir(final_dir, [&](const fs::path& tmp_pgdata) -> Status {
    const bool v15 = major >= 15;
    auto start = admin.exec(v15 ? "SELECT pg_backup_start('argon', true)::text"
                                : "SELECT pg_start_backup('argon', true, false)::text");
    if (!start) return std::unexpected(start.error());
    info.start_lsn = start->value();
    // From here on the backup must be stopped on every path, or the source keeps full-page writes.
    auto stop = [&]() {
      return admin.exec(
          v15 ? "SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(false)"
              : "SELECT lsn::text, labelfile, spcmapfile FROM pg_stop_backup(false, false)");
    };
    CloneOptions opts;
    opts.owner = options_.pg_user;
    opts.filter = base_backup_filter;
    opts.tolerate_vanished = true;
    auto stats = clone_tree(*driver_, src, tmp_pgdata, opts);
    // A copy that failed (a full disk) goes before the backup stops: stopping writes WAL, and the
    // source may share the filesystem.
    if (!stats) (void)remove_tree(tmp_pgdata);  // stats carries the error; leftovers are .tmp-*
    auto stopped = stop();
    if (!stats) return std::unexpected(stats.error());
    if (!stopped) return std::unexpected(stopped.error());
    info.stats = *stats;
    info.stop_lsn = stopped->value(0, 0);
    if (auto w = write_file_atomic(tmp_pgdata / "backup_label", stopped->value(0, 1), 0600); !w)
      return w;
    // Best effort: the file is readable by its owner either way, and argond runs Postgres as itself
    // when it is not root (then chown to itself is a no-op).
    (void)::chown((tmp_pgdata / "backup_label").c_str(), options_.pg_user.uid,
                  options_.pg_user.gid);
    if (!stopped->value(0, 2).empty()) {
      if (auto w = write_file_atomic(tmp_pgdata / "tablespace_map", stopped->value(0, 2), 0600); !w)
        return w;
      (void)::chown((tmp_pgdata / "tablespace_map").c_str(), options_.pg_user.uid,
                    options_.pg_user.gid);  // as above
    }
    // The WAL from the start segment through the one that holds the end of the backup (the stop
    // record is already flushed, so the copies hold it). Segments named after it are recycled
    // ones waiting for reuse: old bytes recovery would stop at, and up to max_wal_size of copying.
    auto seg = admin.exec("SELECT pg_walfile_name($1::pg_lsn), pg_walfile_name($2::pg_lsn)",
                          {info.start_lsn, info.stop_lsn});
    if (!seg) return std::unexpected(seg.error());
    const std::string first_seg = seg->value(0, 0).substr(8), last_seg = seg->value(0, 1).substr(8);
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(src / "pg_wal", ec)) {
      std::string name = e.path().filename().string();
      bool wanted = (is_wal_segment_name(name) && name.substr(8) >= first_seg &&
                     name.substr(8) <= last_seg) ||
                    name.ends_with(".history");
      if (!wanted) continue;
      auto n =
          clone_one_file(*driver_, e.path(), tmp_pgdata / "pg_wal" / name, options_.pg_user, true);
      if (!n) return std::unexpected(n.error());
      info.stats.bytes += *n;
      info.stats.files++;
    }
    if (ec) return fail(ErrorCode::kInternal, fmt::format("cannot list {}/pg_wal", src.string()));
    if (history) return begin_history(tmp_pgdata.parent_path(), info.stop_lsn);
    return {};
  });
  if (!st) return std::unexpected(st.error());
  return info;
}

fs::path Storage::snapshot_dir(std::string_view id) const {
  return options_.data_dir / "snapshots" / std::string(id);
}
fs::path Storage::snapshot_pgdata(std::string_view id) const { return snapshot_dir(id) / "pgdata"; }
bool Storage::snapshot_exists(std::string_view id) const {
  std::error_code ec;
  return fs::exists(snapshot_pgdata(id), ec);
}

Result<CloneStats> Storage::create_snapshot_from_stopped(std::string_view id, const fs::path& src) {
  return capture_stopped(snapshot_dir(id), src, false, false);
}

Result<CaptureInfo> Storage::create_snapshot_from_running(std::string_view id, const fs::path& src,
                                                          PgConn& admin, int major) {
  return capture_running(snapshot_dir(id), src, admin, major, false);
}

Status Storage::begin_settling(std::string_view id) {
  return put_marker(snapshot_dir(id), kSettlingMarker);
}
bool Storage::settling_begun(std::string_view id) const {
  return has_marker(snapshot_dir(id), kSettlingMarker);
}
Status Storage::end_settling(std::string_view id) {
  return put_marker(snapshot_dir(id), kSettledMarker);
}
bool Storage::settled(std::string_view id) const {
  return has_marker(snapshot_dir(id), kSettledMarker);
}
Status Storage::mark_unsettled(std::string_view id) {
  return put_marker(snapshot_dir(id), kUnsettledMarker);
}
bool Storage::awaiting_settle(std::string_view id) const {
  return has_marker(snapshot_dir(id), kUnsettledMarker) && !settled(id);
}

namespace {
constexpr const char* kStampsFile = "stamps";
constexpr const char* kDamagedMarker = "damaged";
constexpr const char* kCheckedFile = "checked";  // when the data was last read in full
}  // namespace

bool Storage::snapshot_sealed(std::string_view id) const {
  // Before stamps existed, a manifest marked a sealed snapshot.
  return has_marker(snapshot_dir(id), kStampsFile) || has_marker(snapshot_dir(id), "manifest");
}

Status Storage::trim_settled_wal(const fs::path& pgdata, const ControlData& control) {
  if (!control.shut_down)
    return fail(
        ErrorCode::kInternal,
        fmt::format("{} was not shut down cleanly; its WAL is all needed", pgdata.string()));
  const uint64_t seg = control.segment_bytes, page = control.wal_block_bytes;
  if (seg == 0 || page == 0 || seg % page != 0)
    return fail(ErrorCode::kInternal, "pg_controldata: bad WAL segment or block size");
  // The checkpoint record (about a hundred bytes) may cross into the next page, and that page
  // into the next segment; a start reads each segment's first page (its long header) too.
  const uint64_t keep_from = control.checkpoint_lsn / page * page;
  const uint64_t keep_to = keep_from + 2 * page;
  std::map<std::string, uint64_t> kept;  // segment name → its first LSN
  for (uint64_t at = keep_from / seg * seg; at < keep_to; at += seg)
    kept[wal_segment_name(control.timeline, at, seg)] = at;

  const fs::path wal = pgdata / "pg_wal";
  std::error_code ec;
  std::vector<std::string> unwanted;
  for (const auto& e : fs::directory_iterator(wal, ec)) {
    const std::string name = e.path().filename().string();
    const std::string base = name.substr(0, 24);
    if (is_wal_segment_name(base) && !kept.contains(name) &&
        (name.size() == 24 || name.ends_with(".partial")))
      unwanted.push_back(name);
  }
  if (ec)
    return fail(ErrorCode::kInternal,
                fmt::format("cannot list {}: {}", wal.string(), ec.message()));
  for (const auto& name : unwanted) {
    fs::remove(wal / name, ec);
    if (ec)
      return fail(ErrorCode::kInternal,
                  fmt::format("cannot remove {}/{}: {}", wal.string(), name, ec.message()));
    for (const char* suffix : {".ready", ".done"})
      fs::remove(wal / "archive_status" / (name + suffix), ec);
  }

  for (const auto& [name, first] : kept) {
    const fs::path file = wal / name;
    // Wanted byte ranges of this file, in order: its first page, and the checkpoint's pages.
    const uint64_t from = std::max(keep_from, first) - first;
    const uint64_t to = std::min(keep_to, first + seg) - first;
    std::vector<std::pair<uint64_t, uint64_t>> holes;  // [offset, end)
    if (from > page) holes.emplace_back(page, from);
    if (std::max(to, page) < seg) holes.emplace_back(std::max(to, page), seg);
    const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
      return fail(ErrorCode::kInternal,
                  fmt::format("cannot open {}: {}", file.string(), std::strerror(errno)));
    for (const auto& [off, end] : holes) {
      if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                      static_cast<off_t>(end - off)) != 0) {
        const int err = errno;
        if (err == EOPNOTSUPP) {
          // The filesystem cannot free a file's middle; the segment stays whole, as before.
          spdlog::warn("{} cannot punch holes in {}; the snapshot keeps the whole segment",
                       data_dir().string(), file.string());
          break;
        }
        ::close(fd);
        return fail(ErrorCode::kInternal, fmt::format("cannot free unused WAL in {}: {}",
                                                      file.string(), std::strerror(err)));
      }
    }
    const bool synced = !options_.fsync || ::fsync(fd) == 0;
    ::close(fd);
    if (!synced) return fail(ErrorCode::kInternal, fmt::format("fsync {} failed", file.string()));
  }
  // The backup label the recovery consumed (renamed by PostgreSQL) is of no further use.
  fs::remove(pgdata / "backup_label.old", ec);
  if (!options_.fsync) return {};
  ARGON_RETURN_IF_ERROR(fsync_path(wal));
  return fsync_path(pgdata);
}

fs::path Storage::snapshot_manifest(std::string_view id) const {
  return snapshot_dir(id) / "manifest";
}

Status Storage::seal_snapshot(std::string_view id) { return seal_dir(snapshot_dir(id)); }

// Idempotent: a run after a crash finds the data in place and finishes the modes and stamps.
Status Storage::seal_dir(const fs::path& dir) {
  ARGON_RETURN_IF_ERROR(make_read_only(dir / "pgdata"));
  crash_point("snapshot.read_only");
  // Taken once nothing can write any more (manifest.h): what vouches for the files until the
  // checksums exist, and what lets a restore skip reading them afterwards.
  const fs::path stamps = dir / kStampsFile;
  std::error_code ec;
  if (fs::exists(stamps, ec)) return {};
  return write_stamps(dir / "pgdata", stamps);
}

Result<bool> Storage::settle_beside(std::string_view id, const SettleFn& settle) {
  const fs::path dir = snapshot_dir(id);
  const fs::path work = dir.parent_path() / fmt::format("{}settle-{}", kTmpPrefix, id);
  const fs::path pgdata = work / "pgdata";
  crash_point("snapshot.settle_begins");
  {
    std::lock_guard lock(settling_mu_);
    settling_.emplace(id);
  }
  struct Done {
    Storage& s;
    std::string_view id;
    ~Done() {
      {
        std::lock_guard lock(s.settling_mu_);
        if (auto it = s.settling_.find(id); it != s.settling_.end()) s.settling_.erase(it);
      }
      s.settling_cv_.notify_all();
    }
  } done{*this, id};
  ARGON_RETURN_IF_ERROR(remove_tree(work));  // a settle cut short
  auto failed = [&](Error e) -> Result<bool> {
    (void)remove_tree(work);  // the error is the one to report; startup removes .tmp-* too
    return std::unexpected(std::move(e));
  };
  {
    std::shared_lock lock(snapshot_mu(id));
    if (!awaiting_settle(id) || !snapshot_sealed(id) || snapshot_damaged(id)) return false;
    // What is settled must be what was sealed: the new stamps will vouch for the copy.
    if (auto st = verify_stamps(snapshot_pgdata(id), dir / kStampsFile, /*unstamped_ok=*/true);
        !st) {
      lock.unlock();
      (void)mark_damaged(id, st.error().message);
      return std::unexpected(st.error());
    }
    ARGON_RETURN_IF_ERROR(make_dir(work, 0711));
    CloneOptions opts;
    opts.owner = options_.pg_user;
    opts.owner_writable = true;  // the recovery writes to it
    if (auto stats = clone_tree(*driver_, snapshot_pgdata(id), pgdata, opts); !stats)
      return failed(stats.error());
  }
  crash_point("snapshot.settle_cloned");
  auto control = settle(pgdata);
  if (!control) return failed(control.error());
  Status st = trim_settled_wal(pgdata, *control);
  if (st) st = seal_dir(work);
  if (st) st = put_marker(work, kSettledMarker);
  if (st) st = sync_fs(work);
  if (!st) return failed(st.error());
  crash_point("snapshot.settled_beside");
  {
    std::unique_lock lock(snapshot_mu(id));
    std::error_code ec;
    if (!fs::exists(dir, ec)) {
      lock.unlock();
      ARGON_RETURN_IF_ERROR(remove_tree(work));  // the snapshot was deleted meanwhile
      return false;
    }
    if (auto exchanged = exchange_durable(work, dir); !exchanged) return failed(exchanged.error());
  }
  crash_point("snapshot.settle_exchanged");
  ARGON_RETURN_IF_ERROR(remove_tree(work));  // now the unsettled capture
  return true;
}

std::shared_mutex& Storage::snapshot_mu(std::string_view id) {
  return snapshot_mus_[std::hash<std::string_view>{}(id) % snapshot_mus_.size()];
}

Status Storage::write_snapshot_file(std::string_view id, std::string_view name,
                                    std::string_view text) {
  std::unique_lock lock(snapshot_mu(id));
  std::error_code ec;
  if (!fs::exists(snapshot_pgdata(id), ec)) return {};  // removed meanwhile
  return write_file_atomic(snapshot_dir(id) / std::string(name), text, 0400);
}

Status Storage::mark_damaged(std::string_view id, const std::string& reason) {
  spdlog::error("snapshot {}: {}; restores of it are refused", id, reason);
  return write_snapshot_file(id, kDamagedMarker, reason);
}

bool Storage::snapshot_damaged(std::string_view id) const {
  return has_marker(snapshot_dir(id), kDamagedMarker);
}

std::optional<int64_t> Storage::snapshot_checked_at(std::string_view id) const {
  auto text = read_file(snapshot_dir(id) / kCheckedFile);
  if (!text) return std::nullopt;
  try {
    return std::stoll(*text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Status Storage::checksum_snapshot(std::string_view id, int64_t now_ms, const Pace& pace) {
  std::error_code ec;
  const fs::path stamps = snapshot_dir(id) / kStampsFile;
  if (fs::exists(snapshot_manifest(id), ec) || !fs::exists(stamps, ec) || snapshot_damaged(id))
    return {};
  auto entries = build_manifest(snapshot_pgdata(id), pace);
  if (!entries) {
    if (!fs::exists(snapshot_pgdata(id), ec)) return {};  // removed while being read
    return std::unexpected(entries.error());
  }
  // What was read is what was sealed only if no stamp moved, before or during the read. (A file
  // that got no stamp, its change time too recent when sealed, is recorded as it reads now.)
  if (auto st = verify_stamps(snapshot_pgdata(id), stamps, /*unstamped_ok=*/true); !st) {
    if (!fs::exists(snapshot_pgdata(id), ec)) return {};
    return mark_damaged(id, st.error().message);
  }
  ARGON_RETURN_IF_ERROR(write_snapshot_file(id, "manifest", manifest_text(*entries)));
  return write_snapshot_file(id, kCheckedFile, std::to_string(now_ms));
}

Status Storage::scrub_snapshot(std::string_view id, int64_t now_ms, const Pace& pace) {
  std::error_code ec;
  if (!fs::exists(snapshot_manifest(id), ec) || snapshot_damaged(id)) return {};
  // No stamps: every file is read and compared.
  if (auto st = verify_manifest(snapshot_pgdata(id), snapshot_manifest(id), {}, pace); !st) {
    if (!fs::exists(snapshot_pgdata(id), ec)) return {};  // removed while being read
    if (st.error().code != ErrorCode::kConflict) return st;
    return mark_damaged(id, st.error().message);
  }
  return write_snapshot_file(id, kCheckedFile, std::to_string(now_ms));
}

Result<CloneStats> Storage::create_branch_from_snapshot(std::string_view branch_id,
                                                        std::string_view snapshot_id,
                                                        bool history) {
  // A snapshot being settled is settled in moments: its copy then starts at once, where the
  // capture's WAL would be replayed beside the settling.
  if (std::unique_lock wait(settling_mu_); settling_.contains(snapshot_id)) {
    const auto since = std::chrono::steady_clock::now();
    settling_cv_.wait_for(wait, kSettleWait, [&] { return !settling_.contains(snapshot_id); });
    spdlog::info("branch {} from snapshot {}: waited {:.1f} ms for its settling", branch_id,
                 snapshot_id,
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
                     .count());
  }
  // Not exchanged for its settled copy, nor removed, while it is checked and cloned.
  std::shared_lock lock(snapshot_mu(snapshot_id));
  if (!snapshot_exists(snapshot_id)) {
    return fail(ErrorCode::kInternal, fmt::format("snapshot {} has no data on disk", snapshot_id));
  }
  const auto began = std::chrono::steady_clock::now();
  auto ms = [](auto from) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - from)
        .count();
  };
  Status checked;
  std::error_code ec;
  if (auto damaged = read_file(snapshot_dir(snapshot_id) / kDamagedMarker)) {
    checked = fail(ErrorCode::kConflict, *damaged);
  } else if (fs::exists(snapshot_manifest(snapshot_id), ec)) {
    checked = verify_manifest(snapshot_pgdata(snapshot_id), snapshot_manifest(snapshot_id),
                              snapshot_dir(snapshot_id) / kStampsFile);
  } else {
    // Taken moments ago: its checksums are still being written; its stamps vouch for it.
    checked = verify_stamps(snapshot_pgdata(snapshot_id), snapshot_dir(snapshot_id) / kStampsFile);
  }
  if (!checked) {
    return fail(ErrorCode::kConflict, fmt::format("snapshot {} cannot be restored: {}", snapshot_id,
                                                  checked.error().message));
  }
  const double check_ms = ms(began);
  const auto cloning = std::chrono::steady_clock::now();
  auto stats = capture_stopped(branch_dir(branch_id), snapshot_pgdata(snapshot_id),
                               /*writable=*/true, history);
  if (stats) {
    spdlog::info(
        "branch {} from snapshot {}: checked in {:.1f} ms, {} files ({} MB) cloned in "
        "{:.1f} ms",
        branch_id, snapshot_id, check_ms, stats->files, stats->bytes >> 20, ms(cloning));
  }
  return stats;
}

// Snapshots never change once taken: nobody, not even the Postgres user, may write to them.
// Idempotent (a capture that crashed after the rename is made read-only again at the next run).
Status Storage::make_read_only(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> dirs{dir};
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || S_ISLNK(st.st_mode)) continue;
    if (S_ISDIR(st.st_mode)) {
      dirs.push_back(it->path());
    } else if ((st.st_mode & 0222) != 0 &&
               ::chmod(it->path().c_str(), st.st_mode & 0444 & 07777) != 0) {
      return fail(ErrorCode::kInternal,
                  fmt::format("cannot make {} read-only", it->path().string()));
    }
  }
  if (ec)
    return fail(ErrorCode::kInternal,
                fmt::format("cannot list {}: {}", dir.string(), ec.message()));
  for (const auto& d : dirs) ::chmod(d.c_str(), 0500);
  return {};
}

Status Storage::remove_snapshot(std::string_view id) {
  std::unique_lock lock(snapshot_mu(id));
  // Its directories are read-only; a non-root argond could not unlink inside them.
  std::error_code ec;
  const fs::path dir = snapshot_dir(id);
  ::chmod(snapshot_pgdata(id).c_str(), 0700);
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
  }
  return remove_dir(dir, id);
}

Status Storage::remove_branch(std::string_view id) {
  if (auto st = abandon_reset(id); !st) return st;  // a reset that the deletion overtook
  return remove_dir(branch_dir(id), id);
}

fs::path Storage::reset_dir(std::string_view id) const {
  return options_.data_dir / "branches" / (std::string(kResetPrefix) + std::string(id));
}
fs::path Storage::reset_pgdata(std::string_view id) const { return reset_dir(id) / "pgdata"; }

Result<CloneStats> Storage::capture_reset_from_stopped(std::string_view id, const fs::path& src,
                                                       const std::string& op_id, bool history) {
  const fs::path dir = reset_dir(id);
  auto stats = capture_stopped(dir, src, false, history);
  if (!stats) return stats;
  if (auto st = write_file_atomic(dir / kResetMarker, op_id, 0600); !st)
    return std::unexpected(st.error());
  return stats;
}

Result<CaptureInfo> Storage::capture_reset_from_running(std::string_view id, const fs::path& src,
                                                        PgConn& admin, int major,
                                                        const std::string& op_id, bool history) {
  const fs::path dir = reset_dir(id);
  auto info = capture_running(dir, src, admin, major, history);
  if (!info) return info;
  if (auto st = write_file_atomic(dir / kResetMarker, op_id, 0600); !st)
    return std::unexpected(st.error());
  return info;
}

bool Storage::reset_exchanged(std::string_view id, const std::string& op_id) const {
  auto marker = read_file(branch_dir(id) / kResetMarker);
  return marker && *marker == op_id;
}

Status Storage::exchange_reset(std::string_view id) {
  return exchange_durable(reset_dir(id), branch_dir(id));
}

Status Storage::finish_reset(std::string_view id, const std::optional<std::string>& preserve_id) {
  const fs::path old = reset_dir(id);
  std::error_code ec;
  if (fs::exists(old, ec)) {
    if (preserve_id) {
      if (auto st = rename_durable(old, branch_dir(*preserve_id)); !st) return st;
    } else if (auto st = remove_tree(old); !st) {
      return st;
    }
  }
  fs::remove(branch_dir(id) / kResetMarker, ec);
  return {};
}

Status Storage::abandon_reset(std::string_view id) { return remove_tree(reset_dir(id)); }

Status Storage::remove_dir(const fs::path& dir, std::string_view id) {
  // Rename first so a crash mid-removal leaves a temp dir (cleaned at start), never half a branch.
  std::error_code ec;
  if (!fs::exists(dir, ec)) return {};
  fs::path tmp = dir.parent_path() / (std::string(kTmpPrefix) + "rm-" + std::string(id));
  if (auto st = remove_tree(tmp); !st) return st;
  if (auto st = rename_durable(dir, tmp); !st) return st;
  crash_point("storage.renamed");
  return remove_tree(tmp);
}

std::vector<std::string> Storage::list_dirs(std::string_view sub) const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.data_dir / sub, ec)) {
    std::string name = e.path().filename().string();
    if (!name.starts_with('.'))
      out.push_back(name);  // .tmp-* (unfinished) and .reset-* (a reset's)
  }
  return out;
}

Result<WalHistory> Storage::wal_history(const PgInstall& pg, const fs::path& pgdata,
                                        std::optional<uint64_t> from,
                                        std::optional<uint64_t> until) {
  return read_wal_history(pg, runner_, pgdata, from, until, tool_scratch());
}

Status Storage::remove_temp_dirs() {
  std::error_code ec;
  for (const auto& sub : {"branches", "templates", "snapshots"}) {
    for (const auto& e : fs::directory_iterator(options_.data_dir / sub, ec)) {
      if (e.path().filename().string().starts_with(kTmpPrefix)) {
        spdlog::info("removing leftover of an interrupted operation: {}", e.path().string());
        if (auto st = remove_tree(e.path()); !st) return st;
      }
    }
  }
  return {};
}

}  // namespace argon::storage
