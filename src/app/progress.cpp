#include "app/progress.h"

#include <unistd.h>

#include <algorithm>

#include <cstdio>
#include <string>

namespace meshlm {

Progress::Progress(size_t total, bool enabled) : total_(total), enabled_(enabled), tty_(::isatty(2) != 0) {}

void Progress::update(size_t done, int64_t tokens) {
  if (!enabled_) return;
  const double now = timer_.seconds();
  if (now - last_ < (tty_ ? 0.2 : 5.0)) return;
  last_ = now;
  draw(done, tokens);
}

void Progress::finish(size_t done, int64_t tokens) {
  if (!enabled_ || !tty_) return;
  draw(done, tokens);
  std::fputc('\n', stderr);
}

void Progress::draw(size_t done, int64_t tokens) {
  const double t = timer_.seconds(), rate = done / std::max(t, 1e-9);
  const double eta = done > 0 && done < total_ ? (total_ - done) / rate : 0;
  const double frac = total_ ? double(done) / double(total_) : 1.0;
  if (tty_) {
    const int width = 30, filled = int(frac * width);
    std::fprintf(stderr, "\r[%s%s] %zu/%zu requests, %.1f output tok/s, ETA %.0f s   ",
                 std::string(size_t(filled), '#').c_str(), std::string(size_t(width - filled), ' ').c_str(), done,
                 total_, tokens / std::max(t, 1e-9), eta);
  } else {
    std::fprintf(stderr, "meshlm: progress: %zu/%zu requests (%.0f%%), %.1f output tok/s, %.0f s elapsed, ETA %.0f s\n",
                 done, total_, 100 * frac, tokens / std::max(t, 1e-9), t, eta);
  }
  std::fflush(stderr);
}

}  // namespace meshlm
