#include "common/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

namespace argon {

namespace {

// An environment variable "name<sep>N": the point's name and the number after it (`number` when
// there is none).
struct Setting {
  std::string name;
  long number = 0;
};

Setting read_setting(const char* variable, char sep, long number) {
  const char* v = std::getenv(variable);
  Setting s{v ? v : "", number};
  if (auto at = s.name.find(sep); at != std::string::npos) {
    const std::string n = s.name.substr(at + 1);
    std::from_chars(n.data(), n.data() + n.size(), s.number);
    s.name.resize(at);
  }
  return s;
}

}  // namespace

void crash_point(std::string_view name) {
  static const Setting delay = read_setting("ARGON_DELAY_AT", ':', 0);  // "name:MS"
  if (!delay.name.empty() && delay.name == name && delay.number > 0) {
    // Tests wait for this line to know the work is being held.
    static const std::string msg = "argond: ARGON_DELAY_AT: holding " + delay.name + "\n";
    (void)!::write(2, msg.data(), msg.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(delay.number));
  }
  static const Setting target = read_setting("ARGON_CRASH_AT", '#', 1);  // "name#N": N-th time
  static std::atomic<long> hits{0};
  if (target.name.empty() || target.name != name) return;
  if (hits.fetch_add(1) + 1 < target.number) return;
  static const char msg[] = "argond: ARGON_CRASH_AT reached; SIGKILL\n";
  (void)!::write(2, msg, sizeof msg - 1);
  ::kill(::getpid(), SIGKILL);
}

}  // namespace argon
