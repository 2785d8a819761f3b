// kiln::save_safetensors / load_safetensors: round trips, the file layout,
// interchange with the Python `safetensors` package (skipped when no python3
// with safetensors and numpy is found), a clear error for every corrupt file
// (every truncation, flipped header bytes, hand-made bad headers), and
// atomic writes that leave the old file intact when saving fails.
#include "runtime/safetensors.h"

#include "ir/error.h"

#include "../support/files.h"

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace kiln {
namespace {

using testing::read_bytes;
using testing::write_bytes;

template <typename T> std::vector<uint8_t> bytes_of(std::vector<T> values) {
  std::vector<uint8_t> out(values.size() * sizeof(T));
  if (!values.empty())
    std::memcpy(out.data(), values.data(), out.size());
  return out;
}

const std::string &safetensors_python() {
  return testing::python_with("safetensors.numpy, numpy");
}

// Tensors of every dtype: odd sizes, a 0-d and an empty one.
std::map<std::string, SafeTensor> sample_tensors() {
  return {
      {"a.bias", {"F32", {3}, bytes_of<float>({0.5f, -1.25f, 3.0f})}},
      {"b.weight",
       {"F64", {2, 3}, bytes_of<double>({0.1, 0.2, 0.3, -1e300, 2.5, 0})}},
      {"idx",
       {"I32",
        {2, 2},
        bytes_of<int32_t>({1, -2, 2147483647, -2147483647 - 1})}},
      {"step", {"I64", {}, bytes_of<int64_t>({1234567890123})}},
      {"empty", {"F32", {0, 4}, {}}},
  };
}

const std::map<std::string, std::string> kMetadata = {
    {"format", "pt"}, {"note", "h\xc3\xa9llo \xe2\x9c\x93"}, {"empty", ""}};

void expect_same_tensors(const std::map<std::string, SafeTensor> &got,
                         const std::map<std::string, SafeTensor> &want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto &[name, w] : want) {
    SCOPED_TRACE(name);
    auto it = got.find(name);
    ASSERT_NE(it, got.end());
    EXPECT_EQ(it->second.dtype, w.dtype);
    EXPECT_EQ(it->second.shape, w.shape);
    EXPECT_EQ(it->second.bytes, w.bytes);
  }
}

class SafeTensorsTest : public testing::TempDirTest {
protected:
  SafeTensorsTest() : TempDirTest("kiln-safetensors-test") {}

  int run_python(const std::string &script) {
    return TempDirTest::run_python(safetensors_python(), script);
  }

  // Expects loading p to throw a kiln::Error naming p and saying `what`.
  static void expect_load_error(const std::string &p, const std::string &what) {
    try {
      load_safetensors(p);
      ADD_FAILURE() << "no error loading " << p << " (expected '" << what
                    << "')";
    } catch (const Error &e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos)
          << "message: " << msg << "\nexpected to contain: " << what;
    }
  }

  // A file with this header text (unpadded) and `data_len` data bytes.
  static std::string raw_file(const std::string &header, size_t data_len) {
    std::string out;
    for (int i = 0; i < 8; ++i)
      out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
    return out + header + std::string(data_len, '\x11');
  }
};

TEST_F(SafeTensorsTest, RoundTripsEveryDtypeWithMetadata) {
  std::string p = path("model.safetensors");
  save_safetensors(p, sample_tensors(), kMetadata);
  SafeTensorsFile f = load_safetensors(p);
  expect_same_tensors(f.tensors, sample_tensors());
  EXPECT_EQ(f.metadata, kMetadata);
  EXPECT_TRUE(only_files_are({"model.safetensors"}));
}

