// Churn under load: writers commit through the proxy, a reader keeps reconnecting, and meanwhile
// snapshots, finalized restores and branch creations run back to back for ARGON_SOAK_SECONDS
// (default 120). Checked all along:
//  - a state a call captures (snapshot, branch, and the 'main (old)' a restore keeps) holds every
//    write acknowledged on main before the call;
//  - once a finalized restore's operations finished, no new connection ever reads the replaced
//    data;
//  - argond's descriptors and memory stay flat from the first cycles to the last.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "common/pg_conn.h"
#include "harness.h"

namespace argon::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A write is writer * 1e9 + seq; a set of writes is a sorted vector.
using Writes = std::vector<int64_t>;
constexpr int64_t kPerWriter = 1'000'000'000;

// What every writer has had acknowledged, and when.
class AckLog {
 public:
  void add(int64_t write) {
    std::lock_guard l(mu_);
    acks_.emplace_back(Clock::now(), write);
  }
  // Writes acknowledged in (after, before).
  Writes between(Clock::time_point after, Clock::time_point before) const {
    std::lock_guard l(mu_);
    Writes out;
    for (const auto& [t, w] : acks_) {
      if (t > after && t < before) out.push_back(w);
    }
    return out;
  }
  size_t size() const {
    std::lock_guard l(mu_);
    return acks_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<Clock::time_point, int64_t>> acks_;
};

Writes merge(Writes a, const Writes& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  a.erase(std::unique(a.begin(), a.end()), a.end());
  return a;
}

// How many of `expected` are missing from the table `w` behind `conninfo` (-1: could not read).
long missing(const std::string& conninfo, const Writes& expected) {
  auto c = PgConn::connect(conninfo);
  if (!c) return -1;
  auto r = c->exec("SELECT writer::bigint * 1000000000 + seq FROM w");
  if (!r) return -1;
  Writes have;
  for (const auto& row : r->rows) have.push_back(std::stoll(*row[0]));
  std::sort(have.begin(), have.end());
  long n = 0;
  for (int64_t w : expected) n += !std::binary_search(have.begin(), have.end(), w);
  return n;
}

TEST(SoakTest, WritersAndReadersThroughContinuousSnapshotsRestoresAndBranches) {
  const char* env = std::getenv("ARGON_SOAK_SECONDS");
  const auto duration = std::chrono::seconds(env && *env ? std::atoi(env) : 120);
  Argond a;
  const TestProject p = create_project(a, {{"name", "soak"}});
  const std::string info = a.owner_conninfo(p.password, p.endpoint);  // never changes
  query_value(info,
              "CREATE TABLE w (writer int, seq bigint, PRIMARY KEY (writer, seq)); CREATE TABLE "
              "marker (k int)");

  // Measured with main's compute up and no client connected; again so at the end.
  const int fds_start = open_fds(a.pid());
  const long rss_start = rss_kb(a.pid());

  AckLog acks;
  std::atomic<bool> stop{false};
  std::atomic<long> write_errors{0}, reads{0};
  // Restore k inserts marker k into main just before its call; once its operations have finished,
  // no new connection may see marker k again (it would be reading the replaced data).
  std::mutex restores_mu;
  std::map<int, Clock::time_point> restore_finished;
  std::vector<std::string> stale;

  std::vector<std::thread> threads;
  constexpr int kWriters = 4;
  for (int wr = 1; wr <= kWriters; ++wr) {
    threads.emplace_back([&, wr] {
      int64_t seq = 0;
      while (!stop) {
        auto c = PgConn::connect(info);
        if (!c) {
          ++write_errors;
          std::this_thread::sleep_for(20ms);
          continue;
        }
        while (!stop) {
          ++seq;
          if (!c->exec(fmt::format("INSERT INTO w VALUES ({}, {})", wr, seq))) {
            ++write_errors;  // 57P01 from a restore's swap: reconnect
            break;
          }
          acks.add(wr * kPerWriter + seq);
          std::this_thread::sleep_for(10ms);
        }
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop) {
      const auto opened = Clock::now();
      auto c = PgConn::connect(info);
      if (!c) continue;
      auto r = c->exec("SELECT k FROM marker");
      if (!r) continue;
      ++reads;
      std::lock_guard l(restores_mu);
      for (const auto& row : r->rows) {
        const int k = std::stoi(*row[0]);
        if (auto it = restore_finished.find(k);
            it != restore_finished.end() && it->second < opened) {
          stale.push_back(fmt::format(
              "a connection opened after restore {} finished read its replaced data", k));
        }
      }
    }
  });
  struct JoinAll {  // a failed ASSERT below still stops them all
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~JoinAll() {
      stop = true;
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } join_all{stop, threads};

  // main's writes known for certain: those of the snapshot last restored onto it (or none), plus
  // those acknowledged after that restore finished. Writes acknowledged while a restore ran may
  // be on either side of it, so no check counts on them.
  Writes base;
  Clock::time_point base_since = Clock::now() - 1h;
  auto main_writes = [&](Clock::time_point before) {
    return merge(base, acks.between(base_since, before));
  };
  std::string main_branch = p.branch;
  std::vector<std::pair<std::string, Writes>> snapshots;  // id, writes it must hold
  std::mt19937 rng(std::random_device{}());
  int cycles = 0, restores = 0, branches = 0;
  int fds_max = 0;
  long rss_max = 0;

  auto run = [&](const ApiReply& r) {
    EXPECT_TRUE(r.status >= 200 && r.status <= 202) << r.raw;
    for (const auto& s : a.wait_operations(p.id, r.body.at("operations")))
      EXPECT_EQ(s, "finished") << a.log_tail();
  };
  auto add_endpoint = [&](const std::string& branch) {
    auto r = a.post(fmt::format("/projects/{}/endpoints", p.id),
                    {{"endpoint", {{"branch_id", branch}, {"type", "read_write"}}}});
    run(r);
    return a.owner_conninfo(p.password, str(r.body.at("endpoint"), "id"));
  };
  auto remove_branch = [&](const std::string& id) {
    run(a.call("DELETE", fmt::format("/projects/{}/branches/{}", p.id, id)));
  };

  // The duration is a least: flatness needs a few cycles, and a slow machine (a sanitizer build
  // sharing two cores) may take longer than the duration for them. Bounded all the same.
  constexpr int kMinCycles = 3;
  const auto deadline = Clock::now() + duration;
  const auto hard_deadline = deadline + std::max(duration, std::chrono::seconds(180));
  while ((Clock::now() < deadline || cycles < kMinCycles) && Clock::now() < hard_deadline &&
         !::testing::Test::HasFailure()) {
    SCOPED_TRACE(fmt::format("cycle {}", cycles));
    // A snapshot of main.
    auto called = Clock::now();
    auto s = a.call("POST", fmt::format("/projects/{}/branches/{}/snapshot?name=c{}", p.id,
                                        main_branch, cycles));
    run(s);
    snapshots.emplace_back(str(s.body.at("snapshot"), "id"), main_writes(called));
    if (snapshots.size() > 4) {
      run(a.call("DELETE",
                 fmt::format("/projects/{}/snapshots/{}", p.id, snapshots.front().first)));
      snapshots.erase(snapshots.begin());
    }

    // A branch of main: it holds every write acknowledged before the call.
    called = Clock::now();
    auto b = a.post(
        fmt::format("/projects/{}/branches", p.id),
        {{"branch", {{"parent_id", main_branch}}}, {"endpoints", {{{"type", "read_write"}}}}});
    run(b);
    const Writes expected_in_branch = main_writes(called);
    EXPECT_EQ(missing(a.owner_conninfo(p.password, str(b.body.at("endpoints").at(0), "id")),
                      expected_in_branch),
              0)
        << "a new branch lacks acknowledged writes";
    remove_branch(str(b.body.at("branch"), "id"));
    ++branches;

    // A finalized restore of one of the kept snapshots onto main.
    const auto& [snap, snap_writes] =
        snapshots[std::uniform_int_distribution<size_t>(0, snapshots.size() - 1)(rng)];
    query_value(info, fmt::format("INSERT INTO marker VALUES ({})", restores));
    called = Clock::now();
    auto r =
        a.call("POST", fmt::format("/projects/{}/snapshots/{}/restore", p.id, snap),
               fmt::format(R"({{"target_branch_id":"{}","finalize_restore":true}})", main_branch));
    const Writes kept = main_writes(called);  // 'main (old)' must hold these
    run(r);
    const auto finished = Clock::now();
    {
      std::lock_guard l(restores_mu);
      restore_finished[restores] = finished;
    }
    EXPECT_EQ(missing(info, snap_writes), 0)
        << "main after the restore lacks writes its snapshot held";
    const std::string old_main = main_branch;
    main_branch = str(r.body.at("branch"), "id");
    base = snap_writes;
    base_since = finished;
    EXPECT_EQ(missing(add_endpoint(old_main), kept), 0)
        << "'main (old)' lacks writes acknowledged before the restore";
    remove_branch(old_main);
    ++restores;

    ++cycles;
    fds_max = std::max(fds_max, open_fds(a.pid()));
    rss_max = std::max(rss_max, rss_kb(a.pid()));
  }
  const auto ran = Clock::now() - (deadline - duration);
  stop = true;
  for (auto& t : threads) t.join();
  // The clients' sessions close asynchronously; the proxy may keep a few idle admin sessions to
  // main's compute (up to 4 per compute), which it had none of at the start.
  constexpr int kAdminPool = 4;
  int fds_end = 0;
  for (int i = 0; i < 100 && (fds_end = open_fds(a.pid())) > fds_start + kAdminPool; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  const long rss_end = rss_kb(a.pid());
  {
    std::lock_guard l(restores_mu);
    for (const auto& m : stale) ADD_FAILURE() << m;
  }
  std::printf(
      "soak: %lld s, %d cycles (%d snapshots, %d branches, %d restores), %zu writes acknowledged, "
      "%ld write errors (restores' 57P01), %ld reconnecting reads; argond fds %d before, %d max, "
      "%d after; "
      "RSS %ld kB before, %ld kB max, %ld kB after\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(ran).count()), cycles,
      cycles, branches, restores, acks.size(), write_errors.load(), reads.load(), fds_start,
      fds_max, fds_end, rss_start, rss_max, rss_end);
  ASSERT_GE(cycles, kMinCycles) << "too few cycles to judge flatness";
  // Flat: with the clients gone, back to the descriptors of the start.
  if (fds_end > fds_start + kAdminPool) {
    std::string held;
    std::error_code ec;
    for (const auto& e :
         std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", a.pid()), ec)) {
      held += std::filesystem::read_symlink(e.path(), ec).string() + " ";
    }
    ADD_FAILURE() << "argond's descriptors grew from " << fds_start << " to " << fds_end << ": "
                  << held;
  }
  if (rss_bounds_apply()) {
    EXPECT_LE(rss_end, rss_start + 32 * 1024) << "argond's memory grew (kB)";
  }
}

}  // namespace
}  // namespace argon::testing
