// Restore outage benchmark: what a client in a tight reconnect-and-query loop sees while a
// snapshot is restored onto its branch with finalize_restore (the connection string never
// changes). Per restore it records the longest gap between two successful queries, the API call
// to operations-finished latency, and checks that after the restore every query sees the restored
// data. For each clone driver (on its own loop-mounted image: reflink on XFS, copy on ext4) and
// database size, prints p50/p99 over --restores runs.
//
//   argon_bench_restore [--sizes-mb 10,1024] [--drivers copy,reflink] [--restores 20]
#include <fmt/format.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
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

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

struct Figures {
  std::string driver;
  double db_mb = 0;
  std::vector<double> outage_ms, restore_ms;
  long queries = 0, failures = 0, stale_after_return = 0, stale = 0;
};

// `restores` finalized restores onto the branch of a database filled to `mb`, argond's data on
// `image` with `driver`.
Figures measure(const std::string& driver, double mb, int restores,
                argon::testing::LoopFilesystem& image) {
  Argond a({"--clone-driver", driver}, image.mount_point() / "argon", /*durable=*/true);
  const auto created = argon::testing::create_project(a, {{"name", "bench-restore"}});
  const auto& project = created.id;
  const auto& endpoint = created.endpoint;
  const std::string info = a.owner_conninfo(created.password, endpoint);
  Figures out{driver};
  fmt::print(stderr, "[{}] filling {} MB\n", driver, mb);
  out.db_mb = argon::bench::fill(a, created.branch, mb);

  // Two versions that differ in one value: v = 'A' or 'B'.
  {
    auto c = argon::PgConn::connect(info);
    if (!c) throw std::runtime_error(c.error().message);
    if (!c->exec("CREATE TABLE t AS SELECT 1 AS id, 'A'::text AS v")) {
      throw std::runtime_error("create table");
    }
  }
  auto snapshot = [&](const std::string& name) {
    auto branch =
        a.get(fmt::format("/projects/{}/endpoints/{}", project, endpoint)).body.at("endpoint");
    auto s = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name={}", project,
                                        str(branch, "branch_id"), name));
    if (s.status != 200) throw std::runtime_error("snapshot: " + s.raw);
    a.wait_operations(project, s.body.at("operations"), std::chrono::seconds(600));
    return str(s.body.at("snapshot"), "id");
  };
  const std::string snap_a = snapshot("A");
  {
    auto c = argon::PgConn::connect(info);
    if (!c || !c->exec("UPDATE t SET v = 'B'")) throw std::runtime_error("update");
  }
  const std::string snap_b = snapshot("B");

  // The client: connect, read, disconnect, as fast as it can; records each success.
  std::mutex mu;
  struct Read {
    Clock::time_point started, done;
    char value;
  };
  std::vector<Read> ok;
  std::atomic<bool> stop{false};
  std::atomic<long> failures{0};
  std::thread client([&] {
    while (!stop) {
      const auto started = Clock::now();
      PGconn* c = PQconnectdb(info.c_str());
      if (PQstatus(c) == CONNECTION_OK) {
        PGresult* res = PQexec(c, "SELECT min(v) FROM t");
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
          std::lock_guard l(mu);
          ok.push_back({started, Clock::now(), PQgetvalue(res, 0, 0)[0]});
        } else {
          ++failures;
        }
        PQclear(res);
      } else {
        ++failures;
      }
      PQfinish(c);
    }
  });
  argon::testing::StopAndJoin joiner{stop, client};

  for (int i = 0; i < restores; ++i) {
    const bool to_a = i % 2 == 0;
    std::this_thread::sleep_for(300ms);  // steady state before the restore
    auto target =
        str(a.get(fmt::format("/projects/{}/endpoints/{}", project, endpoint)).body.at("endpoint"),
            "branch_id");
    const auto start = Clock::now();
    auto rr = a.call(
        "POST", fmt::format("/projects/{}/snapshots/{}/restore", project, to_a ? snap_a : snap_b),
        fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", target));
    if (rr.status != 200) throw std::runtime_error("restore: " + rr.raw);
    const auto returned = Clock::now();
    for (const auto& st :
         a.wait_operations(project, rr.body.at("operations"), std::chrono::seconds(600), 5ms)) {
      if (st != "finished")
        throw std::runtime_error("restore operation " + st + "\n" + a.log_tail());
    }
    const auto finished = Clock::now();
    out.restore_ms.push_back(ms_between(start, finished));
    std::this_thread::sleep_for(300ms);
    const auto settled = Clock::now();
    {
      // The longest gap between successful queries around this restore, and any read by a
      // connection that started after the call returned (allowed) or after the operations
      // finished (never allowed) that still saw the old version.
      std::lock_guard l(mu);
      double gap = 0;
      Clock::time_point prev = start;
      for (const auto& read : ok) {
        const auto t = read.done;
        if (t < start - 200ms || t > settled) continue;
        if (t >= start) gap = std::max(gap, ms_between(prev, t));
        prev = std::max(prev, t);
        const bool old_value = read.value != (to_a ? 'A' : 'B');
        if (read.started > finished && old_value) ++out.stale;
        if (read.started > returned && old_value) ++out.stale_after_return;
      }
      out.outage_ms.push_back(gap);
    }
    // Delete the "(old)" branch so the project stays within its root-branch limit.
    auto d = a.call("DELETE", fmt::format("/projects/{}/branches/{}", project, target));
    if (d.status == 200)
      a.wait_operations(project, d.body.at("operations"), std::chrono::seconds(600));
  }
  stop = true;
  client.join();
  out.queries = static_cast<long>(ok.size());
  out.failures = failures.load();
  a.terminate();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Argon finalized-restore outage benchmark"};
  argon::bench::SweepOptions opt;
  opt.add_to(app);
  int restores = 20;
  app.add_option("--restores", restores, "finalized restores per driver and size")
      ->check(CLI::Range(1, 1000));
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
        all.push_back(
            measure(driver, mb, restores, *argon::bench::driver_image(driver, opt.image_gb)));
    }
    fmt::print(
        "finalized restores, {} per row; a client reconnects and queries through the proxy (TLS) "
        "as fast as it can\n",
        restores);
    fmt::print("{:<8} {:>8}  {:>10} {:>10}  {:>12} {:>12}  {:>7} {:>7}  {:>14} {:>14}\n", "driver",
               "db MB", "outage p50", "outage p99", "finished p50", "finished p99", "queries",
               "failed", "old after call", "old after end");
    for (const auto& f : all) {
      auto [o50, o99] = p50_p99(f.outage_ms);
      auto [r50, r99] = p50_p99(f.restore_ms);
      fmt::print(
          "{:<8} {:>8.0f}  {:>7.0f} ms {:>7.0f} ms  {:>9.0f} ms {:>9.0f} ms  {:>7} {:>7}  {:>14} "
          "{:>14}\n",
          f.driver, f.db_mb, o50, o99, r50, r99, f.queries, f.failures, f.stale_after_return,
          f.stale);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "argon_bench_restore: {}\n", e.what());
    return 1;
  }
  return 0;
}
