#include "ops/params.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace argon::ops {
namespace {

namespace json = boost::json;

// Every kind's parameters survive the trip through the catalog's JSON unchanged.
TEST(ParamsTest, EveryKindRoundTripsThroughItsJson) {
  const std::vector<ActionParams> all = {
      params::CreateBranch{params::CreateBranch::Source::kTemplate},
      params::CreateBranch{params::CreateBranch::Source::kParent, std::nullopt},
      params::CreateBranch{params::CreateBranch::Source::kParent, "br-parent"},
      params::RestoreBranch{"snap-1"},
      params::FinalizeRestore{"br-target", std::nullopt},
      params::FinalizeRestore{"br-target", "main (before)"},
      params::ResetBranch{"br-source", "br-keep"},
      params::ResetBranch{"br-source", std::nullopt},
      params::CreateSnapshot{"snap-2", "0/16B3748"},
      params::CreateSnapshot{"snap-3", std::nullopt},
      params::DeleteSnapshot{"snap-4"},
      params::DeleteBranch{},
      params::StartCompute{},
      params::SuspendCompute{"br-a", true},
      params::SuspendCompute{"br-a", false},
      params::ApplyConfig{{{params::ChangeKind::kCreateRole, "alice", 0, {}},
                           {params::ChangeKind::kUpdateDatabase, {}, 7, "old"},
                           {params::ChangeKind::kDeleteDatabase, {}, 8, {}}}},
  };
  for (const auto& p : all) {
    const ActionKind kind = kind_of(p);
    const std::string text = json::serialize(to_json(p));
    ASSERT_EQ(parse_action_kind(to_string(kind)), kind) << text;
    auto back = parse_params(kind, text);
    ASSERT_TRUE(back) << text << ": " << back.error().detail;
    EXPECT_EQ(json::serialize(to_json(*back)), text);
    EXPECT_EQ(back->index(), p.index()) << text;
  }
}

// The API shows Neon's action names; several kinds share one.
TEST(ParamsTest, KindsKeepNeonsActionNames) {
  EXPECT_EQ(neon_action(ActionKind::kCreateSnapshot), "create_timeline");
  EXPECT_EQ(neon_action(ActionKind::kResetBranch), "create_timeline");
  EXPECT_EQ(neon_action(ActionKind::kFinalizeRestore), "swap_binding_id");
  EXPECT_EQ(neon_action(ActionKind::kDeleteSnapshot), "delete_timeline");
  EXPECT_EQ(neon_action(ActionKind::kStartCompute), "start_compute");
  EXPECT_FALSE(parse_action_kind("create_timeline"));  // a Neon name is not a kind
}

// A missing or mistyped key is an error that names it, never an empty value.
TEST(ParamsTest, MissingOrMistypedKeysAreErrorsNamingThem) {
  struct Case {
    ActionKind kind;
    std::string json;
    std::string names;
  };
  const Case cases[] = {
      {ActionKind::kFinalizeRestore, "{}", "'target_branch_id' must be a string"},
      {ActionKind::kFinalizeRestore, R"({"target_branch_id": 3})",
       "'target_branch_id' must be a string"},
      {ActionKind::kCreateBranch, R"({"source": "elsewhere"})", "'source' must be"},
      {ActionKind::kCreateSnapshot, R"({"snapshot_id": "s", "wal_end": 12})",
       "'wal_end' must be a string"},
      {ActionKind::kSuspendCompute, R"({"branch_id": "b", "delete_endpoint": "yes"})",
       "'delete_endpoint' must be"},
      {ActionKind::kApplyConfig, R"({"changes": {}})", "'changes' must be an array"},
      {ActionKind::kApplyConfig, R"({"changes": [{"kind": "create_role"}]})",
       "'name' must be a string"},
      {ActionKind::kApplyConfig, R"({"changes": [{"kind": "drop_everything", "name": "x"}]})",
       "'kind' must be"},
      {ActionKind::kApplyConfig, R"({"changes": [{"kind": "update_database", "id": 4}]})",
       "'old_name' must be"},
      {ActionKind::kDeleteSnapshot, "not json", "delete_snapshot"},
  };
  for (const auto& c : cases) {
    auto r = parse_params(c.kind, c.json);
    ASSERT_FALSE(r) << c.json;
    EXPECT_EQ(r.error().code, ErrorCode::kInternal);
    EXPECT_NE(r.error().detail.find(c.names), std::string::npos)
        << c.json << " -> " << r.error().detail;
  }
}

}  // namespace
}  // namespace argon::ops
