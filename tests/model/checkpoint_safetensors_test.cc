// Safetensors reader/writer: round trips (single file and sharded), zero-copy views, and a
// herd::Error naming file and tensor for every kind of corrupt file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <numeric>

#include "engine/common/error.h"
#include "engine/model/safetensors.h"
#include "engine/model/safetensors_writer.h"
#include "tests/model/checkpoint_test_util.h"

namespace herd {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::string open_error(const std::string& path) {
  try {
    SafetensorsFile::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << path << " opened but should not have";
  return "";
}

TEST(Safetensors, RoundTripSingleFile) {
  testing::ScratchDir dir;
  std::vector<float> a(6);
  std::iota(a.begin(), a.end(), 1.0f);
  std::vector<uint16_t> b = {f32_to_bf16(0.5f), f32_to_bf16(-2.0f), f32_to_bf16(3.0f)};
  std::vector<uint16_t> c = {f32_to_f16(1.5f)};
  write_safetensors_file(dir / "x.safetensors",
                         {tensor_from_memory("a", DType::kF32, {2, 3}, a.data()),
                          tensor_from_memory("b", DType::kBF16, {3}, b.data()),
                          tensor_from_memory("c.scalar", DType::kF16, {1, 1}, c.data())},
                         {{"format", "pt"}, {"who", "test"}});
  auto f = SafetensorsFile::open(dir / "x.safetensors");
  ASSERT_EQ(f->tensors().size(), 3u);
  const SafetensorsTensor& ta = f->tensors().at("a");
  EXPECT_EQ(ta.dtype, DType::kF32);
  EXPECT_EQ(ta.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ta.bytes, 24u);
  EXPECT_EQ(std::vector<float>(static_cast<const float*>(ta.data),
                               static_cast<const float*>(ta.data) + 6),
            a);
  const SafetensorsTensor& tb = f->tensors().at("b");
  EXPECT_EQ(tb.dtype, DType::kBF16);
  EXPECT_EQ(bf16_to_f32(static_cast<const uint16_t*>(tb.data)[1]), -2.0f);
  EXPECT_EQ(f->tensors().at("c.scalar").dtype, DType::kF16);
  EXPECT_EQ(f->metadata().at("who"), "test");
  // The header is padded so that the data section is 8-byte aligned.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(ta.data) % 8, 0u);
}

TEST(Safetensors, ShardedDirectoryWithIndex) {
  testing::ScratchDir dir;
  std::vector<float> w(1000);
  std::iota(w.begin(), w.end(), 0.0f);
  std::vector<TensorSpec> specs;
  for (int i = 0; i < 5; ++i)
    specs.push_back(
        tensor_from_memory("t" + std::to_string(i), DType::kF32, {10, 20}, w.data() + i * 200));
  SafetensorsWriteOptions o;
  o.max_shard_bytes = 1700;  // two 800-byte tensors per shard -> 3 shards
  auto files = write_safetensors_dir(dir.path(), specs, o);
  EXPECT_EQ(files, (std::vector<std::string>{
                       "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                       "model-00003-of-00003.safetensors", "model.safetensors.index.json"}));
  auto index = testing::read_json(dir / "model.safetensors.index.json");
  EXPECT_EQ(index["metadata"]["total_size"], 4000);
  EXPECT_EQ(index["weight_map"]["t4"], "model-00003-of-00003.safetensors");

  SafetensorsCheckpoint ck = SafetensorsCheckpoint::open_dir(dir.path());
  EXPECT_EQ(ck.files().size(), 3u);
  ASSERT_EQ(ck.tensors().size(), 5u);
  for (int i = 0; i < 5; ++i) {
    const SafetensorsTensor* t = ck.find("t" + std::to_string(i));
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(static_cast<const float*>(t->data)[7], float(i * 200 + 7));
  }
}

TEST(Safetensors, StreamedFillCoversEveryElement) {
  testing::ScratchDir dir;
  TensorSpec s{"ramp", DType::kF32, {3, 5}, [](int64_t first, int64_t count, void* dst) {
                 for (int64_t i = 0; i < count; ++i) static_cast<float*>(dst)[i] = float(first + i);
               }};
  write_safetensors_dir(dir.path(), {s});
  auto ck = SafetensorsCheckpoint::open_dir(dir.path());
  const float* p = static_cast<const float*>(ck.find("ramp")->data);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(p[i], float(i));
}

TEST(Safetensors, TruncatedFile) {
  testing::ScratchDir dir;
  std::vector<float> a(64, 1.0f);
  write_safetensors_file(dir / "m.safetensors",
                         {tensor_from_memory("first", DType::kF32, {8, 4}, a.data()),
                          tensor_from_memory("second", DType::kF32, {8, 4}, a.data())});
  std::string bytes = testing::read_file(dir / "m.safetensors");
  testing::write_file(dir / "m.safetensors", bytes.substr(0, bytes.size() - 10));
  EXPECT_THAT(
      open_error(dir / "m.safetensors"),
      AllOf(HasSubstr(dir / "m.safetensors"), HasSubstr("'second'"), HasSubstr("truncated")));
  testing::write_file(dir / "m.safetensors", bytes.substr(0, 5));
  EXPECT_THAT(open_error(dir / "m.safetensors"), HasSubstr("corrupt"));
  testing::write_file(dir / "m.safetensors", bytes.substr(0, 40));  // inside the header
  EXPECT_THAT(open_error(dir / "m.safetensors"), HasSubstr("header length"));
}

TEST(Safetensors, CorruptHeader) {
  testing::ScratchDir dir;
  const std::string p = dir / "c.safetensors";
  testing::write_raw_safetensors(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1]", "abcd");
  EXPECT_THAT(open_error(p), AllOf(HasSubstr(p), HasSubstr("invalid JSON")));
  testing::write_raw_safetensors(p, "[1, 2, 3]", "");
  EXPECT_THAT(open_error(p), HasSubstr("not a JSON object"));
  testing::write_raw_safetensors(p, R"({"a": {"dtype": "F32", "shape": [1]}})", "abcd");
  EXPECT_THAT(open_error(p), AllOf(HasSubstr("'a'"), HasSubstr("data_offsets")));
  testing::write_raw_safetensors(
      p, R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", "abcd");
  EXPECT_THAT(open_error(p), AllOf(HasSubstr("'a'"), HasSubstr("reversed")));
  testing::write_raw_safetensors(
      p, R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", "abcd");
  EXPECT_THAT(open_error(p), AllOf(HasSubstr("'a'"), HasSubstr("bad dimension")));
}

TEST(Safetensors, ImplausibleHeaderLength) {
  testing::ScratchDir dir;
  const std::string p = dir / "h.safetensors";
  std::string bytes(8, '\xff');
  testing::write_file(p, bytes + "{}");
  EXPECT_THAT(open_error(p), AllOf(HasSubstr(p), HasSubstr("header length")));
}

TEST(Safetensors, UnsupportedDtypeNamesTensor) {
  testing::ScratchDir dir;
  const std::string p = dir / "d.safetensors";
  testing::write_raw_safetensors(
      p, R"({"model.norm.weight": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})",
      std::string(8, '\0'));
  EXPECT_THAT(open_error(p),
              AllOf(HasSubstr("'model.norm.weight'"), HasSubstr("unsupported dtype I64")));
}

TEST(Safetensors, ShapeMustMatchByteRange) {
  testing::ScratchDir dir;
  const std::string p = dir / "s.safetensors";
  testing::write_raw_safetensors(
      p, R"({"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 8]}})",
      std::string(8, '\0'));
  EXPECT_THAT(open_error(p), AllOf(HasSubstr("'w'"), HasSubstr("needs 12 bytes")));
}

TEST(Safetensors, OverlappingTensors) {
  testing::ScratchDir dir;
  const std::string p = dir / "o.safetensors";
  testing::write_raw_safetensors(p,
                                 R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                     "y": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                                 std::string(12, '\0'));
  EXPECT_THAT(open_error(p), AllOf(HasSubstr("'x'"), HasSubstr("'y'"), HasSubstr("overlap")));
}

TEST(Safetensors, IndexPointingAtWrongShard) {
  testing::ScratchDir dir;
  std::vector<float> a(4, 0.0f);
  write_safetensors_file(dir / "s1.safetensors",
                         {tensor_from_memory("a", DType::kF32, {4}, a.data())});
  write_safetensors_file(dir / "s2.safetensors",
                         {tensor_from_memory("b", DType::kF32, {4}, a.data())});
  testing::write_json(dir / "model.safetensors.index.json",
                      {{"weight_map", {{"a", "s2.safetensors"}, {"b", "s2.safetensors"}}}});
  try {
    SafetensorsCheckpoint::open_dir(dir.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("s2.safetensors"), HasSubstr("'a' is missing")));
  }
}

TEST(Safetensors, EmptyDirectory) {
  testing::ScratchDir dir;
  try {
    SafetensorsCheckpoint::open_dir(dir.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(dir.path()), HasSubstr("no model.safetensors")));
  }
}

}  // namespace
}  // namespace herd
