// `argon`: the Neon-style CLI for Argon (and, through --api-host, for Neon itself).
#include <fmt/format.h>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"argon: branches, snapshots and restores over the Neon API v2"};
  app.set_version_flag("--version", "argon 0.1");
  argon::cli::Commands commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help, or the reason
    return rc == 0 ? 0 : argon::cli::kExitUsage;
  }
  auto st = commands.run();
  if (!st) {
    fmt::print(stderr, "argon: {}\n", st.error().message);
    return argon::cli::exit_code_for(st.error());
  }
  return argon::cli::kExitOk;
}