TEST_F(SafeTensorsTest, RoundTripsNoTensorsAndNoMetadata) {
  std::string p = path("empty.safetensors");
  save_safetensors(p, {}, {});
  // "{}" padded to 8 bytes, and nothing else.
  EXPECT_EQ(read_bytes(p), std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
  SafeTensorsFile f = load_safetensors(p);
  EXPECT_TRUE(f.tensors.empty());
  EXPECT_TRUE(f.metadata.empty());
}

TEST_F(SafeTensorsTest, LaysOutTheFileAsTheFormatSays) {
  std::string p = path("model.safetensors");
  save_safetensors(p, sample_tensors(), kMetadata);
  std::string file = read_bytes(p);
  ASSERT_GE(file.size(), 8u);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= uint64_t{static_cast<uint8_t>(file[i])} << (8 * i);
  ASSERT_LE(8 + n, file.size());
  EXPECT_EQ((8 + n) % 8, 0u) << "header is padded to 8 bytes";
  auto header = nlohmann::json::parse(file.substr(8, n));
  EXPECT_EQ(header["__metadata__"]["note"], kMetadata.at("note"));
  EXPECT_EQ(header["step"]["shape"], nlohmann::json::array());
  EXPECT_EQ(header["b.weight"]["dtype"], "F64");
  EXPECT_EQ(header["b.weight"]["shape"], nlohmann::json({2, 3}));

  // 8-byte tensors first (by name), then 4-byte ones; tiled without gaps;
  // each starts at a multiple of its element size in the file.
  std::vector<std::pair<uint64_t, std::string>> order;
  for (const auto &[name, t] : sample_tensors()) {
    auto offsets = header[name]["data_offsets"].get<std::vector<uint64_t>>();
    ASSERT_EQ(offsets.size(), 2u);
    EXPECT_EQ(offsets[1] - offsets[0], t.bytes.size()) << name;
    size_t elem = (t.dtype == "F64" || t.dtype == "I64") ? 8 : 4;
    EXPECT_EQ((8 + n + offsets[0]) % elem, 0u) << name;
    EXPECT_EQ(file.substr(8 + n + offsets[0], t.bytes.size()),
              std::string(t.bytes.begin(), t.bytes.end()))
        << name;
    order.emplace_back(offsets[0], name);
  }
  std::sort(order.begin(), order.end());
  std::vector<std::string> names;
  for (const auto &[offset, name] : order)
    names.push_back(name);
  // "empty" and "a.bias" both start where "step" ends; the sort above puts
  // the empty one (same offset) first by name.
  EXPECT_EQ(names, (std::vector<std::string>{"b.weight", "step", "a.bias",
                                             "empty", "idx"}));
  EXPECT_EQ(file.size(), 8 + n + 48 + 8 + 12 + 16);
}

TEST_F(SafeTensorsTest, PythonReadsWhatKilnWrites) {
  if (safetensors_python().empty())
    GTEST_SKIP() << "no python3 with safetensors and numpy found (tried "
                    "$KILN_PYTHON, python3, /usr/bin/python3)";
  std::string p = path("kiln.safetensors");
  save_safetensors(p, sample_tensors(), kMetadata);
  std::string script = fmt::format(
      "import sys, numpy as np\n"
      "from safetensors import safe_open\n"
      "from safetensors.numpy import load_file\n"
      "p = '{}'\n"
      "got = load_file(p)\n"
      "want = {{\n"
      "  'a.bias': np.array([0.5, -1.25, 3.0], dtype=np.float32),\n"
      "  'b.weight': np.array([[0.1, 0.2, 0.3], [-1e300, 2.5, 0]]),\n"
      "  'idx': np.array([[1, -2], [2**31 - 1, -2**31]], dtype=np.int32),\n"
      "  'step': np.array(1234567890123, dtype=np.int64),\n"
      "  'empty': np.zeros((0, 4), dtype=np.float32),\n"
      "}}\n"
      "bad = 0\n"
      "if sorted(got) != sorted(want): print('names', sorted(got)); bad += 1\n"
      "for k, w in want.items():\n"
      "    g = got.get(k)\n"
      "    if g is None or g.dtype != w.dtype or g.shape != w.shape or not "
      "np.array_equal(g, w):\n"
      "        print('tensor', k, g); bad += 1\n"
      "with safe_open(p, 'np') as f:\n"
      "    md = f.metadata()\n"
      "if md != {{'format': 'pt', 'note': 'h\\u00e9llo \\u2713', 'empty': "
      "''}}:\n"
      "    print('metadata', md); bad += 1\n"
      "sys.exit(1 if bad else 0)\n",
      p);
  EXPECT_EQ(run_python(script), 0);
}

TEST_F(SafeTensorsTest, KilnReadsWhatPythonWrites) {
  if (safetensors_python().empty())
    GTEST_SKIP() << "no python3 with safetensors and numpy found (tried "
                    "$KILN_PYTHON, python3, /usr/bin/python3)";
  std::string script = fmt::format(
      "import numpy as np\n"
      "from safetensors.numpy import save_file\n"
      "d = '{}'\n"
      "save_file({{\n"
      "  'fc1.weight': np.arange(6, dtype=np.float32).reshape(2, 3) / 4,\n"
      "  'fc1.bias': np.array([1.5, -2.0], dtype=np.float64),\n"
      "  'counts': np.array([-7, 2**40], dtype=np.int64),\n"
      "  'labels': np.array([[3], [4], [5]], dtype=np.int32),\n"
      "  'scalar': np.array(2.5, dtype=np.float32),\n"
      "}}, d + '/py.safetensors', metadata={{'epoch': '3'}})\n"
      "save_file({{'half': np.ones(3, dtype=np.float16)}}, d + "
      "'/f16.safetensors')\n",
      dir_.string());
  ASSERT_EQ(run_python(script), 0);
  SafeTensorsFile f = load_safetensors(path("py.safetensors"));
  expect_same_tensors(
      f.tensors,
      {
          {"fc1.weight",
           {"F32", {2, 3}, bytes_of<float>({0, 0.25, 0.5, 0.75, 1, 1.25})}},
          {"fc1.bias", {"F64", {2}, bytes_of<double>({1.5, -2.0})}},
          {"counts", {"I64", {2}, bytes_of<int64_t>({-7, int64_t{1} << 40})}},
          {"labels", {"I32", {3, 1}, bytes_of<int32_t>({3, 4, 5})}},
          {"scalar", {"F32", {}, bytes_of<float>({2.5f})}},
      });
  EXPECT_EQ(f.metadata, (std::map<std::string, std::string>{{"epoch", "3"}}));
  // F16 loads as raw bytes (1.0 is 0x3c00).
  SafeTensorsFile h = load_safetensors(path("f16.safetensors"));
  expect_same_tensors(
      h.tensors,
      {{"half", {"F16", {3}, bytes_of<uint16_t>({0x3c00, 0x3c00, 0x3c00})}}});
}

// F16 and BF16 round-trip as raw bytes and widen exactly to float and
// double: normals, subnormals, the largest half, +-inf, -0 and NaN.
TEST_F(SafeTensorsTest, HalfAndBfloat16LoadAndWidenExactly) {
  std::vector<uint16_t> half = {0x3c00, 0xc000, 0x0001, 0x03ff, 0x8001, 0x7bff,
                                0x7c00, 0xfc00, 0x8000, 0x3555, 0x7e00};
  std::vector<double> half_want = {
      1.0,      -2.0,      0x1p-24, 1023 * 0x1p-24, -0x1p-24, 65504.0,
      INFINITY, -INFINITY, -0.0,    0.333251953125, NAN};
  std::vector<uint16_t> bf = {0x3f80, 0xc040, 0x0001, 0x7f80, 0x3eab};
  std::vector<double> bf_want = {1.0, -3.0, 0x1p-133, INFINITY, 0.333984375};
  std::string p = path("half.safetensors");
  save_safetensors(p, {{"h", {"F16", {11}, bytes_of(half)}},
                       {"b", {"BF16", {5}, bytes_of(bf)}}});
  SafeTensorsFile f = load_safetensors(p);
  ASSERT_EQ(f.tensors.at("h").dtype, "F16");
  ASSERT_EQ(f.tensors.at("b").dtype, "BF16");
  EXPECT_EQ(f.tensors.at("h").bytes, bytes_of(half));
  auto check = [](const SafeTensor &t, const std::vector<double> &want) {
    std::vector<float> f32(want.size());
    std::vector<double> f64(want.size());
    float_safetensor_elements(t, f32.data());
    float_safetensor_elements(t, f64.data());
    for (size_t i = 0; i < want.size(); ++i) {
      if (std::isnan(want[i])) {
        EXPECT_TRUE(std::isnan(f32[i]) && std::isnan(f64[i])) << i;
        continue;
      }
      EXPECT_EQ(f32[i], static_cast<float>(want[i])) << t.dtype << " " << i;
      EXPECT_EQ(f64[i], want[i]) << t.dtype << " " << i;
      EXPECT_EQ(std::signbit(f64[i]), std::signbit(want[i])) << i;
    }
  };
  check(f.tensors.at("h"), half_want);
  check(f.tensors.at("b"), bf_want);
  EXPECT_TRUE(is_float_safetensor_dtype("BF16"));
  EXPECT_FALSE(is_float_safetensor_dtype("I32"));
  std::vector<float> out(1);
  EXPECT_THROW(float_safetensor_elements({"I32", {1}, bytes_of<int32_t>({1})},
                                         out.data()),
               Error);
}

TEST_F(SafeTensorsTest, MissingOrShortFilesAreReported) {
  expect_load_error(path("nope.safetensors"), "cannot open safetensors file");
  expect_load_error(dir_.string(), "not a regular file");
  write_bytes(path("short.safetensors"), "abc");
  expect_load_error(path("short.safetensors"),
                    "3 bytes is too short for the 8-byte header length");
  // A header length far beyond the file, including one that would overflow.
  write_bytes(path("len.safetensors"), raw_file("{}", 0).replace(0, 1, "\x40"));
  expect_load_error(
      path("len.safetensors"),
      "header length 64 is beyond the end of the file (10 bytes)");
  write_bytes(path("max.safetensors"),
              std::string(8, '\xff') + "{}" + std::string(100, ' '));
  expect_load_error(path("max.safetensors"),
                    "header length 18446744073709551615 is beyond the end");
}

TEST_F(SafeTensorsTest, EveryTruncationIsReported) {
  std::string p = path("full.safetensors");
  save_safetensors(p, sample_tensors(), kMetadata);
  std::string full = read_bytes(p);
  std::string cut_path = path("cut.safetensors");
  for (size_t cut = 0; cut < full.size(); ++cut) {
    SCOPED_TRACE(fmt::format("cut at {} of {}", cut, full.size()));
    write_bytes(cut_path, full.substr(0, cut));
    expect_load_error(cut_path, "safetensors");
  }
  write_bytes(cut_path, full + "x");
  expect_load_error(cut_path, "1 trailing bytes after the last tensor");
}

TEST_F(SafeTensorsTest, FlippedHeaderBytesGiveErrorsNotCrashes) {
  std::string p = path("full.safetensors");
  save_safetensors(p, sample_tensors(), kMetadata);
  std::string full = read_bytes(p);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= uint64_t{static_cast<uint8_t>(full[i])} << (8 * i);
  std::string flip_path = path("flip.safetensors");
  int errors = 0, loads = 0;
  for (size_t i = 0; i < 8 + n; ++i)
    for (unsigned mask : {0x01u, 0x02u, 0x20u, 0x80u}) {
      std::string bad = full;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ mask);
      write_bytes(flip_path, bad);
      ++loads;
      try {
        // A flip inside a name or a metadata string can leave a valid file;
        // then what loads must still be consistent.
        SafeTensorsFile f = load_safetensors(flip_path);
        EXPECT_GE(i, 8u) << "a changed header length went unnoticed";
        for (const auto &[name, t] : f.tensors) {
          size_t elem = (t.dtype == "F64" || t.dtype == "I64") ? 8 : 4;
          size_t count = 1;
          for (int64_t d : t.shape)
            count *= static_cast<size_t>(d);
          EXPECT_EQ(t.bytes.size(), count * elem) << name;
        }
      } catch (const Error &e) {
        ++errors;
        EXPECT_NE(std::string(e.what()).find(flip_path), std::string::npos)
            << e.what();
      }
    }
  // Most flips break the JSON, a number or a dtype.
  EXPECT_GT(errors, loads / 2) << errors << " errors in " << loads << " loads";
}

