#include <unistd.h>

#include <filesystem>
#include <string>

#include "app/commands.h"

namespace meshlm {

// The embedded model is looked for relative to the running binary, so that an installed meshlm (PREFIX/bin, the
// model in PREFIX/share/meshlm/models) and one run from a build directory inside the checkout both find it, and a
// moved checkout or install still does.
const char* default_model_dir() {
  static const std::string dir = [] {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    const fs::path bin = ec ? fs::current_path(ec) : exe.parent_path();
    const fs::path installed = bin.parent_path() / "share" / "meshlm" / "models" / "stories260k";
    fs::path at = bin;
    for (int up = 0; up < 4; ++up, at = at.parent_path())  // PREFIX/bin, build/, build/tests/, build/bench/...
      for (const fs::path& candidate :
           {at / "share" / "meshlm" / "models" / "stories260k", at / "models" / "stories260k"})
        if (fs::exists(candidate / "config.json", ec)) return candidate.lexically_normal().string();
    return installed.lexically_normal().string();  // not there: errors name where it should be
  }();
  return dir.c_str();
}

}  // namespace meshlm
