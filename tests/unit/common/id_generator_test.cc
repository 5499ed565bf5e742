#include "common/id_generator.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace argon {
namespace {

TEST(IdGeneratorTest, BranchIdsMatchTheShapeTheCliRequires) {
  RandomIdGenerator gen;
  const std::regex cli_branch("^br-[a-z0-9]+-[a-z0-9]+-[a-z0-9]+$");
  const std::regex endpoint("^ep-[a-z0-9]+-[a-z0-9]+-[0-9]+$");
  const std::regex project("^[a-z0-9]+-[a-z0-9]+-[0-9]+$");
  std::set<std::string> seen;
  for (int i = 0; i < 500; ++i) {
    auto br = gen.make("br");
    EXPECT_TRUE(std::regex_match(br, cli_branch)) << br;
    EXPECT_TRUE(looks_like_id(br, "br")) << br;
    EXPECT_TRUE(std::regex_match(gen.make("ep"), endpoint));
    EXPECT_TRUE(std::regex_match(gen.make(""), project));
    seen.insert(br);
  }
  EXPECT_GT(seen.size(), 495u);  // 48*48*9e7 space: collisions in 500 draws are vanishingly rare
}

TEST(IdGeneratorTest, LooksLikeIdRejectsNames) {
  EXPECT_FALSE(looks_like_id("main", "br"));
  EXPECT_FALSE(looks_like_id("br-main", "br"));
  EXPECT_FALSE(looks_like_id("br-a-b-c-d", "br"));
  EXPECT_FALSE(looks_like_id("br-A-b-1", "br"));
  EXPECT_FALSE(looks_like_id("ep-a-b-1", "br"));
  EXPECT_TRUE(looks_like_id("br-a-b-1", "br"));
  EXPECT_TRUE(looks_like_id("shiny-wind-028834", ""));
}

}  // namespace
}  // namespace argon
