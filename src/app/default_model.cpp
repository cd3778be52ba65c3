#include "app/commands.h"

namespace meshlm {

// Set by CMake to the repository's models/stories260k.
const char* default_model_dir() { return MESHLM_DEFAULT_MODEL_DIR; }

}  // namespace meshlm
