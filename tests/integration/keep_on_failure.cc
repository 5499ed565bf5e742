// Integration tests keep a failed test's argond data dir (logs, pgdata) for inspection.
#include <gtest/gtest.h>

#include "harness.h"

namespace {
const bool registered = [] {
  argon::testing::keep_data_dir_if = [] { return ::testing::Test::HasFailure(); };
  return true;
}();
}  // namespace
