#include "cli/app.h"

#include <cstdio>

#include <CLI/CLI.hpp>

namespace leakwatch::cli {

int run(int argc, char** argv) {
  CLI::App app{"leakwatch: find memory leaks in running processes with eBPF"};
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}

}  // namespace leakwatch::cli
