// Named points where the crash-safety tests kill argond. When the environment variable
// ARGON_CRASH_AT names a point, the process sends itself SIGKILL the first time it gets there:
// exactly what `kill -9` at that moment would do, but at a step chosen rather than by timing.
// "name#N" waits for the N-th time the point is reached.
// ARGON_DELAY_AT="name:MS" instead makes every pass through that point take MS milliseconds longer,
// so a test can hold an operation at a step (a long clone, say) without a large database.
// Unset (always, outside those tests), a crash point costs two comparisons.
#pragma once

#include <string_view>

namespace argon {

void crash_point(std::string_view name);

}  // namespace argon
