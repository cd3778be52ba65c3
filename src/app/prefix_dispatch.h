// Which replica runs which request, so that requests sharing a prefix meet the prefix cache that holds it:
// requests are grouped by the deepest whole KV block their prompt shares with another request's prompt (a block
// that only one request has is no use to share). A replica is given its own groups' requests first, then the next
// group nobody has taken (in input order), and only when neither is left does it take from the back of another
// replica's largest group, so that no replica idles while another has a backlog.
#pragma once
#include <cstdint>
#include <deque>
#include <vector>

#include "runtime/request.h"

namespace meshlm {

// Each request's group key: the hash of the deepest whole KV block of its prompt (one it could reuse: the last
// prompt token is always computed) that another request's prompt also has; 0 when there is none.
std::vector<uint64_t> prefix_keys(const std::vector<Request>& requests);

class PrefixDispatch {
 public:
  PrefixDispatch(const std::vector<Request>& requests, int replicas);
  // Up to n more request indices for `replica`.
  std::vector<uint64_t> grant(int replica, size_t n);
  size_t left() const { return left_; }

 private:
  struct PrefixGroup {
    std::deque<size_t> items;  // request indices not yet handed out, in input order
    int owner = -1;            // the replica that took its first request
  };
  std::vector<PrefixGroup> groups_;         // in order of their first request
  std::vector<std::vector<size_t>> owned_;  // (replicas) the groups each replica owns that still have requests
  size_t next_group_ = 0;                   // groups before it all have owners
  size_t left_ = 0;
};

}  // namespace meshlm
