// The engine's actions one at a time, against a real catalog (SQLite in a temporary directory) and
// real Storage on small trees of files standing in for data directories, with the computes faked:
// what each action leaves in the catalog and on disk, when it succeeds, when what it was for is
// gone, when a step fails, and when it runs a second time (as after a crash). No PostgreSQL runs,
// so each test takes milliseconds; tests/integration covers the paths that need a running compute.
#include "ops/actions/actions.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "catalog/sqlite_catalog.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "common/process_runner.h"
#include "compute/computes.h"
#include "ops/action.h"
#include "ops/action_env.h"
#include "ops/planner.h"
#include "ops/snapshot_checks.h"
#include "ops/wake_coordinator.h"
#include "storage/clone_driver.h"
#include "storage/manifest.h"
#include "storage/storage.h"

namespace argon::ops {
namespace {

namespace fs = std::filesystem;
using catalog::Tx;

class ManualClock final : public Clock {
 public:
  int64_t now_ms() const override { return now; }
  int64_t now = 1'700'000'000'000;
};

// Computes that run nothing: start records the spec (and can be told to fail; a running one is
// left as is, as ComputeManager does), stop forgets it.
class FakeComputes final : public compute::Computes {
 public:
  void set_crash_callback(CrashCallback) override {}
  Status start(const compute::ComputeSpec& spec, std::chrono::milliseconds) override {
    if (specs.contains(spec.id)) return {};
    ++starts;
    if (start_error) return fail(ErrorCode::kInternal, *start_error);
    specs[spec.id] = spec;
    events.push_back("start " + spec.id);
    return {};
  }
  // As PostgreSQL leaves a capture it recovered: shut down, the checkpoint in the second segment.
  Result<ControlData> settle(const compute::ComputeSpec& spec, std::chrono::milliseconds) override {
    events.push_back("settle " + spec.pgdata.parent_path().filename().string());
    ControlData c;
    c.shut_down = true;
    c.checkpoint_lsn = c.redo_lsn = 0x2000060;
    return c;
  }
  Status stop(std::string_view id, std::chrono::milliseconds, StopMode mode) override {
    if (specs.erase(std::string(id)))
      events.push_back((mode == StopMode::kImmediate ? "stop now " : "stop ") + std::string(id));
    return {};
  }
  void stop_all(std::chrono::milliseconds) override { specs.clear(); }
  bool running(std::string_view id) const override { return specs.contains(std::string(id)); }
  std::optional<fs::path> socket_dir(std::string_view id) const override {
    auto it = specs.find(std::string(id));
    if (it == specs.end()) return std::nullopt;
    return it->second.run_dir;
  }
  Status rekey(std::string_view from, std::string_view to) override {
    auto it = specs.find(std::string(from));
    if (it == specs.end() || specs.contains(std::string(to)))
      return fail(ErrorCode::kConflict, "cannot rekey");
    compute::ComputeSpec spec = it->second;
    specs.erase(it);
    specs[std::string(to)] = spec;
    events.push_back("rekey " + std::string(from) + " " + std::string(to));
    return {};
  }
  Status relink(std::string_view id, const fs::path& pgdata) override {
    events.push_back("relink " + std::string(id) + " " + pgdata.filename().string());
    return {};
  }
  std::string admin_conninfo(std::string_view, std::string_view) const override {
    return "host=/nonexistent port=1 connect_timeout=1";
  }
  Status check_settings(const PgInstall&, const std::vector<std::pair<std::string, std::string>>&,
                        const fs::path&) override {
    return {};
  }

  std::map<std::string, compute::ComputeSpec> specs;
  std::optional<std::string> start_error;
  int starts = 0;
  std::vector<std::string> events;  // shared with FakeControl: what happened, in order
};

// The proxy's side, recording what the engine asked of it in the computes' event list, together
// with the branch each endpoint was bound to in the catalog at that moment.
class FakeControl final : public compute::ConnectionControl {
 public:
  FakeControl(std::vector<std::string>& events, catalog::Catalog& catalog)
      : events_(events), catalog_(catalog) {}
  void gate(const std::string& id) override { events_.push_back("gate " + id); }
  void ungate(const std::string& id) override { events_.push_back("ungate " + id); }
  void set_held(const std::set<std::string>& ids) override {
    std::string e = "held";
    for (const auto& id : ids) e += " " + id;
    events_.push_back(e);
  }
  void terminate(const std::string& id, const std::string& reason) override {
    auto ep = catalog_.read([&](Tx& tx) -> Result<std::optional<catalog::Endpoint>> {
      return tx.get_endpoint("quiet-lake-12345678", id, true);
    });
    events_.push_back("terminate " + id + " bound to " +
                      (ep && *ep ? (*ep)->branch_id : std::string("?")));
    reasons.push_back(reason);
  }
  void prepare(const fs::path& socket_dir, const std::vector<std::string>&) override {
    events_.push_back("prepare " + socket_dir.filename().string());
  }
  std::map<std::string, compute::EndpointActivity> activity() const override { return {}; }

  std::vector<std::string> reasons;

