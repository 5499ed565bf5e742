// Restore outage benchmark: what a client in a tight reconnect-and-query loop sees while its branch
// is restored in place, the connection string never changing. `--kind snapshot` (the default)
// restores a snapshot onto the branch with finalize_restore; `--kind reset` resets the branch from
// its parent (POST /branches/{id}/restore with the parent as source) after each change of the
// parent. Per restore it records the switch (from the last answer of the old version to the first
// of the new one), the longest gap between two successful queries from the call until 300 ms after
// the operations finished (which also counts a connection slowed by the restore's own I/O), the
// API call to operations-finished latency, and checks that after the restore every query sees the
// restored data. Each restore's longest gap is printed with the attempts that filled it. For each
// clone driver (on its own loop-mounted image: reflink on XFS, copy on ext4) and database size,
// prints p50/p99 over --restores runs.
//
//   argon_bench_restore [--kind snapshot|reset] [--sizes-mb 10,1024] [--drivers copy,reflink]
//                       [--restores 20] [--log-dir DIR]
#include <fmt/format.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "bench_util.h"
#include "harness.h"

using argon::testing::Argond;
using argon::testing::p50_p99;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

using argon::bench::str;
using argon::bench::wait_until_settled;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Figures {
  std::string driver;
  double db_mb = 0;
  std::vector<double> outage_ms, switch_ms, restore_ms;
  long queries = 0, failures = 0, stale_after_return = 0, stale = 0;
};

void exec_on(const std::string& conninfo, const char* sql) {
  auto c = argon::PgConn::connect(conninfo);
  if (!c) throw std::runtime_error(c.error().message);
  if (!c->exec(sql)) throw std::runtime_error(std::string("failed: ") + sql);
}

