#include "api/input.h"

#include <gtest/gtest.h>

namespace argon::api {
namespace {

TEST(InputTest, IntParamAcceptsOnlyDecimalsInRange) {
  EXPECT_EQ(parse_int_param(std::nullopt, "limit", 1, 10).value(), std::nullopt);
  EXPECT_EQ(parse_int_param("7", "limit", 1, 10).value(), 7);
  for (const char* bad : {"", "0", "11", "-1", "1e3", " 5", "abc", "99999999999999999999"}) {
    auto r = parse_int_param(bad, "limit", 1, 10);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kBadRequest);
    EXPECT_EQ(r.error().message, "limit: must be an integer between 1 and 10");
  }
}

TEST(InputTest, CursorRoundTripsOnlyWhatTheServerIssued) {
  EXPECT_EQ(parse_cursor(std::nullopt).value(), 0);
  EXPECT_EQ(parse_cursor("").value(), 0);
  EXPECT_EQ(parse_cursor("42").value(), 42);
  EXPECT_EQ(parse_cursor("o5", "o").value(), 5);
  for (const char* bad : {"o", "5", "ox", "zzz"}) EXPECT_FALSE(parse_cursor(bad, "o")) << bad;
  EXPECT_FALSE(parse_cursor("-3"));
}

TEST(InputTest, FieldsNameTheFullPath) {
  HttpRequest req;
  req.body = R"({"branch":{"name":7,"expires_at":null}})";
  auto body = parse_body(req);
  ASSERT_TRUE(body);
  auto branch = Fields(&*body, "").object("branch");
  ASSERT_TRUE(branch);
  auto name = branch->string("name", 1, 256);
  ASSERT_FALSE(name);
  EXPECT_EQ(name.error().message, "branch.name: must be a string");
  auto exp = branch->time_or_null("expires_at");
  ASSERT_TRUE(exp);
  ASSERT_TRUE(exp->has_value());
  EXPECT_FALSE(exp->value().has_value());  // explicit null clears
}

// The fuzzer found 4.44e26 converted to int64_t (undefined); every JSON number gets an answer.
TEST(InputTest, IntegerFieldsTakeWholeNumbersInRangeOfAnyJsonForm) {
  auto read = [](const std::string& number) {
    HttpRequest req;
    req.body = R"({"n":)" + number + "}";
    auto body = parse_body(req);
    EXPECT_TRUE(body) << number;
    return Fields(&*body, "").integer("n", -5, 100000);
  };
  for (const auto& [number, want] : std::vector<std::pair<std::string, int64_t>>{
           {"7", 7}, {"-5", -5}, {"5.0", 5}, {"1e3", 1000}, {"1E5", 100000}, {"-0.0", 0}}) {
    auto r = read(number);
    ASSERT_TRUE(r) << number << ": " << r.error().message;
    EXPECT_EQ(r->value(), want) << number;
  }
  for (const char* number : {"100001", "-6", "4.44e26", "-4.44e26", "9223372036854775808",
                             "18446744073709551615", "9.3e18", "-9.3e18", "1e308"}) {
    auto r = read(number);
    ASSERT_FALSE(r) << number;
    EXPECT_EQ(r.error().message, "n: must be between -5 and 100000") << number;
  }
  EXPECT_EQ(read("null").value(), std::nullopt);  // as if absent
  for (const char* number : {"2.5", "-0.1", "1e-3", "\"7\"", "true", "[1]"}) {
    auto r = read(number);
    ASSERT_FALSE(r) << number;
    EXPECT_EQ(r.error().message, "n: must be an integer") << number;
  }
}

TEST(InputTest, EmptyBodyIsAnEmptyObjectAndDeepNestingIsRefused) {
  HttpRequest empty;
  empty.headers["content-type"] = "application/x-www-form-urlencoded";  // what axios sends
  EXPECT_TRUE(parse_body(empty).value().empty());
  HttpRequest deep;
  deep.body = std::string(64, '[') + std::string(64, ']');
  EXPECT_FALSE(parse_body(deep));
}

}  // namespace
}  // namespace argon::api
