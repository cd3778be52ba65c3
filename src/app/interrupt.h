// SIGINT / SIGTERM (Ctrl-C, or mpirun passing on its own): every finished answer is already written line by line;
// the handler makes it durable (fsync of the output, async-signal-safe), says how to go on, and exits non-zero
// (128 + the signal) at once - mpirun follows its SIGTERM with SIGKILL within seconds, so there is no time for more.
#pragma once

namespace meshlm {

void install_interrupt_handlers();
// The output file the handler syncs (-1: none).
void set_interrupt_sync_fd(int fd);

}  // namespace meshlm
