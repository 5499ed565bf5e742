// Time for the whole system: a replaceable Clock (tests and expiry use it) and RFC 3339 formatting.
// Timestamps travel as seconds since the epoch (int64) inside argond and as RFC 3339 strings on the
// wire and in the catalog ("2024-05-01T10:00:00Z").
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace argon {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t now_ms() const = 0;
  int64_t now_s() const { return now_ms() / 1000; }
};

class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override;
};

// "2024-05-01T10:00:00Z" (seconds precision, UTC).
std::string format_time(int64_t epoch_seconds);
// "2024-05-01T10:00:00.123456Z" (microseconds since the epoch, UTC); parse_time_us reads it back.
std::string format_time_us(int64_t epoch_us);
// Accepts RFC 3339 with optional fractional seconds and a Z or ±HH:MM offset. Returns seconds
// (the fraction dropped), or microseconds (the fraction kept to six digits).
std::optional<int64_t> parse_time(std::string_view text);
std::optional<int64_t> parse_time_us(std::string_view text);
// A written time names an interval as long as its last digit: "…:25.123Z" is the millisecond
// 25.123000-25.123999, "…:25Z" the whole second. `unit_us` is that length (1 from six digits on).
struct TimeSpan {
  int64_t first_us = 0;
  int64_t unit_us = 1;
  int64_t last_us() const { return first_us + unit_us - 1; }
};
std::optional<TimeSpan> parse_time_span(std::string_view text);

}  // namespace argon
