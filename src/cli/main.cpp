#include "cli/app.h"

int main(int argc, char** argv) { return leakwatch::cli::run(argc, argv); }