 private:
  std::vector<std::string>& events_;
  catalog::Catalog& catalog_;
};

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "argon-actions-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    // Sealed snapshots are read-only.
    for (auto it = fs::recursive_directory_iterator(path_, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

class ActionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cat = catalog::SqliteCatalog::open(dir_.path() / "catalog.db");
    ASSERT_TRUE(cat) << cat.error().message;
    catalog_ = std::move(*cat);
    storage_ = std::make_unique<storage::Storage>(
        storage::StorageOptions{dir_.path() / "data", current_user(), false},
        std::make_unique<storage::CopyCloneDriver>(), runner_);
    ASSERT_TRUE(storage_->prepare_layout());
    env_ = std::make_unique<ActionEnv>(
        ActionEnv{*catalog_, *storage_, computes_, pg_, clock_, EngineOptions{}, nullptr});
    actions_ = make_actions(*env_);

    catalog::Project p;
    p.id = "quiet-lake-12345678";
    p.name = "p";
    ASSERT_TRUE(catalog_->run([&](Tx& tx) { return tx.put_project(p); }));
    ASSERT_TRUE(add_branch("br-main-00000001", std::nullopt, catalog::branch_state::kReady));
    // A stand-in for a data directory: what Storage copies, checks and seals.
    write(storage_->branch_pgdata("br-main-00000001") / "PG_VERSION", "15\n");
    write(storage_->branch_pgdata("br-main-00000001") / "base" / "1" / "1259", "main's rows");
    write(storage_->branch_pgdata("br-main-00000001") / "postmaster.pid", "4242\n");
    for (const char* seg :
         {"000000010000000000000001", "000000010000000000000002", "000000010000000000000003"})
      write(storage_->branch_pgdata("br-main-00000001") / "pg_wal" / seg, "wal");
    catalog::Endpoint ep;
    ep.id = "ep-main-00000001";
    ep.project_id = kProject;
    ep.branch_id = "br-main-00000001";
    ep.current_state = catalog::endpoint_state::kIdle;
    ASSERT_TRUE(catalog_->run([&](Tx& tx) { return tx.put_endpoint(ep); }));
  }

  Status add_branch(const std::string& id, std::optional<std::string> parent,
                    std::string_view state = catalog::branch_state::kInit) {
    catalog::Branch b;
    b.id = id;
    b.project_id = kProject;
    b.name = id;
    b.parent_id = std::move(parent);
    b.current_state = std::string(state);
    return catalog_->run([&](Tx& tx) { return tx.put_branch(b); });
  }

  // A snapshot row of main, as the API writes it before its create_snapshot runs.
  catalog::Snapshot add_snapshot(const std::string& id) {
    catalog::Snapshot s;
    s.id = id;
    s.project_id = kProject;
    s.name = "before";
    s.source_branch_id = "br-main-00000001";
    EXPECT_TRUE(catalog_->run([&](Tx& tx) { return tx.put_snapshot(s); }));
    return s;
  }

  // Runs the action for `params` as the scheduler would: an operation row, then the action.
  Result<Outcome> run(const ActionParams& params, std::optional<std::string> branch_id,
                      std::optional<std::string> endpoint_id = std::nullopt) {
    catalog::Operation op;
    op.id = "op-" + std::to_string(++ops_);
    op.project_id = kProject;
    op.branch_id = std::move(branch_id);
    op.endpoint_id = std::move(endpoint_id);
    op.kind = std::string(to_string(kind_of(params)));
    op.action = std::string(neon_action(kind_of(params)));
    op.params_json = boost::json::serialize(to_json(params));
    if (auto st = catalog_->run([&](Tx& tx) { return tx.put_operation(op); }); !st)
      return std::unexpected(st.error());
    return actions_.at(kind_of(params))->run(op, params);
  }

  std::optional<catalog::Branch> branch(const std::string& id) {
    auto r = catalog_->read([&](Tx& tx) -> Result<std::optional<catalog::Branch>> {
      return tx.get_branch(kProject, id, true);
    });
    return r ? *r : std::nullopt;
  }
  std::optional<catalog::Endpoint> endpoint(const std::string& id) {
    auto r = catalog_->read([&](Tx& tx) -> Result<std::optional<catalog::Endpoint>> {
      return tx.get_endpoint(kProject, id, true);
    });
    return r ? *r : std::nullopt;
  }
  std::optional<catalog::Snapshot> snapshot(const std::string& id) {
    auto r = catalog_->read([&](Tx& tx) -> Result<std::optional<catalog::Snapshot>> {
      return tx.get_snapshot(kProject, id, true);
    });
    return r ? *r : std::nullopt;
  }

  static constexpr const char* kProject = "quiet-lake-12345678";
  TempDir dir_;
  PosixProcessRunner runner_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<storage::Storage> storage_;
  FakeComputes computes_;
  PgInstalls pg_{{PgInstall{15, "15.0", "/nonexistent/bin"}}};
  ManualClock clock_;
  std::unique_ptr<ActionEnv> env_;
  std::map<ActionKind, std::unique_ptr<Action>> actions_;
  int ops_ = 0;
};

TEST_F(ActionsTest, ABranchOfAStoppedParentIsACopyOfItsFiles) {
  ASSERT_TRUE(add_branch("br-kid-00000001", "br-main-00000001"));
  const params::CreateBranch p{params::CreateBranch::Source::kParent, "br-main-00000001"};
  auto r = run(p, "br-kid-00000001");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, Outcome::kDone);
  const fs::path kid = storage_->branch_pgdata("br-kid-00000001");
  EXPECT_EQ(read(kid / "base" / "1" / "1259"), "main's rows");
  EXPECT_FALSE(fs::exists(kid / "postmaster.pid")) << "a stopped parent's pid file is not copied";
  EXPECT_EQ(branch("br-kid-00000001")->current_state, catalog::branch_state::kReady);
  EXPECT_EQ(computes_.starts, 0) << "a branch is created without starting anything";

