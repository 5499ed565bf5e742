#include "common/clock.h"

#include <gtest/gtest.h>

namespace argon {
namespace {

TEST(ClockTest, FormatsUtcSeconds) {
  EXPECT_EQ(format_time(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_time(1669225345), "2022-11-23T17:42:25Z");
  EXPECT_EQ(format_time_us(1669225345'000'042), "2022-11-23T17:42:25.000042Z");
  EXPECT_EQ(parse_time_us(format_time_us(1669225345'123'456)), 1669225345'123'456);
}

TEST(ClockTest, ParsesWhatClientsSend) {
  EXPECT_EQ(parse_time("2022-11-23T17:42:25Z"), 1669225345);
  EXPECT_EQ(parse_time("2022-11-23T17:42:25.123Z"), 1669225345);  // JS toISOString()
  EXPECT_EQ(parse_time("2022-11-23T18:42:25+01:00"), 1669225345);
  EXPECT_EQ(parse_time("2030-01-01T00:00:00.000Z"), 1893456000);
}

TEST(ClockTest, KeepsTheFractionToTheMicrosecondWhenAsked) {
  EXPECT_EQ(parse_time_us("2022-11-23T17:42:25.123Z"), 1669225345123000);
  EXPECT_EQ(parse_time_us("2022-11-23T17:42:25.1234567Z"), 1669225345123456);  // beyond µs: dropped
  EXPECT_EQ(parse_time_us("2022-11-23T18:42:25.5+01:00"), 1669225345500000);
  EXPECT_EQ(parse_time("1969-12-31T23:59:59.5Z"), -1);  // whole seconds round down
}

TEST(ClockTest, AWrittenTimeNamesTheIntervalOfItsLastDigit) {
  auto ms = parse_time_span("2022-11-23T17:42:25.123Z");  // JavaScript's toISOString()
  ASSERT_TRUE(ms);
  EXPECT_EQ(ms->first_us, 1669225345123000);
  EXPECT_EQ(ms->last_us(), 1669225345123999);
  EXPECT_EQ(parse_time_span("2022-11-23T17:42:25Z")->last_us(), 1669225345999999);
  EXPECT_EQ(parse_time_span("2022-11-23T17:42:25.5+01:00")->unit_us, 100000);
  EXPECT_EQ(parse_time_span("2022-11-23T17:42:25.123456Z")->unit_us, 1);
  EXPECT_EQ(parse_time_span("2022-11-23T17:42:25.1234567Z")->unit_us, 1);
  EXPECT_FALSE(parse_time_span("2022-11-23T17:42:25.Z"));
}

TEST(ClockTest, RejectsMalformedTimes) {
  for (const char* bad :
       {"", "yesterday", "2022-11-23", "2022-13-01T00:00:00Z", "2022-11-23T17:42:25",
        "2022-11-23T17:42:25Zjunk", "2022-11-23T25:00:00Z", "2022-11-23T17:42:25.Z"}) {
    EXPECT_FALSE(parse_time(bad).has_value()) << bad;
  }
}

TEST(ClockTest, RoundTrips) {
  for (int64_t t : {0LL, 951782400LL, 1700000000LL, 4102444800LL}) {
    EXPECT_EQ(parse_time(format_time(t)), t);
  }
}

}  // namespace
}  // namespace argon