// `restores` restores in place (`kind`) onto the branch of a database filled to `mb`, argond's
// data on `image` with `driver`.
Figures measure(const std::string& kind, const std::string& driver, double mb, int restores,
                argon::testing::LoopFilesystem& image, const std::filesystem::path& log_dir) {
  Argond a({"--clone-driver", driver}, image.mount_point() / "argon", /*durable=*/true);
  const auto created = argon::testing::create_project(a, {{"name", "bench-restore"}});
  const auto& project = created.id;
  const std::string main_info = a.owner_conninfo(created.password, created.endpoint);
  Figures out{driver};
  fmt::print(stderr, "[{}] filling {} MB\n", driver, mb);
  out.db_mb = argon::bench::fill(a, created.branch, mb);
  // Two versions that differ in one value: v = 'A' or 'B'.
  exec_on(main_info, "CREATE TABLE t AS SELECT 1 AS id, 'A'::text AS v");

  // The client's endpoint, and how to restore its branch to version A or B.
  std::string endpoint = created.endpoint;
  std::function<void(bool to_a)> before;  // untimed: what differs between the two versions
  std::function<argon::testing::ApiReply(bool to_a, const std::string& target)> restore;
  std::string snap_a, snap_b;
  if (kind == "reset") {
    // A child with its own endpoint, reset from main after main changed.
    auto kid = a.post(fmt::format("/projects/{}/branches", project),
                      {{"branch", {{"name", "work"}, {"parent_id", created.branch}}},
                       {"endpoints", {{{"type", "read_write"}}}}});
    if (kid.status != 201) throw std::runtime_error("branch: " + kid.raw);
    a.wait_operations(project, kid.body.at("operations"), std::chrono::seconds(600));
    endpoint = str(kid.body.at("endpoints").as_array()[0], "id");
    before = [&](bool to_a) {
      exec_on(main_info, to_a ? "UPDATE t SET v = 'A'" : "UPDATE t SET v = 'B'");
    };
    restore = [&](bool, const std::string& target) {
      return a.call("POST", fmt::format("/projects/{}/branches/{}/restore", project, target),
                    fmt::format(R"({{"source_branch_id":"{}"}})", created.branch));
    };
  } else {
    auto snapshot = [&](const std::string& name) {
      auto s = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name={}", project,
                                          created.branch, name));
      if (s.status != 200) throw std::runtime_error("snapshot: " + s.raw);
      a.wait_operations(project, s.body.at("operations"), std::chrono::seconds(600));
      // Settled before the restores begin (after its operation, on reflink).
      wait_until_settled(a, str(s.body.at("snapshot"), "id"));
      return str(s.body.at("snapshot"), "id");
    };
    snap_a = snapshot("A");
    exec_on(main_info, "UPDATE t SET v = 'B'");
    snap_b = snapshot("B");
    restore = [&](bool to_a, const std::string& target) {
      return a.call(
          "POST", fmt::format("/projects/{}/snapshots/{}/restore", project, to_a ? snap_a : snap_b),
          fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", target));
    };
  }
  const std::string info = a.owner_conninfo(created.password, endpoint);

  // The client: connect, read, disconnect, as fast as it can; records each attempt.
  std::mutex mu;
  struct Attempt {
    Clock::time_point started, connected, done;
    char value = 0;     // the value read; 0 when the attempt failed
    std::string error;  // why it failed
  };
  std::vector<Attempt> attempts;
  std::atomic<bool> stop{false};
  std::thread client([&] {
    while (!stop) {
      Attempt at;
      at.started = Clock::now();
      PGconn* c = PQconnectdb(info.c_str());
      at.connected = Clock::now();
      if (PQstatus(c) == CONNECTION_OK) {
        PGresult* res = PQexec(c, "SELECT min(v) FROM t");
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
          at.value = PQgetvalue(res, 0, 0)[0];
        else
          at.error = fmt::format("query: {}", PQresultErrorMessage(res));
        PQclear(res);
      } else {
        at.error = fmt::format("connect: {}", PQerrorMessage(c));
      }
      at.done = Clock::now();
      PQfinish(c);
      while (!at.error.empty() && (at.error.back() == '\n' || at.error.back() == ' '))
        at.error.pop_back();
      std::lock_guard l(mu);
      attempts.push_back(std::move(at));
    }
  });
  argon::testing::StopAndJoin joiner{stop, client};

  for (int i = 0; i < restores; ++i) {
    const bool to_a = i % 2 == 0;
    if (before) before(to_a);
    std::this_thread::sleep_for(300ms);  // steady state before the restore
    auto target =
        str(a.get(fmt::format("/projects/{}/endpoints/{}", project, endpoint)).body.at("endpoint"),
            "branch_id");
    const auto start = Clock::now();
    auto rr = restore(to_a, target);
    if (rr.status != 200) throw std::runtime_error("restore: " + rr.raw);
    const auto returned = Clock::now();
    for (const auto& st :
         a.wait_operations(project, rr.body.at("operations"), std::chrono::seconds(600), 5ms)) {
      if (st != "finished")
        throw std::runtime_error("restore operation " + st + "\n" + a.log_tail());
    }
    const auto finished = Clock::now();
    out.restore_ms.push_back(ms_between(start, finished));
    fmt::print(stderr, "[{}] restore {}: call {:.0f} ms, finished after {:.0f} ms\n", driver, i + 1,
               ms_between(start, returned), ms_between(start, finished));
    std::this_thread::sleep_for(300ms);
    const auto settled = Clock::now();
    {
      // The longest gap between successful queries around this restore, and any read by a
      // connection that started after the call returned (allowed) or after the operations
      // finished (never allowed) that still saw the old version.
      std::lock_guard l(mu);
      const char new_value = to_a ? 'A' : 'B';
      double gap = 0;
      Clock::time_point prev = start, gap_from = start, gap_to = start;
      for (const auto& read : attempts) {
        const auto t = read.done;
        if (read.value == 0 || t < start - 200ms || t > settled) continue;
        if (t >= start && ms_between(prev, t) > gap) {
          gap = ms_between(prev, t);
          gap_from = prev;
          gap_to = t;
        }
        prev = std::max(prev, t);
        const bool old_value = read.value != new_value;
        if (read.started > finished && old_value) ++out.stale;
        if (read.started > returned && old_value) ++out.stale_after_return;
      }
      out.outage_ms.push_back(gap);
      // The switch: from the last answer of the old version to the first of the new one.
      Clock::time_point first_new = Clock::time_point::max(), last_old = start;
      for (const auto& read : attempts)
        if (read.value == new_value && read.done >= start)
          first_new = std::min(first_new, read.done);
      for (const auto& read : attempts)
        if (read.value != 0 && read.value != new_value && read.done <= first_new)
          last_old = std::max(last_old, read.done);
      const double switch_gap =
          first_new == Clock::time_point::max() ? gap : ms_between(last_old, first_new);
      out.switch_ms.push_back(switch_gap);
      // What filled the gap: each attempt that ended in it, its connect and query times (ms
      // since the gap began), and the error of those that failed.
      std::string parts;
      for (const auto& at : attempts) {
        if (at.done <= gap_from || at.done > gap_to) continue;
        parts += fmt::format("\n    started +{:.0f}, connected +{:.0f}, done +{:.0f}{}{}",
                             ms_between(gap_from, at.started), ms_between(gap_from, at.connected),
                             ms_between(gap_from, at.done), at.error.empty() ? "" : ": ",
                             at.error.substr(0, 120));
      }
      fmt::print(stderr,
                 "[{}] restore {}: old to new {:.0f} ms; longest gap {:.0f} ms, from {:.0f} ms "
                 "after the call; its attempts, in ms from its start:{}\n",
                 driver, i + 1, switch_gap, gap, ms_between(start, gap_from), parts);
    }
    if (kind == "reset") continue;  // the branch kept its id; its old data went
    // Delete the "(old)" branch so the project stays within its root-branch limit.
    auto d = a.call("DELETE", fmt::format("/projects/{}/branches/{}", project, target));
    if (d.status == 200)
      a.wait_operations(project, d.body.at("operations"), std::chrono::seconds(600));
  }
  stop = true;
  client.join();
  for (const auto& at : attempts) (at.value ? out.queries : out.failures)++;
  a.terminate();
  if (!log_dir.empty()) {
    // argond's log (each restore's steps with their times) outlives the loop image.
    std::filesystem::create_directories(log_dir);
    std::filesystem::copy_file(a.data_dir() / "logs" / "argond.log",
                               log_dir / fmt::format("argond-{}-{}-{:.0f}mb.log", kind, driver, mb),
                               std::filesystem::copy_options::overwrite_existing);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Argon finalized-restore outage benchmark"};
  argon::bench::SweepOptions opt;
  opt.add_to(app);
  int restores = 20;
  app.add_option("--restores", restores, "restores per driver and size")
      ->check(CLI::Range(1, 1000));
  std::string kind = "snapshot";
  app.add_option("--kind", kind,
                 "snapshot: a snapshot restored with finalize_restore; reset: a reset from the "
                 "parent")
      ->check(CLI::IsMember({"snapshot", "reset"}));
  std::filesystem::path log_dir;
  app.add_option("--log-dir", log_dir, "keep a copy of argond's log of each row here");
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) {
    fmt::print(stderr,
               "argon_bench_restore: run as root (loop mounts; Postgres runs as postgres)\n");
    return 2;
  }
  try {
    std::vector<Figures> all;
    for (const auto& driver : opt.drivers) {
      for (double mb : opt.sizes_mb)
        all.push_back(measure(kind, driver, mb, restores,
                              *argon::bench::driver_image(driver, opt.image_gb), log_dir));
    }
    fmt::print(
        "{}, {} per row; a client reconnects and queries through the proxy (TLS) as fast as it "
        "can\n",
        kind == "reset" ? "resets from the parent" : "finalized snapshot restores", restores);
    fmt::print(
        "{:<8} {:>8}  {:>10} {:>10}  {:>10} {:>10}  {:>12} {:>12}  {:>7} {:>7}  {:>14} {:>14}\n",
        "driver", "db MB", "switch p50", "switch p99", "gap p50", "gap p99", "finished p50",
        "finished p99", "queries", "failed", "old after call", "old after end");
    for (const auto& f : all) {
      auto [s50, s99] = p50_p99(f.switch_ms);
      auto [o50, o99] = p50_p99(f.outage_ms);
      auto [r50, r99] = p50_p99(f.restore_ms);
      fmt::print(
          "{:<8} {:>8.0f}  {:>7.0f} ms {:>7.0f} ms  {:>7.0f} ms {:>7.0f} ms  {:>9.0f} ms {:>9.0f} "
          "ms  {:>7} {:>7}  {:>14} {:>14}\n",
          f.driver, f.db_mb, s50, s99, o50, o99, r50, r99, f.queries, f.failures,
          f.stale_after_return, f.stale);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "argon_bench_restore: {}\n", e.what());
    return 1;
  }
  return 0;
}