  // Run again, as after a crash between the copy and the operation's end: the same result, and
  // the copy is not made twice over a changed parent.
  write(storage_->branch_pgdata("br-main-00000001") / "base" / "1" / "1259", "changed later");
  auto again = run(p, "br-kid-00000001");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(read(kid / "base" / "1" / "1259"), "main's rows");
}

TEST_F(ActionsTest, ABranchWhoseParentWentIsRemovedWithItsEndpoints) {
  ASSERT_TRUE(add_branch("br-kid-00000001", "br-gone-00000001"));
  catalog::Endpoint ep;
  ep.id = "ep-kid-00000001";
  ep.project_id = kProject;
  ep.branch_id = "br-kid-00000001";
  ASSERT_TRUE(catalog_->run([&](Tx& tx) { return tx.put_endpoint(ep); }));
  auto r = run(params::CreateBranch{params::CreateBranch::Source::kParent, "br-gone-00000001"},
               "br-kid-00000001");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_FALSE(branch("br-kid-00000001"));
  EXPECT_FALSE(endpoint("ep-kid-00000001"));
  EXPECT_FALSE(fs::exists(storage_->branch_dir("br-kid-00000001")));
}

TEST_F(ActionsTest, AnOperationOnADeletedBranchIsSkipped) {
  ASSERT_TRUE(add_branch("br-kid-00000001", "br-main-00000001"));
  ASSERT_TRUE(catalog_->run([&](Tx& tx) {
    auto b = tx.get_branch(kProject, "br-kid-00000001");
    b->deleted = true;
    return tx.put_branch(*b);
  }));
  auto r = run(params::CreateBranch{params::CreateBranch::Source::kParent, "br-main-00000001"},
               "br-kid-00000001");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, Outcome::kSkipped);
  EXPECT_FALSE(fs::exists(storage_->branch_dir("br-kid-00000001")));
}

TEST_F(ActionsTest, StartAndSuspendMoveTheEndpointBetweenActiveAndIdle) {
  ASSERT_TRUE(catalog_->run([&](Tx& tx) {
    auto e = tx.get_endpoint(kProject, "ep-main-00000001");
    e->settings_json = R"({"pg_settings":{"work_mem":"8MB"}})";
    return tx.put_endpoint(*e);
  }));
  auto started = run(params::StartCompute{}, std::nullopt, "ep-main-00000001");
  ASSERT_TRUE(started) << started.error().message;
  ASSERT_TRUE(computes_.running("br-main-00000001"));
  const auto& spec = computes_.specs.at("br-main-00000001");
  EXPECT_EQ(spec.pgdata, storage_->branch_pgdata("br-main-00000001"));
  EXPECT_EQ(spec.settings, (std::vector<std::pair<std::string, std::string>>{
                               {"work_mem", "8MB"},
                               {"archive_mode", "on"},
                               {"archive_library", "basic_archive"},
                               {"basic_archive.archive_directory", "../wal"}}))
      << "the endpoint's pg_settings reach the compute, and it archives into the branch's history "
         "(the project's history_retention_seconds is Neon's default, a day)";
  EXPECT_TRUE(std::filesystem::is_directory(storage_->branch_dir("br-main-00000001") / "wal"));
  EXPECT_EQ(endpoint("ep-main-00000001")->current_state, catalog::endpoint_state::kActive);
  EXPECT_EQ(endpoint("ep-main-00000001")->started_at, clock_.now);

  clock_.now += 1000;
  auto suspended =
      run(params::SuspendCompute{"br-main-00000001", false}, std::nullopt, "ep-main-00000001");
  ASSERT_TRUE(suspended) << suspended.error().message;
  EXPECT_FALSE(computes_.running("br-main-00000001"));
  EXPECT_EQ(endpoint("ep-main-00000001")->current_state, catalog::endpoint_state::kIdle);
  EXPECT_EQ(endpoint("ep-main-00000001")->suspended_at, clock_.now);

  // The suspend of a deleted endpoint removes its row once the compute is down.
  ASSERT_TRUE(
      run(params::SuspendCompute{"br-main-00000001", true}, std::nullopt, "ep-main-00000001"));
  EXPECT_FALSE(endpoint("ep-main-00000001"));
}

