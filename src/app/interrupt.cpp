#include "app/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace meshlm {
namespace {
std::atomic<int> sync_fd{-1};

void on_signal(int sig) {
  const int fd = sync_fd.load();
  if (fd >= 0) ::fsync(fd);
  static const char msg[] = "meshlm: interrupted; the answers finished so far are in the output (run again with "
                            "--resume to complete it)\n";
  if (fd >= 0 && ::write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
  }
  ::_exit(128 + sig);
}
}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

void set_interrupt_sync_fd(int fd) { sync_fd.store(fd); }

}  // namespace meshlm