TEST_F(SafeTensorsTest, CorruptHeadersAreReported) {
  const std::string w8 =
      R"("w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]})";
  struct Case {
    std::string header;
    size_t data_len;
    std::string what;
  };
  const std::vector<Case> cases = {
      {"not json", 8, "invalid JSON"},
      {R"({"w": )", 8, "invalid JSON"},
      {"{\"w\xff\": 1}", 0, "invalid JSON"},
      {"[1, 2]", 0, "expected a JSON object, got array"},
      {R"({"w": 3})", 0, "tensor 'w': expected an object"},
      {R"({"w": {"dtype": "F32", "shape": [2]}})", 8,
       "needs dtype, shape and data_offsets"},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": 1}})",
       8, "unexpected field 'x'"},
      {R"({"w": {"dtype": 5, "shape": [2], "data_offsets": [0, 8]}})", 8,
       "dtype 5 is not a string"},
      {R"({"w": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}})", 2,
       "unsupported dtype 'U8' (supported: F32, F64, F16, BF16, I32, I64)"},
      {R"({"w": {"dtype": "XYZ", "shape": [2], "data_offsets": [0, 8]}})", 8,
       "unsupported dtype 'XYZ'"},
      {R"({"w": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}})", 8,
       "shape \"2\" is not a list"},
      {R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8,
       "shape holds -2, not a non-negative integer"},
      {R"({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}})", 8,
       "shape holds 2.5"},
      {R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 8]}})",
       8, "is too large"},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", 8,
       "data_offsets [0] is not a [begin, end] pair"},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 18446744073709551615]}})",
       8, "data_offsets holds 18446744073709551615"},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", 8,
       "data_offsets [8, 0] run backwards"},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}})", 12,
       "data_offsets [0, 12] span 12 bytes but F32[2] needs 8"},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})", 8,
       "reach past the end of the 8-byte data section"},
      {"{" + w8 +
           R"(, "v": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
       12, "tensors 'w' and 'v' overlap"},
      {"{" + w8 +
           R"(, "v": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})",
       20, "data bytes [8, 12) before tensor 'v' belong to no tensor"},
      {"{" + w8 + "}", 12, "4 trailing bytes after the last tensor"},
      {"{" + w8 + ", " + w8 + "}", 8, "duplicate key \"w\""},
      {R"({"w": {"dtype": "F32", "dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
       8, "duplicate key \"dtype\""},
      {"{" + w8 + R"(, "__metadata__": [1]})", 8,
       "__metadata__ is not an object"},
      {"{" + w8 + R"(, "__metadata__": {"k": 1}})", 8,
       "__metadata__ value 'k' is 1, not a string"},
  };
  std::string p = path("bad.safetensors");
  for (const Case &c : cases) {
    SCOPED_TRACE(c.header);
    write_bytes(p, raw_file(c.header, c.data_len));
    expect_load_error(p, c.what);
  }
  // The same entries, well formed, load.
  write_bytes(p, raw_file("{" + w8 + R"(, "__metadata__": {"k": "v"}})", 8));
  SafeTensorsFile f = load_safetensors(p);
  EXPECT_EQ(f.tensors.at("w").bytes, std::vector<uint8_t>(8, 0x11));
  EXPECT_EQ(f.metadata.at("k"), "v");
}