// The proxy's fast path: a serving endpoint's compute is known from memory until anything in the
// catalog changes or the compute stops; then the next wake reads the catalog again.
TEST_F(ActionsTest, AServingEndpointIsKnownFromMemoryUntilTheCatalogOrItsComputeChanges) {
  Planner planner(clock_);
  int notified = 0;
  WakeCoordinator wakes(*env_, planner, [&] { ++notified; });
  EXPECT_FALSE(wakes.serving_now("ep-main-00000001")) << "never asked";
  ASSERT_TRUE(run(params::StartCompute{}, std::nullopt, "ep-main-00000001"));
  auto woken = wakes.wake("ep-main-00000001");
  ASSERT_TRUE(woken && *woken) << (woken ? "not serving" : woken.error().message);
  auto known = wakes.serving_now("ep-main-00000001");
  ASSERT_TRUE(known);
  EXPECT_EQ(known->branch_id, "br-main-00000001");
  EXPECT_EQ(known->socket_dir, (*woken)->socket_dir);
  EXPECT_FALSE(wakes.serving_now("ep-other-00000001"));

  // A restore starts switching the endpoint: a catalog write, so the memory no longer answers,
  // and the catalog says to wait.
  ASSERT_TRUE(catalog_->run([&](Tx& tx) {
    auto e = tx.get_endpoint(kProject, "ep-main-00000001");
    e->switching_op = "op-restore";
    return tx.put_endpoint(*e);
  }));
  EXPECT_FALSE(wakes.serving_now("ep-main-00000001"));
  auto waiting = wakes.wake("ep-main-00000001");
  ASSERT_TRUE(waiting);
  EXPECT_FALSE(*waiting) << "a switching endpoint is not served";
  EXPECT_FALSE(wakes.serving_now("ep-main-00000001"));

  ASSERT_TRUE(catalog_->run([&](Tx& tx) {
    auto e = tx.get_endpoint(kProject, "ep-main-00000001");
    e->switching_op.reset();
    return tx.put_endpoint(*e);
  }));
  ASSERT_TRUE(wakes.wake("ep-main-00000001"));
  ASSERT_TRUE(wakes.serving_now("ep-main-00000001"));
  // The compute stopped (crashed) without a catalog write: not served from memory either.
  computes_.specs.clear();
  EXPECT_FALSE(wakes.serving_now("ep-main-00000001"));
  EXPECT_EQ(notified, 0);
}

TEST_F(ActionsTest, AStartThatFailsLeavesTheEndpointIdleAndSaysWhy) {
  computes_.start_error = "FATAL:  invalid value for parameter \"work_mem\"";
  auto r = run(params::StartCompute{}, std::nullopt, "ep-main-00000001");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("work_mem"), std::string::npos) << r.error().message;
  EXPECT_EQ(endpoint("ep-main-00000001")->current_state, catalog::endpoint_state::kIdle);

  // A disabled endpoint does not start at all.
  computes_.start_error.reset();
  ASSERT_TRUE(catalog_->run([&](Tx& tx) {
    auto e = tx.get_endpoint(kProject, "ep-main-00000001");
    e->disabled = true;
    return tx.put_endpoint(*e);
  }));
  const int before = computes_.starts;
  auto disabled = run(params::StartCompute{}, std::nullopt, "ep-main-00000001");
  ASSERT_FALSE(disabled);
  EXPECT_EQ(disabled.error().code, ErrorCode::kConflict);
  EXPECT_EQ(computes_.starts, before);
}

TEST_F(ActionsTest, ASnapshotIsSealedAndARestoreOfItIsAWritableCopy) {
  const catalog::Snapshot s = add_snapshot("snap-00000001");
  auto taken = run(params::CreateSnapshot{s.id, std::nullopt}, "br-main-00000001");
  ASSERT_TRUE(taken) << taken.error().message;
  EXPECT_EQ(snapshot(s.id)->state, catalog::snapshot_state::kReady);
  EXPECT_EQ(snapshot(s.id)->timestamp, clock_.now);
  EXPECT_TRUE(storage_->snapshot_sealed(s.id));
  EXPECT_FALSE(fs::exists(storage_->snapshot_manifest(s.id)))
      << "its checksums are written off the operation's path";
  const fs::path copy = storage_->snapshot_pgdata(s.id) / "base" / "1" / "1259";
  EXPECT_EQ(read(copy), "main's rows");
  EXPECT_EQ(fs::status(copy).permissions() & fs::perms::owner_write, fs::perms::none)
      << "a sealed snapshot is read-only";
  EXPECT_NE(std::find(computes_.events.begin(), computes_.events.end(), "settle " + s.id),
            computes_.events.end());
  std::set<std::string> wal;
  for (const auto& e : fs::directory_iterator(storage_->snapshot_pgdata(s.id) / "pg_wal"))
    wal.insert(e.path().filename().string());
  EXPECT_EQ(wal, std::set<std::string>{"000000010000000000000002"})
      << "the snapshot keeps the checkpoint's segment only";
  EXPECT_EQ(fs::file_size(storage_->snapshot_pgdata(s.id) / "pg_wal" / "000000010000000000000002"),
            3u)
      << "freeing a segment's unused pages keeps its size";

  // The branch changes after the snapshot; the restore brings back the state the snapshot holds.
  write(storage_->branch_pgdata("br-main-00000001") / "base" / "1" / "1259", "changed later");
  ASSERT_TRUE(add_branch("br-restored-00000001", std::nullopt));
  auto restored = run(params::RestoreBranch{s.id}, "br-restored-00000001");
  ASSERT_TRUE(restored) << restored.error().message;
  const fs::path data = storage_->branch_pgdata("br-restored-00000001") / "base" / "1" / "1259";
  EXPECT_EQ(read(data), "main's rows");
  EXPECT_NE(fs::status(data).permissions() & fs::perms::owner_write, fs::perms::none)
      << "a restored branch is writable";
  EXPECT_EQ(branch("br-restored-00000001")->current_state, catalog::branch_state::kReady);
}

