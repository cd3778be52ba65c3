// Measuring the cluster for the planner (collective over every rank): each rank's read bandwidth and sgemm rate,
// measured by all ranks at once so that ranks on one host share it as they will when they run, and the links:
// ping-pong between rank 0 and the first rank of every other host, and between two ranks of one host.
#pragma once
#include <vector>

#include "app/planner.h"
#include "app/topology.h"

namespace meshlm {

struct LinkSample {
  double bytes = 0;
  double seconds = 0;  // one way (half the best round trip)
};

struct ClusterProbe {
  ClusterSpec cluster;
  std::vector<LinkSample> inter, intra;  // by message size, the slowest pair's (empty: no such pair)
  double seconds = 0;                    // the probe's own time
};

// quick: the form generate and bench use without --tp/--pp (well under a second on one host); otherwise the one
// `meshlm plan` prints (more sizes and repetitions, a larger bandwidth buffer).
ClusterProbe probe_cluster(const HostFacts& facts, bool quick);

}  // namespace meshlm
