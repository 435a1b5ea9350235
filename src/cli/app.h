// The command-line edge: parses the subcommand and its flags, wires the layers together
// and turns errors into one-line messages and exit codes.
#pragma once

namespace leakwatch::cli {

// Exit codes: 0 success, 1 runtime error, 2 usage error.
int run(int argc, char** argv);

}  // namespace leakwatch::cli