std::set<std::string> wal_files(const fs::path& pgdata) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(pgdata / "pg_wal"))
    if (e.is_regular_file()) out.insert(e.path().filename().string());
  return out;
}

// Settling after the operation (--snapshot-settle after): the operation seals the capture as it
// is and finishes; a restore then gets the capture. The settling pass settles a copy and puts it
// in its place; only then does the checksum pass read it, and a restore gets the settled copy.
TEST_F(ActionsTest, ASnapshotSettledAfterItsOperationIsReplacedByItsSettledCopy) {
  env_->options.settle_after_snapshot = true;
  const catalog::Snapshot s = add_snapshot("snap-00000001");
  ASSERT_TRUE(run(params::CreateSnapshot{s.id, std::nullopt}, "br-main-00000001"));
  EXPECT_EQ(snapshot(s.id)->state, catalog::snapshot_state::kReady);
  EXPECT_TRUE(storage_->snapshot_sealed(s.id));
  EXPECT_TRUE(storage_->awaiting_settle(s.id));
  EXPECT_EQ(std::find(computes_.events.begin(), computes_.events.end(), "settle " + s.id),
            computes_.events.end())
      << "not settled by its operation";
  const auto captured_wal = wal_files(storage_->snapshot_pgdata(s.id));
  EXPECT_GT(captured_wal.size(), 1u);

  ASSERT_TRUE(add_branch("br-early-00000001", std::nullopt));
  ASSERT_TRUE(run(params::RestoreBranch{s.id}, "br-early-00000001"));
  EXPECT_EQ(read(storage_->branch_pgdata("br-early-00000001") / "base" / "1" / "1259"),
            "main's rows");
  EXPECT_EQ(wal_files(storage_->branch_pgdata("br-early-00000001")), captured_wal)
      << "the capture's WAL, for its compute to replay";

  SnapshotChecks checks(*storage_, clock_, std::chrono::seconds(0), *env_->foreground,
                        [&](const std::string& id) { return settle_snapshot_beside(*env_, id); });
  checks.pass();
  EXPECT_FALSE(fs::exists(storage_->snapshot_manifest(s.id))) << "the settled copy gets them";
  checks.settle_pass();
  EXPECT_NE(
      std::find(computes_.events.begin(), computes_.events.end(), "settle .tmp-settle-" + s.id),
      computes_.events.end())
      << "settled beside the capture";
  EXPECT_FALSE(storage_->awaiting_settle(s.id));
  EXPECT_TRUE(storage_->settled(s.id));
  EXPECT_TRUE(storage_->snapshot_sealed(s.id));
  EXPECT_EQ(wal_files(storage_->snapshot_pgdata(s.id)),
            std::set<std::string>{"000000010000000000000002"});
  EXPECT_FALSE(fs::exists(storage_->snapshot_dir(s.id).parent_path() / (".tmp-settle-" + s.id)));
  const fs::path copy = storage_->snapshot_pgdata(s.id) / "base" / "1" / "1259";
  EXPECT_EQ(fs::status(copy).permissions() & fs::perms::owner_write, fs::perms::none);
  checks.pass();
  EXPECT_TRUE(fs::exists(storage_->snapshot_manifest(s.id)));
  EXPECT_FALSE(storage_->snapshot_damaged(s.id));

  ASSERT_TRUE(add_branch("br-late-00000001", std::nullopt));
  ASSERT_TRUE(run(params::RestoreBranch{s.id}, "br-late-00000001"));
  EXPECT_EQ(read(storage_->branch_pgdata("br-late-00000001") / "base" / "1" / "1259"),
            "main's rows");
}

// A restore of a snapshot whose settling is under way waits for it and gets the settled copy,
// rather than replaying the capture's WAL beside the settling.
TEST_F(ActionsTest, ARestoreWaitsForTheSettlingUnderWay) {
  env_->options.settle_after_snapshot = true;
  const catalog::Snapshot s = add_snapshot("snap-00000001");
  ASSERT_TRUE(run(params::CreateSnapshot{s.id, std::nullopt}, "br-main-00000001"));
  std::promise<void> in_settle;
  auto started = in_settle.get_future();
  std::thread settler([&] {
    auto r = storage_->settle_beside(s.id, [&](const fs::path&) -> Result<ControlData> {
      in_settle.set_value();
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      ControlData c;
      c.shut_down = true;
      c.checkpoint_lsn = c.redo_lsn = 0x2000060;
      return c;
    });
    EXPECT_TRUE(r && *r);
  });
  started.wait();
  ASSERT_TRUE(add_branch("br-restored-00000001", std::nullopt));
  auto restored = run(params::RestoreBranch{s.id}, "br-restored-00000001");
  settler.join();
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ(wal_files(storage_->branch_pgdata("br-restored-00000001")),
            std::set<std::string>{"000000010000000000000002"})
      << "the settled copy";
}

