// Snapshot and finalized-restore benchmark: from the API call to its operations finished, for each
// clone driver and database size, beside what a self-hoster does without Argon, in the same run on
// the same filesystem: `pg_basebackup` of a running cluster to take the copy, and "stop, swap the
// data directory, start" to restore it (the copy is copied into place with `cp --reflink=auto`, so
// that it can be restored again, as an Argon snapshot can). Then, on reflink only, the extra disk
// that 10 snapshots of a database cost when 1% of its rows change between them, and (--burst-mb)
// a snapshot taken right after a burst of writes beside the one after it.
//
// Each driver runs on its own loop-mounted image (reflink on XFS, copy on ext4), argond durably
// (fsync on) with the branch's compute up. Needs root (loop mounts, runuser) and this build's
// argond.
//
//   argon_bench_snapshot [--sizes-mb 10,1024] [--drivers copy,reflink] [--reps 3] [--image-gb 24]
//                        [--disk-size-mb 1024] [--disk-snapshots 10] [--disk-pattern spread|range]
//                        [--burst-mb 0] [--log-dir DIR]
#include <fmt/format.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.h"

namespace fs = std::filesystem;
using argon::testing::Argond;
using namespace argon::bench;

namespace {
// --log-dir: where argond's logs (its own, and each PostgreSQL's, the snapshots' settling
// included) are copied after every snapshot, before the snapshot is deleted with its log.
fs::path g_log_dir;

void keep_logs(const Argond& a, const std::string& tag) {
  if (g_log_dir.empty()) return;
  fs::create_directories(g_log_dir / tag);
  fs::copy(a.data_dir() / "logs", g_log_dir / tag,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

// A standalone cluster of the kind a self-hoster runs: a copy of the branch, started by pg_ctl on
// its own socket directory.
class DiyCluster {
 public:
  DiyCluster(Argond& a, const std::string& branch_id, const fs::path& workdir) : dir_(workdir) {
    basebackup(a, branch_id, live());
    start();
  }
  ~DiyCluster() {
    try {
      run_as_postgres(fmt::format("pg_ctl -D {} stop -m fast", live().string()));
    } catch (const std::exception&) {
    }
  }
  // pg_basebackup of the running cluster into `snap`.
  double take(const fs::path& snap) {
    auto t = Clock::now();
    run_as_postgres(fmt::format("pg_basebackup -h {} -p {} -U argon_admin -D {} -X stream -c fast",
                                dir_.string(), kPort, snap.string()));
    return elapsed_s(t);
  }
  // Stop, put a copy of `snap` in place of the data directory, start; until it accepts connections.
  double restore(const fs::path& snap, const fs::path& old) {
    auto t = Clock::now();
    run_as_postgres(fmt::format(
        "pg_ctl -D {} stop -m fast && mv {} {} && cp -a --reflink=auto {} {}", live().string(),
        live().string(), old.string(), snap.string(), live().string()));
    start();
    return elapsed_s(t);
  }

 private:
  static constexpr int kPort = 5499;
  fs::path live() const { return dir_ / "live"; }
  void start() {
    run_as_postgres(
        fmt::format("pg_ctl -D {} -w -t 600 -l {}/live.log -o \"-k {} -c listen_addresses= -p {} "
                    "-c port={}\" start",
                    live().string(), dir_.string(), dir_.string(), kPort, kPort));
  }
  fs::path dir_;
};

void remove_tree(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
}

void measure(const std::string& driver, double mb, int reps, argon::testing::LoopFilesystem& image,
             std::vector<Sample>& out) {
  Argond a({"--clone-driver", driver}, image.mount_point() / "argon", /*durable=*/true);
  fmt::print(stderr, "[{}] {} MB: creating and filling the branch\n", driver, mb);
  const auto project = argon::testing::create_project(a, {{"name", fmt::format("snap-{}mb", mb)}});
  std::string branch = project.branch;
  const double actual = fill(a, branch, mb);
  const double pgdata = tree_mb(a.data_dir() / "branches" / branch / "pgdata");
  Sample snap{driver, "snapshot", actual, pgdata, {}};
  Sample restore{driver, "finalized restore", actual, pgdata, {}};
  // Where the snapshot is settled after its operation (reflink), a restore made at once clones the
  // capture, and its compute replays the capture's WAL.
  Sample restore_at_once{driver, "finalized restore, at once", actual, pgdata, {}};
  Sample diy_snap{driver, "pg_basebackup", actual, pgdata, {}};
  Sample diy_restore{driver, "stop, swap, start", actual, pgdata, {}};
  const fs::path work = postgres_workdir(image.mount_point());
  {
    DiyCluster diy(a, branch, work);
    for (int i = 0; i < reps; ++i) {
      fmt::print(stderr, "[{}] {:.0f} MB: repetition {}/{}\n", driver, actual, i + 1, reps);
      auto t = Clock::now();
      auto s = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name=bench-{}",
                                          project.id, branch, i));
      expect_status(s, 200, "snapshot");
      wait_finished(a, project.id, s.body.at("operations"));
      snap.seconds.push_back(elapsed_s(t));
      keep_logs(a, fmt::format("{}-{:.0f}mb", driver, mb));
      const std::string snapshot_id = str(s.body.at("snapshot"), "id");

      // In place, onto the branch that serves now; untimed: drop the '(old)' branch it leaves, so
      // disk use stays flat.
      auto restore_onto_branch = [&](Sample& sample) {
        auto t = Clock::now();
        auto r = a.call(
            "POST", fmt::format("/projects/{}/snapshots/{}/restore", project.id, snapshot_id),
            fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", branch));
        expect_status(r, 200, "restore");
        wait_finished(a, project.id, r.body.at("operations"));
        sample.seconds.push_back(elapsed_s(t));
        expect_status(a.call("DELETE", fmt::format("/projects/{}/branches/{}", project.id, branch)),
                      200, "delete old");
        branch = str(r.body.at("branch"), "id");
        a.wait_idle(project.id, std::chrono::seconds(600));
      };
      // argond's default: settled after the operation on reflink, inline on copy.
      if (driver == "reflink") restore_onto_branch(restore_at_once);
      wait_until_settled(a, snapshot_id);
      restore_onto_branch(restore);
      expect_status(
          a.call("DELETE", fmt::format("/projects/{}/snapshots/{}", project.id, snapshot_id)), 202,
          "delete snapshot");
      a.wait_idle(project.id, std::chrono::seconds(600));

      const fs::path copy = work / fmt::format("snap-{}", i), old = work / fmt::format("old-{}", i);
      diy_snap.seconds.push_back(diy.take(copy));
      diy_restore.seconds.push_back(diy.restore(copy, old));
      remove_tree(copy);
      remove_tree(old);
    }
  }
  remove_tree(work);
  out.insert(out.end(), {snap, restore, diy_snap, diy_restore});
  if (!restore_at_once.seconds.empty()) out.push_back(restore_at_once);
  expect_status(a.call("DELETE", "/projects/" + project.id), 200, "delete project");
  a.wait_idle(project.id, std::chrono::seconds(600));
  a.terminate();
}

// On reflink: a snapshot taken right after `mb` of new rows were written (CREATE TABLE AS, as an
// agent's step might load data, with no checkpoint since), the way an agent snapshots after each
// step, beside the next snapshot with nothing written in between.
void measure_burst(double mb, int reps, argon::testing::LoopFilesystem& image,
                   std::vector<Sample>& out) {
  Argond a({"--clone-driver", "reflink"}, image.mount_point() / "argon", /*durable=*/true);
  const auto project = argon::testing::create_project(a, {{"name", "burst"}});
  auto c = a.connect(project.branch, "neondb");
  const std::string what = fmt::format("snapshot right after writing {:.0f} MB", mb);
  Sample first{"reflink", what, mb, 0, {}}, next{"reflink", "the snapshot after it", mb, 0, {}};
  auto snapshot = [&](const std::string& name) {
    auto t = Clock::now();
    auto s = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name={}", project.id,
                                        project.branch, name));
    expect_status(s, 200, "snapshot");
    wait_finished(a, project.id, s.body.at("operations"));
    const double seconds = elapsed_s(t);
    // Untimed: its settling after the operation is done before the next write or snapshot, as
    // it is when an agent's steps are seconds apart.
    wait_until_settled(a, str(s.body.at("snapshot"), "id"));
    keep_logs(a, "burst");
    return seconds;
  };
  for (int i = 0; i < reps; ++i) {
    auto t = Clock::now();
    exec(c, fmt::format("CREATE TABLE burst_{} AS SELECT g AS id, (SELECT "
                        "string_agg(md5(random()::text), '') FROM generate_series(1, 30) WHERE g > "
                        "0) AS pad FROM generate_series(1, {:.0f}) g",
                        i, mb * 900));
    const double wrote = elapsed_s(t);
    first.seconds.push_back(snapshot(fmt::format("burst-{}", i)));
    next.seconds.push_back(snapshot(fmt::format("after-burst-{}", i)));
    fmt::print(stderr,
               "[reflink] burst {}/{}: wrote {:.0f} MB in {:.2f} s; snapshot {:.3f} s, the next "
               "{:.3f} s\n",
               i + 1, reps, mb, wrote, first.seconds.back(), next.seconds.back());
  }
  first.pgdata_mb = next.pgdata_mb = tree_mb(a.data_dir() / "branches" / project.branch / "pgdata");
  out.insert(out.end(), {first, next});
  a.terminate();
}

