// safetensors: header validation on malformed files, and row/column range reads of every float dtype.
#include <gtest/gtest.h>

#include <cstring>

#include "core/check.h"
#include "io/safetensors.h"
#include "io/weight_index.h"
#include "test_support.h"

namespace meshlm {
namespace {

std::string f32_bytes(const std::vector<float>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

// Expects opening `path` to throw an Error whose message contains `what`.
void expect_error(const std::string& path, const std::string& what) {
  try {
    SafetensorsFile f(path);
    ADD_FAILURE() << "no error; expected one mentioning: " << what;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << "the message must name the file: " << e.what();
  }
}

TEST(Safetensors, ReadsRowsAndColumns) {
  test::TempDir tmp;
  std::vector<float> m(4 * 5);
  for (size_t i = 0; i < m.size(); ++i) m[i] = float(i);
  std::string bf16;
  for (float x : m) {
    const uint16_t h = f32_to_bf16(x);
    bf16.append(reinterpret_cast<const char*>(&h), 2);
  }
  test::write_safetensors(tmp.file("a.safetensors"), {{"m", "F32", {4, 5}, f32_bytes(m)}, {"b", "BF16", {4, 5}, bf16}});
  SafetensorsFile f(tmp.file("a.safetensors"));
  const TensorInfo* t = f.find("m");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->rows(), 4);
  EXPECT_EQ(t->cols(), 5);
  std::vector<float> rows(2 * 5);
  f.read_rows(*t, 1, 3, rows.data());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(rows[size_t(i)], float(5 + i));
  std::vector<float> cols(4 * 2);
  f.read_block(*t, 0, 4, 2, 4, cols.data());
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(cols[size_t(r * 2)], float(r * 5 + 2));
    EXPECT_EQ(cols[size_t(r * 2 + 1)], float(r * 5 + 3));
  }
  const TensorInfo* b = f.find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::kBF16);
  std::vector<uint16_t> bc(4);
  const uint64_t before = f.bytes_read();
  f.read_block(*b, 0, 4, 4, 5, bc.data());
  EXPECT_EQ(f.bytes_read() - before, 8u) << "a column read touches only its own bytes";
  for (int r = 0; r < 4; ++r) EXPECT_EQ(bf16_to_f32(bc[size_t(r)]), float(r * 5 + 4));
  EXPECT_THROW(f.read_rows(*t, 3, 5, rows.data()), Error);
  EXPECT_THROW(f.read_block(*t, 0, 4, 4, 6, cols.data()), Error);
  std::vector<float> block(2 * 2);  // rows 1-2, columns 3-4
  f.read_block(*t, 1, 3, 3, 5, block.data());
  EXPECT_EQ(block, (std::vector<float>{8, 9, 13, 14}));
}

// A 3-D [E, out, in] tensor is read as (E·out, in) rows: expert 1's rows 1-2, columns 0-1.
TEST(Safetensors, BlocksOfStackedTensors) {
  test::TempDir tmp;
  std::vector<float> v(2 * 3 * 4);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i);
  std::string bytes(reinterpret_cast<const char*>(v.data()), v.size() * 4);
  test::write_safetensors(tmp.file("s.safetensors"), {{"x", "F32", {2, 3, 4}, bytes}});
  SafetensorsFile f(tmp.file("s.safetensors"));
  std::vector<float> out(4);
  f.read_block(*f.find("x"), 3 + 1, 3 + 3, 0, 2, out.data());
  EXPECT_EQ(out, (std::vector<float>{16, 17, 20, 21}));
}

TEST(Safetensors, RejectsMalformedFiles) {
  test::TempDir tmp;
  const std::string data = f32_bytes({1, 2, 3, 4});
  auto file = [&](const std::string& n) { return tmp.file(n); };

  test::write_file(file("short"), "abc");
  expect_error(file("short"), "at least 8");

  test::write_safetensors_raw(file("len_past_end"), "{}", "", 1000);
  expect_error(file("len_past_end"), "past the end");

  test::write_safetensors_raw(file("len_cap"), "{}", "", (long long)(SafetensorsFile::kMaxHeaderBytes + 1));
  expect_error(file("len_cap"), "cap");

  test::write_safetensors_raw(file("bad_json"), "{\"a\": [", data);
  expect_error(file("bad_json"), "not valid JSON");

  test::write_safetensors_raw(file("not_object"), "[1, 2]", data);
  expect_error(file("not_object"), "JSON object");

  test::write_safetensors_raw(file("outside"), R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 32]}})", data);
  expect_error(file("outside"), "outside the data section");

  test::write_safetensors_raw(file("size"), R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}})", data);
  expect_error(file("size"), "needs 12 bytes");

  test::write_safetensors_raw(file("overlap"),
                              R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", data);
  expect_error(file("overlap"), "overlap");

  test::write_safetensors_raw(file("dtype"), R"({"a": {"dtype": "Q4", "shape": [4], "data_offsets": [0, 16]}})", data);
  expect_error(file("dtype"), "unknown dtype");

  test::write_safetensors_raw(file("shape"), R"({"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}})", data);
  expect_error(file("shape"), "bad shape");

  test::write_safetensors_raw(file("fields"), R"({"a": {"dtype": "F32", "shape": [4]}})", data);
  expect_error(file("fields"), "data_offsets");

  expect_error(file("missing"), "cannot open");
}

// A file refused by the constructor leaves no descriptor open (a fuzz run once ran out of them).
TEST(Safetensors, RefusedFilesLeaveNoDescriptorOpen) {
  test::TempDir tmp;
  const std::string path = tmp.file("bad.safetensors");
  test::write_safetensors_raw(path, "{\"a\": 1}", "");
  const auto open_fds = [] {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
  };
  const size_t before = open_fds();
  for (int i = 0; i < 200; ++i) EXPECT_THROW(SafetensorsFile{path}, Error);
  EXPECT_LE(open_fds(), before + 1);
}

TEST(WeightIndex, ReadsShardedCheckpoints) {
  test::TempDir tmp;
  test::write_safetensors(tmp.file("s1.safetensors"), {{"a", "F32", {2}, f32_bytes({1, 2})}});
  test::write_safetensors(tmp.file("s2.safetensors"), {{"b", "F32", {1}, f32_bytes({3})}});
  test::write_file(tmp.file("model.safetensors.index.json"),
                   R"({"metadata": {}, "weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
  WeightIndex index(tmp.path.string());
  float v[2];
  index.file_of("b").read_rows(index.get("b"), 0, 1, v);
  EXPECT_EQ(v[0], 3.0f);
  EXPECT_EQ(index.all().size(), 2u);
  EXPECT_THROW(index.get("c"), Error);

  test::write_file(tmp.file("model.safetensors.index.json"), R"({"weight_map": {"a": "s3.safetensors"}})");
  EXPECT_THROW(WeightIndex{tmp.path.string()}, Error);
  test::write_file(tmp.file("model.safetensors.index.json"), R"({"weight_map": {"b": "s1.safetensors"}})");
  EXPECT_THROW(WeightIndex{tmp.path.string()}, Error);
}

}  // namespace
}  // namespace meshlm