// A settling that fails leaves the capture as it was (restorable, and its checksums then written)
// with nothing beside it; one whose snapshot is deleted meanwhile leaves nothing at all.
TEST_F(ActionsTest, ASettlingThatFailsOrOutlivesItsSnapshotLeavesNothingBehind) {
  env_->options.settle_after_snapshot = true;
  const catalog::Snapshot s = add_snapshot("snap-00000001");
  ASSERT_TRUE(run(params::CreateSnapshot{s.id, std::nullopt}, "br-main-00000001"));
  const fs::path beside = storage_->snapshot_dir(s.id).parent_path() / (".tmp-settle-" + s.id);
  SnapshotChecks checks(*storage_, clock_, std::chrono::seconds(0), *env_->foreground,
                        [&](const std::string& id) -> Result<bool> {
                          return storage_->settle_beside(
                              id, [](const fs::path&) -> Result<ControlData> {
                                return fail(ErrorCode::kInternal, "recovery failed");
                              });
                        });
  checks.settle_pass();
  EXPECT_TRUE(storage_->awaiting_settle(s.id));
  EXPECT_FALSE(fs::exists(beside));
  EXPECT_EQ(read(storage_->snapshot_pgdata(s.id) / "base" / "1" / "1259"), "main's rows");
  checks.pass();
  EXPECT_TRUE(fs::exists(storage_->snapshot_manifest(s.id))) << "the capture gets checksums";
  ASSERT_TRUE(add_branch("br-restored-00000001", std::nullopt));
  ASSERT_TRUE(run(params::RestoreBranch{s.id}, "br-restored-00000001"));

  auto gone = storage_->settle_beside(s.id, [&](const fs::path&) -> Result<ControlData> {
    EXPECT_TRUE(storage_->remove_snapshot(s.id));
    ControlData c;
    c.shut_down = true;
    c.checkpoint_lsn = c.redo_lsn = 0x2000060;
    return c;
  });
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_FALSE(*gone);
  EXPECT_FALSE(fs::exists(storage_->snapshot_dir(s.id)));
  EXPECT_FALSE(fs::exists(beside));
}

