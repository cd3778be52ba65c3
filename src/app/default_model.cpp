#include <unistd.h>

#include <filesystem>
#include <string>
#if defined(__APPLE__)
#include <mach-o/dyld.h>
#endif

#include "app/commands.h"

namespace meshlm {

namespace {
// The running binary's path (Linux: /proc/self/exe; macOS has no /proc). Empty with ec set when unknown.
std::filesystem::path executable_path(std::error_code& ec) {
#if defined(__APPLE__)
  uint32_t size = 0;
  _NSGetExecutablePath(nullptr, &size);
  std::string buf(size, '\0');
  if (_NSGetExecutablePath(buf.data(), &size) != 0) {
    ec = std::make_error_code(std::errc::no_such_file_or_directory);
    return {};
  }
  return std::filesystem::canonical(buf.c_str(), ec);
#else
  return std::filesystem::read_symlink("/proc/self/exe", ec);
#endif
}
}  // namespace

// The embedded model is looked for relative to the running binary, so that an installed meshlm (PREFIX/bin, the
// model in PREFIX/share/meshlm/models) and one run from a build directory inside the checkout both find it, and a
// moved checkout or install still does.
const char* default_model_dir() {
  static const std::string dir = [] {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path exe = executable_path(ec);
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
