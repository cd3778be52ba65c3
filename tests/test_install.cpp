// Installing meshlm on a host: `cmake --install` puts the binary and the embedded model under a prefix, and the
// binary finds the model relative to itself, also after the prefix moves; cpack makes a .deb holding both, with
// the packages it needs as dependencies.
#include <gtest/gtest.h>

#include <filesystem>

#include "test_support.h"

namespace meshlm {
namespace {

namespace fs = std::filesystem;

std::string build_dir() { return fs::path(test::meshlm_binary()).parent_path().string(); }

TEST(Install, InstalledBinaryFindsItsModelAfterTheTreeMoves) {
  test::TempDir tmp;
  const auto installed = test::run_command({MESHLM_CMAKE, "--install", build_dir(), "--prefix", tmp.file("first")});
  ASSERT_EQ(installed.exit_code, 0) << installed.out << installed.err;
  fs::rename(tmp.file("first"), tmp.file("moved"));
  const std::string binary = tmp.file("moved") + "/bin/meshlm";
  ASSERT_TRUE(fs::exists(binary));
  ASSERT_TRUE(fs::exists(tmp.file("moved") + "/share/meshlm/models/stories260k/model.safetensors"));

  const auto info = test::run_command({binary, "info"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("model         " + tmp.file("moved") + "/share/meshlm/models/stories260k\n"),
            std::string::npos) << info.out;
  // The same answers as the build tree's binary, with no --model.
  test::write_file(tmp.file("p.jsonl"), "{\"id\": \"a\", \"prompt\": \"Once upon a time\", \"max_tokens\": 24}\n");
  const auto run = test::run_command({binary, "generate", "--prompts", tmp.file("p.jsonl"), "--output",
                                      tmp.file("installed.jsonl")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(test::run_meshlm({"generate", "--prompts", tmp.file("p.jsonl"), "--output", tmp.file("built.jsonl")})
                .exit_code, 0);
  EXPECT_EQ(test::answers_by_id(tmp.file("installed.jsonl")), test::answers_by_id(tmp.file("built.jsonl")));
}

TEST(Install, DebianPackageHoldsTheBinaryTheModelAndItsDependencies) {
  test::TempDir tmp;
  const auto packed = test::run_command({MESHLM_CPACK, "--config", build_dir() + "/CPackConfig.cmake", "-B",
                                         tmp.path.string()});
  ASSERT_EQ(packed.exit_code, 0) << packed.out << packed.err;
  std::string deb;
  for (const auto& e : fs::directory_iterator(tmp.path))
    if (e.path().extension() == ".deb") deb = e.path().string();
  ASSERT_FALSE(deb.empty()) << packed.out;
  EXPECT_NE(fs::path(deb).filename().string().find("meshlm_" MESHLM_VERSION "_"), std::string::npos) << deb;
  const auto contents = test::run_command({"dpkg-deb", "-c", deb});
  EXPECT_NE(contents.out.find("./usr/bin/meshlm"), std::string::npos) << contents.out;
  EXPECT_NE(contents.out.find("./usr/share/meshlm/models/stories260k/config.json"), std::string::npos);
  const auto depends = test::run_command({"dpkg-deb", "-f", deb, "Depends"});
  for (const char* package : {"openmpi-bin", "libopenblas", "libhdf5"})
    EXPECT_NE(depends.out.find(package), std::string::npos) << package << " in " << depends.out;
}

}  // namespace
}  // namespace meshlm