TEST_F(SafeTensorsTest, NulBytesInTheHeaderAreRejected) {
  // nlohmann::json stops at a NUL as if the text ended there: a header
  // "{...}\0<garbage>" used to load.
  const std::string w8 =
      R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
  write_bytes(path("nul-pad.safetensors"),
              raw_file(w8 + std::string(4, '\0'), 8));
  expect_load_error(path("nul-pad.safetensors"),
                    fmt::format("NUL byte at byte offset {}", 8 + w8.size()));
  write_bytes(path("nul-garbage.safetensors"),
              raw_file(std::string("{}\0 not json at all", 19), 0));
  expect_load_error(path("nul-garbage.safetensors"),
                    "NUL byte at byte offset 10 (header byte 2)");
  std::string in_key = w8;
  in_key[2] = '\0';
  write_bytes(path("nul-key.safetensors"), raw_file(in_key, 8));
  expect_load_error(path("nul-key.safetensors"), "NUL byte at byte offset 10");
}

// True when every byte of `s` is printable ASCII or a newline.
bool printable_ascii(const std::string &s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c == '\n' || (c >= 0x20 && c < 0x7f);
  });
}

TEST_F(SafeTensorsTest, FileBytesInMessagesAreEscaped) {
  struct Case {
    std::string header;
    std::string what;
  };
  const std::vector<Case> cases = {
      // A terminal escape sequence in a tensor name (valid JSON).
      {R"({"w\u001b[31m": 3})", "tensor 'w\\x1b[31m': expected an object"},
      {R"({"w": {"dtype": "F\u00e9", "shape": [2], "data_offsets": [0, 8]}})",
       "unsupported dtype 'F\\xc3\\xa9'"},
      {"{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": "
       "[0, 8], \"\xc3\xa9\": 1}}",
       "unexpected field '\\xc3\\xa9'"},
      // Invalid UTF-8: nlohmann's message quotes the bytes it read.
      {"{\"w\xff\xfe\": 1}", "invalid JSON"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.what);
    write_bytes(path("esc.safetensors"), raw_file(c.header, 8));
    expect_load_error(path("esc.safetensors"), c.what);
    try {
      load_safetensors(path("esc.safetensors"));
    } catch (const Error &e) {
      EXPECT_TRUE(printable_ascii(e.what())) << e.what();
    }
  }
}

TEST_F(SafeTensorsTest, AFifoIsRejectedWithoutBlocking) {
  // open(2) on a FIFO waits for a writer; the load must refuse it at once.
  std::string p = path("fifo.safetensors");
  std::string msg = testing::error_reading_fifo(
      p, [](const std::string &f) { load_safetensors(f); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
}

class SaveFailureTest : public SafeTensorsTest {
protected:
  void SetUp() override {
    SafeTensorsTest::SetUp();
    target_ = path("model.safetensors");
    save_safetensors(target_, sample_tensors(), kMetadata);
    before_ = read_bytes(target_);
  }

  // The old file is intact and no temporary was left behind.
  void expect_old_file_intact() {
    EXPECT_EQ(read_bytes(target_), before_);
    EXPECT_TRUE(only_files_are({"model.safetensors"}));
  }

  void expect_save_error(const std::map<std::string, SafeTensor> &tensors,
                         const std::map<std::string, std::string> &metadata,
                         const std::string &what) {
    try {
      save_safetensors(target_, tensors, metadata);
      ADD_FAILURE() << "no error (expected '" << what << "')";
    } catch (const Error &e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(target_), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos)
          << "message: " << msg << "\nexpected to contain: " << what;
    }
    expect_old_file_intact();
  }

  std::string target_;
  std::string before_;
};

TEST_F(SaveFailureTest, InvalidTensorsAreRefusedBeforeWriting) {
  expect_save_error({{"w", {"U8", {1}, {0}}}}, {},
                    "tensor 'w' has unsupported dtype 'U8'");
  expect_save_error({{"w", {"F32", {2, 3}, std::vector<uint8_t>(20)}}}, {},
                    "tensor 'w' is F32[2,3] (24 bytes) but holds 20 bytes");
  expect_save_error({{"w", {"F32", {-1}, {}}}}, {},
                    "tensor 'w' has invalid shape [-1]");
  expect_save_error({{"__metadata__", {"F32", {}, std::vector<uint8_t>(4)}}},
                    {}, "'__metadata__' is reserved");
  expect_save_error({{"", {"F32", {}, std::vector<uint8_t>(4)}}}, {},
                    "a tensor has an empty name");
  expect_save_error({{"w\xff", {"F32", {}, std::vector<uint8_t>(4)}}}, {},
                    "not valid UTF-8");
  expect_save_error({}, {{"k", "\xc3"}}, "not valid UTF-8");
}

TEST_F(SaveFailureTest, OverwriteReplacesTheFile) {
  std::map<std::string, SafeTensor> next = {
      {"x", {"I32", {1}, bytes_of<int32_t>({42})}}};
  save_safetensors(target_, next, {});
  SafeTensorsFile f = load_safetensors(target_);
  expect_same_tensors(f.tensors, next);
  EXPECT_TRUE(f.metadata.empty());
  EXPECT_TRUE(only_files_are({"model.safetensors"}));
}

TEST_F(SaveFailureTest, FailedWriteLeavesTheOldFile) {
  // Limit the size of files this process may write, so that write(2) fails
  // midway (EFBIG) even for root; SIGXFSZ would otherwise kill the process.
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit small = old_limit;
  small.rlim_cur = 1000;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string msg;
  try {
    save_safetensors(
        target_, {{"big", {"F64", {1000}, std::vector<uint8_t>(8000)}}}, {});
  } catch (const Error &e) {
    msg = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(msg.find(target_), std::string::npos) << "message: " << msg;
  EXPECT_NE(msg.find("cannot save safetensors: writing"), std::string::npos)
      << msg;
  expect_old_file_intact();
}

TEST_F(SaveFailureTest, UnwritableDirectoryLeavesTheOldFile) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0555), 0);
  // Root ignores directory permissions, so the save runs in a child that
  // first drops to the unprivileged "nobody" ids.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0))
      ::_exit(77);
    if (::access(dir_.c_str(), W_OK) == 0)
      ::_exit(78);
    try {
      save_safetensors(target_, {}, {});
      ::_exit(1);
    } catch (const Error &e) {
      std::string msg = e.what();
      bool ok = msg.find(target_) != std::string::npos &&
                msg.find("cannot create") != std::string::npos;
      ::_exit(ok ? 0 : 2);
    } catch (...) {
      ::_exit(3);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::chmod(dir_.c_str(), 0700);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77)
    GTEST_SKIP() << "cannot drop root privileges here";
  if (WEXITSTATUS(status) == 78)
    GTEST_SKIP() << "the directory stays writable without privileges";
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "1: no error, 2: error without the path or reason, 3: other "
         "exception";
  expect_old_file_intact();
}

