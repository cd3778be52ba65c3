// The bytes of a step on the wire: what the driver broadcasts to its tensor group, what one pipeline stage sends
// the next (with the residual stream), and the result the last stage returns to the driver. One message per step
// for the whole batch, never one per token.
#pragma once
#include <cstdint>
#include <vector>

#include "comm/group.h"
#include "model/step_batch.h"

namespace meshlm {

enum class StepKind : int32_t { kStep = 0, kStop = 1 };

struct StepHeader {
  StepKind kind = StepKind::kStep;
  int32_t micro_batch = 0;
  WireDType wire = WireDType::kF32;  // how the activations travel (bf16: rounded, half the bytes)
  int64_t n_activations = 0;  // values of residual stream that follow the batch (0 on the first stage)
};

// Serializes header + batch + activations (header.n_activations floats from x) into out.
void encode_step(const StepHeader& header, const StepBatch& batch, const float* x, std::vector<uint8_t>& out);
// Parses a message; the activations, if any, are copied to x (room for header.n_activations floats).
// Throws Error on a malformed message.
StepHeader decode_step(const std::vector<uint8_t>& in, StepBatch& batch, float* x, int64_t x_capacity);
StepHeader stop_message(std::vector<uint8_t>& out);

void encode_result(int32_t micro_batch, const StepResult& r, std::vector<uint8_t>& out);
int32_t decode_result(const std::vector<uint8_t>& in, StepResult& r);

}  // namespace meshlm