// Disk that `count` snapshots cost on reflink when 1% of the rows change between them: what the
// filesystem gained minus what the branch itself allocated for its new row versions.
void measure_disk(double mb, int count, bool spread, argon::testing::LoopFilesystem& image) {
  Argond a({"--clone-driver", "reflink"}, image.mount_point() / "argon", /*durable=*/true);
  fmt::print(stderr, "[reflink] disk: filling {} MB\n", mb);
  const auto project = argon::testing::create_project(a, {{"name", "disk"}});
  const double actual = fill(a, project.branch, mb);
  auto c = a.connect(project.branch, "neondb");
  const double rows = query_double(c, "SELECT count(*) FROM filler");
  // A database that has been in use: hint bits and the visibility map set. Otherwise the first
  // statement to read every page (the first UPDATE's scan) rewrites them all, once.
  exec(c, "VACUUM filler");
  exec(c, "CHECKPOINT");
  const fs::path pgdata = a.data_dir() / "branches" / project.branch / "pgdata";
  const double fs0 = fs_used_mb(image.mount_point()), branch0 = allocated_mb(pgdata);
  for (int k = 0; k < count; ++k) {
    // 1% of the rows: every hundredth one (spread over every page), or one contiguous range.
    const std::string which =
        spread ? fmt::format("id % 100 = {}", k)
               : fmt::format("id > {:.0f} AND id <= {:.0f}", rows * k / 100, rows * (k + 1) / 100);
    exec(c, fmt::format("UPDATE filler SET pad = (SELECT string_agg(md5(random()::text), '') FROM "
                        "generate_series(1, 30) "
                        "WHERE id > 0) WHERE {}",
                        which));
    auto s = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name=disk-{}",
                                        project.id, project.branch, k));
    expect_status(s, 200, "snapshot");
    wait_finished(a, project.id, s.body.at("operations"));
    // What it keeps once settled (after its operation, on reflink).
    wait_until_settled(a, str(s.body.at("snapshot"), "id"));
  }
  ::sync();
  const double fs1 = fs_used_mb(image.mount_point()), branch1 = allocated_mb(pgdata);
  const double snapshots = (fs1 - fs0) - (branch1 - branch0);
  fmt::print(
      "\n{} snapshots of a {:.0f} MB database ({:.0f} rows), 1% of the rows updated before each, "
      "{} "
      "(reflink, XFS):\n",
      count, actual, rows, spread ? "every hundredth row" : "a contiguous range");
  fmt::print("  filesystem used: +{:.1f} MB; the branch's own allocation: +{:.1f} MB\n", fs1 - fs0,
             branch1 - branch0);
  fmt::print("  the snapshots: +{:.1f} MB in all, {:.1f} MB each ({:.1f}% of the database each)\n",
             snapshots, snapshots / count, 100.0 * snapshots / count / actual);
  a.terminate();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Argon snapshot and restore benchmark"};
  SweepOptions opt;
  opt.add_to(app);
  double disk_size_mb = 1024;
  int disk_snapshots = 10;
  std::string disk_pattern = "spread";
  app.add_option("--disk-size-mb", disk_size_mb,
                 "database size for the reflink disk-use figure (0: skip)");
  app.add_option("--disk-snapshots", disk_snapshots, "snapshots for the disk-use figure")
      ->check(CLI::Range(1, 100));
  double burst_mb = 0;
  app.add_option("--burst-mb", burst_mb,
                 "also time a snapshot taken right after writing this much, on reflink (0: skip)");
  app.add_option("--disk-pattern", disk_pattern,
                 "which 1% changes: spread (every hundredth row) | range")
      ->check(CLI::IsMember({"spread", "range"}));
  app.add_option("--log-dir", g_log_dir,
                 "copy argond's logs here after each snapshot (the settling's included)");
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) {
    fmt::print(stderr, "argon_bench_snapshot: needs root (loop mounts, runuser)\n");
    return 2;
  }
  std::vector<Sample> samples;
  try {
    for (const auto& driver : opt.drivers) {
      for (double mb : opt.sizes_mb)
        measure(driver, mb, opt.reps, *driver_image(driver, opt.image_gb), samples);
    }
    if (burst_mb > 0)
      measure_burst(burst_mb, opt.reps, *driver_image("reflink", opt.image_gb), samples);
    print_samples(samples);
    std::fflush(stdout);
    if (disk_size_mb > 0) {
      measure_disk(disk_size_mb, disk_snapshots, disk_pattern == "spread",
                   *driver_image("reflink", opt.image_gb));
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "argon_bench_snapshot: {}\n", e.what());
    return 1;
  }
  return 0;
}