TEST_F(SaveFailureTest, FailedRenameRemovesTheTemporary) {
  // The target is a directory: the rename fails after the data is written.
  std::string target = path("a-directory");
  ASSERT_TRUE(fs::create_directory(target));
  try {
    save_safetensors(target, sample_tensors(), {});
    ADD_FAILURE() << "no error";
  } catch (const Error &e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(target), std::string::npos) << msg;
    EXPECT_NE(msg.find("renaming"), std::string::npos) << msg;
  }
  EXPECT_TRUE(fs::is_directory(target));
  EXPECT_TRUE(only_files_are({"model.safetensors", "a-directory"}));
}

TEST_F(SaveFailureTest, StaleTemporariesOfDeadWritersAreRemoved) {
  // A writer killed with -9 mid-save leaves model.safetensors.tmp.<pid>
  // behind; the next save of the same file removes it, but never the
  // temporary of a writer that is still running (here: our parent).
  pid_t dead = ::fork();
  ASSERT_GE(dead, 0);
  if (dead == 0)
    ::_exit(0);
  int status = 0;
  ASSERT_EQ(::waitpid(dead, &status, 0), dead);
  ASSERT_EQ(::kill(dead, 0), -1);
  ASSERT_EQ(errno, ESRCH);
  pid_t live = ::getppid();
  ASSERT_EQ(::kill(live, 0), 0);

  std::string stale = fmt::format("model.safetensors.tmp.{}", dead);
  std::string running = fmt::format("model.safetensors.tmp.{}", live);
  std::string other = fmt::format("other.safetensors.tmp.{}", dead);
  std::string not_pid = fmt::format("model.safetensors.tmp.{}x", dead);
  for (const std::string &name : {stale, running, other, not_pid})
    write_bytes(path(name), "partial");
  save_safetensors(target_, sample_tensors(), kMetadata);
  EXPECT_FALSE(fs::exists(path(stale)));
  EXPECT_TRUE(fs::exists(path(running)));
  EXPECT_TRUE(fs::exists(path(other)));
  EXPECT_TRUE(fs::exists(path(not_pid)));
  EXPECT_TRUE(only_files_are({"model.safetensors", running, other, not_pid}));
  expect_same_tensors(load_safetensors(target_).tensors, sample_tensors());
}

} // namespace
} // namespace kiln
