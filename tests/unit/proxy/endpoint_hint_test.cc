#include "proxy/endpoint_hint.h"

#include <gtest/gtest.h>

namespace argon::proxy {
namespace {

TEST(EndpointHintTest, SniFirstLabelNamesTheEndpoint) {
  auto h = resolve_endpoint_hint("ep-cool-darkness-12345678.localhost", "");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->endpoint_id, "ep-cool-darkness-12345678");
  auto pooled = resolve_endpoint_hint("ep-cool-darkness-12345678-pooler.db.example.com", "");
  ASSERT_TRUE(pooled);
  EXPECT_EQ(pooled->endpoint_id, "ep-cool-darkness-12345678");
  // Host names that are not endpoint names say nothing.
  EXPECT_EQ(resolve_endpoint_hint("localhost", "")->endpoint_id, "");
  EXPECT_EQ(resolve_endpoint_hint("", "")->endpoint_id, "");
}

TEST(EndpointHintTest, OptionsNameTheEndpointAndTheRestIsKept) {
  auto h = resolve_endpoint_hint("", "endpoint=ep-a-b-1 -c search_path=app");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->endpoint_id, "ep-a-b-1");
  EXPECT_EQ(h->remaining_options, "-c search_path=app");
  auto dashed = resolve_endpoint_hint("", "-c statement_timeout=5s --endpoint=ep-a-b-1");
  ASSERT_TRUE(dashed);
  EXPECT_EQ(dashed->endpoint_id, "ep-a-b-1");
  EXPECT_EQ(dashed->remaining_options, "-c statement_timeout=5s");
  auto escaped = resolve_endpoint_hint("", R"(-c application_name=a\ b endpoint=ep-a-b-1)");
  ASSERT_TRUE(escaped);
  EXPECT_EQ(escaped->remaining_options, R"(-c application_name=a\ b)");
}

TEST(EndpointHintTest, AgreeingSourcesAreFineConflictingOnesAreNot) {
  EXPECT_TRUE(resolve_endpoint_hint("ep-a-b-1.localhost", "endpoint=ep-a-b-1"));
  auto conflict = resolve_endpoint_hint("ep-a-b-1.localhost", "endpoint=ep-c-d-2");
  ASSERT_FALSE(conflict);
  EXPECT_NE(conflict.error().message.find("ep-c-d-2"), std::string::npos);
  EXPECT_FALSE(resolve_endpoint_hint("", "endpoint=ep-a-b-1 endpoint=ep-c-d-2"));
}

TEST(EndpointHintTest, InvalidIdsAreRejected) {
  EXPECT_FALSE(resolve_endpoint_hint("", "endpoint=br-a-b-1"));
  EXPECT_FALSE(resolve_endpoint_hint("", "endpoint=ep-A-b-1"));
  EXPECT_FALSE(resolve_endpoint_hint("", "endpoint=ep-" + std::string(100, 'a')));
  EXPECT_FALSE(resolve_endpoint_hint("ep-bad_name.localhost", ""));
}

TEST(EndpointHintTest, PasswordForm) {
  auto semi = split_endpoint_password("endpoint=ep-a-b-1;s3cret;with;semis");
  ASSERT_TRUE(semi);
  EXPECT_EQ(semi->first, "ep-a-b-1");
  EXPECT_EQ(semi->second, "s3cret;with;semis");
  auto dollar = split_endpoint_password("endpoint=ep-a-b-1$pw");
  ASSERT_TRUE(dollar);
  EXPECT_EQ(dollar->second, "pw");
  auto plain = split_endpoint_password("just-a-password");
  ASSERT_FALSE(plain);
  EXPECT_NE(plain.error().message.find("options=endpoint%3D"), std::string::npos);
  EXPECT_FALSE(split_endpoint_password("endpoint=nope;pw"));
}

}  // namespace
}  // namespace argon::proxy