// The checksum pass reads nothing while an operation runs (here one that never ends by itself:
// no give-up within the test), and writes the checksums once it ended.
TEST_F(ActionsTest, TheChecksumPassWaitsForTheRunningOperations) {
  const catalog::Snapshot s = add_snapshot("snap-00000001");
  ASSERT_TRUE(run(params::CreateSnapshot{s.id, std::nullopt}, "br-main-00000001"));
  Foreground foreground(std::chrono::hours(1));
  SnapshotChecks checks(*storage_, clock_, std::chrono::seconds(0), foreground);
  std::optional<Foreground::Scope> op;
  op.emplace(foreground);
  std::atomic<bool> done{false};
  std::thread pass([&] {
    checks.pass();
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(done);
  EXPECT_FALSE(fs::exists(storage_->snapshot_manifest(s.id)));
  op.reset();
  pass.join();
  EXPECT_TRUE(fs::exists(storage_->snapshot_manifest(s.id)));
}

// The background checks (ops/snapshot_checks.h): the first pass writes a sealed snapshot's
// checksums; a snapshot changed before that pass is marked damaged instead; and a scrub finds
// what the stamps cannot see (other bytes under an unchanged stamp, as a failing medium returns).
// A restore refuses a damaged snapshot, naming the file, and leaves nothing.
TEST_F(ActionsTest, TheChecksumPassAndTheScrubRefuseADamagedSnapshot) {
  const catalog::Snapshot s = add_snapshot("snap-00000001");
  ASSERT_TRUE(run(params::CreateSnapshot{s.id, std::nullopt}, "br-main-00000001"));
  SnapshotChecks checks(*storage_, clock_, std::chrono::seconds(0), *env_->foreground);
  checks.pass();
  ASSERT_TRUE(fs::exists(storage_->snapshot_manifest(s.id)));
  ASSERT_TRUE(storage_->snapshot_checked_at(s.id));
  EXPECT_FALSE(storage_->snapshot_damaged(s.id));

  // Decay: same size, other bytes, and a stamp that does not show it.
  const fs::path copy = storage_->snapshot_pgdata(s.id) / "base" / "1" / "1259";
  fs::permissions(copy, fs::perms::owner_write, fs::perm_options::add);
  write(copy, "main's rowz");
  fs::permissions(copy, fs::perms::owner_write, fs::perm_options::remove);
  const fs::path stamps = storage_->snapshot_dir(s.id) / "stamps";
  fs::permissions(stamps, fs::perms::owner_write, fs::perm_options::add);
  fs::remove(stamps);
  ASSERT_TRUE(storage::write_stamps(storage_->snapshot_pgdata(s.id), stamps));
  ASSERT_TRUE(add_branch("br-restored-00000001", std::nullopt));
  ASSERT_TRUE(run(params::RestoreBranch{s.id}, "br-restored-00000001"))
      << "an unchanged stamp is trusted at restore time";
  ASSERT_TRUE(storage_->scrub_snapshot(s.id, clock_.now));
  EXPECT_TRUE(storage_->snapshot_damaged(s.id));
  ASSERT_TRUE(add_branch("br-restored-00000002", std::nullopt));
  auto restored = run(params::RestoreBranch{s.id}, "br-restored-00000002");
  ASSERT_FALSE(restored);
  EXPECT_NE(restored.error().message.find("base/1/1259 does not match its checksum"),
            std::string::npos)
      << restored.error().message;
  EXPECT_FALSE(fs::exists(storage_->branch_dir("br-restored-00000002")));

  // Changed after sealing, before the checksum pass: no manifest, marked damaged.
  const catalog::Snapshot t = add_snapshot("snap-00000002");
  ASSERT_TRUE(run(params::CreateSnapshot{t.id, std::nullopt}, "br-main-00000001"));
  const fs::path version = storage_->snapshot_pgdata(t.id) / "PG_VERSION";
  fs::permissions(version, fs::perms::owner_write, fs::perm_options::add);
  write(version, "16\n");
  checks.pass();
  EXPECT_FALSE(fs::exists(storage_->snapshot_manifest(t.id)));
  EXPECT_TRUE(storage_->snapshot_damaged(t.id));
  ASSERT_TRUE(add_branch("br-restored-00000003", std::nullopt));
  restored = run(params::RestoreBranch{t.id}, "br-restored-00000003");
  ASSERT_FALSE(restored);
  EXPECT_NE(restored.error().message.find("PG_VERSION was changed after it was taken"),
            std::string::npos)
      << restored.error().message;
}

TEST_F(ActionsTest, ADamagedSnapshotIsRefusedAndTheRestoreLeavesNothing) {
  const catalog::Snapshot s = add_snapshot("snap-00000001");
  ASSERT_TRUE(run(params::CreateSnapshot{s.id, std::nullopt}, "br-main-00000001"));
  const fs::path copy = storage_->snapshot_pgdata(s.id) / "base" / "1" / "1259";
  fs::permissions(copy, fs::perms::owner_write, fs::perm_options::add);
  write(copy, "main's rowz");  // same size, one byte flipped

  ASSERT_TRUE(add_branch("br-restored-00000001", std::nullopt));
  auto restored = run(params::RestoreBranch{s.id}, "br-restored-00000001");
  ASSERT_FALSE(restored);
  EXPECT_EQ(restored.error().code, ErrorCode::kConflict) << restored.error().message;
  EXPECT_NE(restored.error().message.find("base/1/1259 was changed after it was taken"),
            std::string::npos)
      << "before its checksums exist, the stamps name the file: " << restored.error().message;
  EXPECT_FALSE(branch("br-restored-00000001"));
  EXPECT_FALSE(fs::exists(storage_->branch_dir("br-restored-00000001")));
}

// A finalized restore prepares everything while the target serves: the restored branch's compute
// runs before any client is held or disconnected; then hold, disconnect (still bound to the
// target), bind, release; the target's compute stops last, at once (no checkpoint to wait for).
TEST_F(ActionsTest, AFinalizedRestoreHoldsClientsOnlyOnceTheRestoredComputeRuns) {
  FakeControl control(computes_.events, *catalog_);
  env_->control = &control;
  const catalog::Snapshot s = add_snapshot("snap-00000001");
  ASSERT_TRUE(run(params::CreateSnapshot{s.id, std::nullopt}, "br-main-00000001"));
  ASSERT_TRUE(add_branch("br-restored-00000001", std::nullopt));
  ASSERT_TRUE(catalog_->run([&](Tx& tx) -> Status {
    auto b = tx.get_branch(kProject, "br-restored-00000001");
    b->restored_from = s.id;
    b->restore_target = "br-main-00000001";
    b->restore_status = "restored";
    return tx.put_branch(*b);
  }));
  ASSERT_TRUE(run(params::RestoreBranch{s.id}, "br-restored-00000001"));
  ASSERT_TRUE(run(params::StartCompute{}, std::nullopt, "ep-main-00000001"));
  computes_.events.clear();

  auto r = run(params::FinalizeRestore{"br-main-00000001"}, "br-restored-00000001");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(computes_.events,
            (std::vector<std::string>{"start br-restored-00000001", "prepare br-restored-00000001",
                                      "held ep-main-00000001",
                                      "terminate ep-main-00000001 bound to br-main-00000001",
                                      "held", "stop now br-main-00000001"}));
  ASSERT_EQ(control.reasons.size(), 1u);
  EXPECT_NE(control.reasons[0].find("was restored from a snapshot"), std::string::npos);
  EXPECT_EQ(endpoint("ep-main-00000001")->branch_id, "br-restored-00000001");
  EXPECT_FALSE(endpoint("ep-main-00000001")->switching_op);
  EXPECT_EQ(endpoint("ep-main-00000001")->current_state, catalog::endpoint_state::kActive);
  EXPECT_EQ(branch("br-restored-00000001")->name, "br-main-00000001");
  EXPECT_EQ(branch("br-main-00000001")->name, "br-main-00000001 (old)");

  // Again, as after a crash past the swap: only the target's compute is left to stop.
  computes_.events.clear();
  auto again = run(params::FinalizeRestore{"br-main-00000001"}, "br-restored-00000001");
  EXPECT_TRUE(again) << again.error().message;
  EXPECT_TRUE(computes_.events.empty());
  env_->control = nullptr;
}

// A reset from another branch prepares everything while the branch serves: a compute on the copy,
// started beside the branch's in its other socket directory, runs before any client is held; then
// hold, disconnect, stop the old compute at once (before its directory moves), exchange, point the
// copy's data link at its new place, rekey, release. The proxy's next wake reaches the copy's
// compute; a second reset alternates the socket directories back.
TEST_F(ActionsTest, AResetStartsTheCopysComputeBesideTheBranchsBeforeHoldingClients) {
  FakeControl control(computes_.events, *catalog_);
  env_->control = &control;
  Planner planner(clock_);
  WakeCoordinator wakes(*env_, planner, [] {});
  ASSERT_TRUE(add_branch("br-src-00000001", std::nullopt, catalog::branch_state::kReady));
  write(storage_->branch_pgdata("br-src-00000001") / "PG_VERSION", "15\n");
  write(storage_->branch_pgdata("br-src-00000001") / "base" / "1" / "1259", "source rows");
  ASSERT_TRUE(run(params::StartCompute{}, std::nullopt, "ep-main-00000001"));
  auto before = wakes.wake("ep-main-00000001");
  ASSERT_TRUE(before && *before);
  const fs::path home = storage_->run_dir("br-main-00000001");
  EXPECT_EQ((*before)->socket_dir, home);
  ASSERT_TRUE(wakes.serving_now("ep-main-00000001"));
  computes_.events.clear();

  auto r = run(params::ResetBranch{"br-src-00000001", std::nullopt}, "br-main-00000001");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(computes_.events,
            (std::vector<std::string>{
                "start .reset-br-main-00000001", "prepare br-main-00000001~",
                "gate ep-main-00000001", "terminate ep-main-00000001 bound to br-main-00000001",
                "stop now br-main-00000001", "relink .reset-br-main-00000001 pgdata",
                "rekey .reset-br-main-00000001 br-main-00000001", "ungate ep-main-00000001"}));
  ASSERT_EQ(control.reasons.size(), 1u);
  EXPECT_NE(control.reasons[0].find("was reset from branch br-src-00000001"), std::string::npos);
  EXPECT_EQ(read(storage_->branch_pgdata("br-main-00000001") / "base" / "1" / "1259"),
            "source rows");
  EXPECT_FALSE(fs::exists(storage_->reset_dir("br-main-00000001"))) << "the old data went";
  const compute::ComputeSpec& now = computes_.specs.at("br-main-00000001");
  EXPECT_EQ(now.run_dir, fs::path(home.string() + "~"));
  EXPECT_EQ(now.pgdata, storage_->reset_pgdata("br-main-00000001"))
      << "started on the copy, which the exchange moved into the branch's place";
  EXPECT_EQ(now.log_file, storage_->log_path("br-main-00000001")) << "one log per branch";
  // No catalog write, yet the memory no longer answers with the old compute's socket.
  EXPECT_FALSE(wakes.serving_now("ep-main-00000001"));
  auto after = wakes.wake("ep-main-00000001");
  ASSERT_TRUE(after && *after);
  EXPECT_EQ((*after)->socket_dir, now.run_dir);

  computes_.events.clear();
  ASSERT_TRUE(run(params::ResetBranch{"br-src-00000001", std::nullopt}, "br-main-00000001"));
  ASSERT_FALSE(computes_.events.empty());
  EXPECT_EQ(computes_.events.front(), "start .reset-br-main-00000001");
  EXPECT_EQ(computes_.specs.at("br-main-00000001").run_dir, home) << "the other directory again";
  env_->control = nullptr;
}

TEST_F(ActionsTest, DeletingABranchStopsItsComputeAndRemovesItsDataAndRows) {
  ASSERT_TRUE(run(params::StartCompute{}, std::nullopt, "ep-main-00000001"));
  ASSERT_TRUE(computes_.running("br-main-00000001"));
  auto r = run(params::DeleteBranch{}, "br-main-00000001");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(computes_.running("br-main-00000001"));
  EXPECT_FALSE(fs::exists(storage_->branch_dir("br-main-00000001")));
  EXPECT_FALSE(branch("br-main-00000001"));
  EXPECT_FALSE(endpoint("ep-main-00000001"));
  // Again, as after a crash once everything was gone: nothing left to do, and no error.
  auto again = run(params::DeleteBranch{}, "br-main-00000001");
  EXPECT_TRUE(again) << again.error().message;
}

}  // namespace
}  // namespace argon::ops
