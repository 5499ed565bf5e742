#include "common/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace argon {

void crash_point(std::string_view name) {
  static const std::string target = [] {
    const char* v = std::getenv("ARGON_CRASH_AT");
    return std::string(v ? v : "");
  }();
  if (!target.empty() && target == name) {
    static const char msg[] = "argond: ARGON_CRASH_AT reached; SIGKILL\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::kill(::getpid(), SIGKILL);
  }
}

}  // namespace argon
