// Point-in-time history benchmark, on a loop-mounted XFS image with reflink (or ext4 for copy),
// argond durable (fsync on):
//   1. Branch at a past time T, as a function of the WAL between the newest base image before T
//      and T (--wal-mb, default 10,64,100,1024), on a database of --db-mb: the time from
//      `POST /branches` with `parent_timestamp` to its operations finished (the recovery replays
//      that WAL), and the replay rate that gives.
//   2. The write-throughput cost of archiving: pgbench TPC-B through the proxy on a project with
//      history (the default day) and one without (history_retention_seconds 0), the same scale,
//      alternating rounds in the same run.
//   3. Disk per hour of history: the archive's growth during the history project's pgbench
//      rounds, per hour at that write rate.
// Needs root (loop mounts, pgbench as any user) and this build's argond.
//
//   argon_bench_history [--driver reflink] [--db-mb 1024] [--wal-mb 10,64,100,1024] [--reps 3]
//                       [--scale 20] [--clients 4] [--seconds 30] [--rounds 2] [--image-gb 24]
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "common/pg_control.h"

namespace fs = std::filesystem;
namespace json = boost::json;
using argon::PgConn;
using argon::testing::Argond;
using namespace argon::bench;
using namespace std::chrono_literals;

namespace {

uint64_t lsn_of(PgConn& c) {
  auto r = c.exec("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn");
  if (!r) throw std::runtime_error(r.error().message);
  return std::stoull(r->value());
}

std::string now_text(PgConn& c) {
  auto r = c.exec(
      "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
  if (!r) throw std::runtime_error(r.error().message);
  return r->value();
}

// The newest base image's stop LSN (bytes), or 0.
uint64_t newest_image_lsn(const fs::path& branch_dir) {
  uint64_t best = 0;
  std::string best_name;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(branch_dir / "images", ec)) {
    const auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (name > best_name && fs::exists(e.path() / "stop-lsn")) best_name = name;
  }
  if (best_name.empty()) return 0;
  std::ifstream in(branch_dir / "images" / best_name / "stop-lsn");
  std::string text;
  in >> text;
  auto l = argon::parse_lsn(text);
  best = l ? *l : 0;
  return best;
}

// Updates rows of `filler` until the WAL has grown by `mb` since `from` (bytes).
void write_wal(PgConn& c, uint64_t from, double mb) {
  static long next = 1;
  while (lsn_of(c) - from < static_cast<uint64_t>(mb * 1048576)) {
    exec(c, fmt::format("UPDATE filler SET pad = md5(pad) || substr(pad, 33) WHERE id BETWEEN {} "
                        "AND {}",
                        next, next + 499));
    next = next + 500 > 900000 ? 1 : next + 500;
  }
}

double pgbench_tpcb(const std::string& conninfo, int clients, int seconds) {
  auto out = run_capture(fmt::format("{} pgbench -n -c {} -j {} -T {}", pg_env(conninfo), clients,
                                     std::min(clients, 2), seconds));
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(tps = ([0-9.]+) \((without|excluding))")))
    throw std::runtime_error("no tps in pgbench output:\n" + out);
  return std::stod(m[1]);
}

double dir_mb(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  return tree_mb(dir);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Argon point-in-time history benchmark"};
  std::string driver = "reflink";
  double db_mb = 1024;
  std::vector<double> wal_mb{10, 64, 100, 1024};
  int reps = 3, scale = 20, clients = 4, seconds = 30, rounds = 2, image_gb = 24;
  app.add_option("--driver", driver)->check(CLI::IsMember({"reflink", "copy"}));
  app.add_option("--db-mb", db_mb);
  app.add_option("--wal-mb", wal_mb)->delimiter(',');
  app.add_option("--reps", reps);
  app.add_option("--scale", scale);
  app.add_option("--clients", clients);
  app.add_option("--seconds", seconds);
  app.add_option("--rounds", rounds);
  app.add_option("--image-gb", image_gb);
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) {
    fmt::print(stderr, "argon_bench_history: needs root to loop-mount the image it measures on\n");
    return 2;
  }
  std::sort(wal_mb.begin(), wal_mb.end());
  try {
    auto image = driver_image(driver, image_gb);
    const fs::path data = image->mount_point() / "argon";
    // 1. Branch at a time vs the WAL since the newest image. Images every megabyte while the
    //    database is filled, so the last one comes right after; then none (argond restarted).
    double fill_mb = 0;
    std::string project, branch, password, endpoint;
    std::vector<std::pair<double, std::string>> points;  // WAL MB since the image, time
    {
      Argond a(
          {"--clone-driver", driver, "--history-image-wal-mb", "1", "--history-check-seconds", "1"},
          data, /*durable=*/true);
      auto p = argon::testing::create_project(a, {{"name", "history-bench"}});
      project = p.id;
      branch = p.branch;
      password = p.password;
      endpoint = p.endpoint;
      fmt::print(stderr, "filling {} MB\n", db_mb);
      fill_mb = fill(a, branch, db_mb);
      auto c = a.connect(branch, "neondb");
      const uint64_t filled = lsn_of(c);
      fmt::print(stderr, "waiting for a base image after the fill\n");
      for (int i = 0; i < 600 && newest_image_lsn(data / "branches" / branch) < filled; ++i)
        std::this_thread::sleep_for(500ms);
      if (newest_image_lsn(data / "branches" / branch) < filled)
        throw std::runtime_error("no base image after the fill");
      a.terminate();
    }
    Argond a({"--clone-driver", driver, "--history-image-wal-mb", "1048576"}, data,
             /*durable=*/true);
    {
      // The restart left the endpoint idle: a client wakes it.
      (void)argon::testing::query_value(a.owner_conninfo(password, endpoint), "SELECT 1");
      auto c = a.connect(branch, "neondb");
      const uint64_t from = newest_image_lsn(data / "branches" / branch);
      for (double mb : wal_mb) {
        fmt::print(stderr, "writing WAL to {} MB past the image\n", mb);
        write_wal(c, from, mb);
        points.emplace_back(static_cast<double>(lsn_of(c) - from) / 1048576, now_text(c));
      }
      exec(c, "UPDATE filler SET pad = pad WHERE id = 1");  // one commit after the last point
    }
    std::vector<Sample> samples;
    for (const auto& [mb, t] : points) {
      Sample s{
          driver, fmt::format("branch at T, {:.0f} MB of WAL after the image", mb), fill_mb, 0, {}};
      for (int i = 0; i < reps; ++i) {
        auto start = Clock::now();
        auto r = a.post(fmt::format("/projects/{}/branches", project),
                        {{"branch", {{"parent_id", branch}, {"parent_timestamp", t}}}});
        expect_status(r, 201, "branch at a time");
        wait_finished(a, project, r.body.at("operations"));
        s.seconds.push_back(elapsed_s(start));
        auto d = a.call("DELETE", fmt::format("/projects/{}/branches/{}", project,
                                              str(r.body.at("branch"), "id")));
        expect_status(d, 200, "delete branch");
        a.wait_idle(project, 600s);
      }
      samples.push_back(s);
    }
    print_samples(samples);
    if (samples.size() >= 2) {
      auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
      };
      const double dmb = points.back().first - points.front().first;
      const double ds = median(samples.back().seconds) - median(samples.front().seconds);
      fmt::print("replay: {:.0f} MB of WAL in {:.2f} s more = {:.0f} MB/s\n", dmb, ds, dmb / ds);
    }

    // 2 and 3. pgbench TPC-B through the proxy, with and without history.
    auto with = argon::testing::create_project(a, {{"name", "with-history"}});
    auto without = argon::testing::create_project(
        a, {{"name", "without-history"}, {"history_retention_seconds", 0}});
    const std::string with_info = a.owner_conninfo(with.password, with.endpoint);
    const std::string without_info = a.owner_conninfo(without.password, without.endpoint);
    for (const auto& info : {with_info, without_info})
      run_capture(fmt::format("{} pgbench -i -q -s {}", pg_env(info), scale));
    const fs::path archive = data / "branches" / with.branch / "wal";
    std::vector<double> tps_with, tps_without;
    double archived_mb = 0, archived_s = 0;
    for (int r = 0; r < rounds; ++r) {
      const double before = dir_mb(archive);
      auto start = Clock::now();
      tps_with.push_back(pgbench_tpcb(with_info, clients, seconds));
      archived_s += elapsed_s(start);
      archived_mb += dir_mb(archive) - before;
      tps_without.push_back(pgbench_tpcb(without_info, clients, seconds));
      fmt::print(stderr, "round {}: {:.0f} tps with history, {:.0f} without\n", r + 1,
                 tps_with.back(), tps_without.back());
    }
    auto mean = [](const std::vector<double>& v) {
      double s = 0;
      for (double x : v) s += x;
      return s / static_cast<double>(v.size());
    };
    fmt::print("pgbench TPC-B scale {}, {} clients, {} s x {} rounds through the proxy:\n", scale,
               clients, seconds, rounds);
    fmt::print("  with history:    {:.0f} tps\n  without history: {:.0f} tps\n  cost: {:.1f}%\n",
               mean(tps_with), mean(tps_without),
               100.0 * (1.0 - mean(tps_with) / mean(tps_without)));
    fmt::print("archive growth under that load: {:.0f} MB in {:.0f} s = {:.1f} GB per hour\n",
               archived_mb, archived_s, archived_mb / archived_s * 3600 / 1024);
    a.terminate();
  } catch (const std::exception& e) {
    fmt::print(stderr, "argon_bench_history: {}\n", e.what());
    return 1;
  }
  return 0;
}
