// Rank 0's progress report on stderr: a bar redrawn in place when stderr is a terminal, otherwise a log line every
// few seconds. Requests done of total, output tokens/s, and the time left at the current rate.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/timer.h"

namespace meshlm {

class Progress {
 public:
  Progress(size_t total, bool enabled);
  void update(size_t done, int64_t tokens);  // cheap when nothing is due
  void finish(size_t done, int64_t tokens);  // ends the bar's line

 private:
  void draw(size_t done, int64_t tokens);
  size_t total_;
  bool enabled_, tty_;
  Timer timer_;
  double last_ = 0;
};

}  // namespace meshlm
