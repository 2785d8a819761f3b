// The subcommands of the `kiln` command, one add_<name>_command per line of
// tools/commands.def. Each adds a CLI11 subcommand whose callback does the
// work and throws kiln::Error for user mistakes; tools/kiln.cpp reports them.
#pragma once

namespace CLI {
class App;
} // namespace CLI

namespace kiln {

#define KILN_COMMAND(name) void add_##name##_command(CLI::App &app);
#include "tools/commands.def"
#undef KILN_COMMAND

} // namespace kiln
