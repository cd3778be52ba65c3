// --resume: what an earlier run of the same job already wrote, so that only the rest is generated and appended.
#pragma once
#include <set>
#include <string>

#include "app/prompt_file.h"

namespace meshlm {

// Keys of the complete lines in output_path ("id:<id or custom_id>" for answers, "line:<n>" for error records).
// A trailing partial line (a killed run) is cut off the file. A missing file has no lines. Throws Error naming a
// line that is not a meshlm output line.
std::set<std::string> completed_keys(const std::string& output_path);

// The request ids among those keys (error records have none).
std::set<std::string> completed_ids(const std::set<std::string>& keys);

// Removes the requests and error records whose keys are done, and renumbers the rest 0, 1, 2 ... in file order.
// Returns how many were already done.
size_t drop_completed(PromptFile& file, const std::set<std::string>& done);

}  // namespace meshlm
