// kiln::read_npy / write_npy: round trips of every dtype and shape, the exact
// bytes numpy.save writes, interchange with numpy itself (skipped when no
// python3 with numpy is found), and one clear error per kind of bad file.
#include "tools/npy.h"

#include "ir/error.h"

#include "../support/files.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace kiln {
namespace {

using testing::read_bytes;
using testing::write_bytes;

const std::string &numpy_python() { return testing::python_with("numpy"); }

// The numbers the tests store: exact in every dtype, different per element.
std::vector<double> sample_values(const std::string &dtype, size_t n) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) {
    double k = static_cast<double>(i);
    if (dtype == "f32")
      v[i] = (k - 3) * 0.375;
    else if (dtype == "f64")
      v[i] = (k - 3) * 0.1;
    else if (dtype == "i32")
      v[i] = k * 1000003 - 7;
    else if (dtype == "i64")
      v[i] = k * 4398046511104.0 - 5; // k * 2^42 - 5
    else
      v[i] = static_cast<double>(i % 3 == 1);
  }
  return v;
}

const std::vector<std::string> kDtypes = {"f32", "f64", "i32", "i64", "bool"};
const std::vector<std::vector<int64_t>> kShapes = {
    {}, {0}, {5}, {2, 3}, {2, 0, 3}, {2, 3, 4}, {1, 1, 1, 1, 7}};

class NpyTest : public testing::TempDirTest {
protected:
  NpyTest() : TempDirTest("kiln-npy-test") {}

  // Runs a python script with numpy; returns its exit status.
  int run_python(const std::string &script) {
    return TempDirTest::run_python(numpy_python(), script);
  }

  // Expects read_npy(p) to throw a kiln::Error naming p and saying `what`.
  static void expect_read_error(const std::string &p, const std::string &what) {
    try {
      read_npy(p);
      ADD_FAILURE() << "no error reading " << p << " (expected '" << what
                    << "')";
    } catch (const Error &e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos)
          << "message: " << msg << "\nexpected to contain: " << what;
    }
  }

  // Expects write_npy(p, a) to throw naming p, and to create no file.
  void expect_write_error(const NpyArray &a, const std::string &what) {
    std::string p = path("bad-write.npy");
    try {
      write_npy(p, a);
      ADD_FAILURE() << "no error writing (expected '" << what << "')";
    } catch (const Error &e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos)
          << "message: " << msg << "\nexpected to contain: " << what;
    }
    EXPECT_FALSE(fs::exists(p));
    EXPECT_TRUE(only_files_are({})) << "a temporary file was left behind";
  }

  // An .npy file with this header dict, padded as numpy pads it.
  static std::string raw_npy(const std::string &dict, const std::string &data,
                             int major = 1, int minor = 0) {
    size_t len_bytes = major == 1 ? 2 : 4;
    size_t prefix = 8 + len_bytes;
    size_t hlen = dict.size() + 1;
    size_t pad = 64 - (prefix + hlen) % 64;
    std::string out("\x93NUMPY", 6);
    out += static_cast<char>(major);
    out += static_cast<char>(minor);
    for (size_t i = 0; i < len_bytes; ++i)
      out += static_cast<char>(((hlen + pad) >> (8 * i)) & 0xff);
    out += dict + std::string(pad, ' ') + "\n" + data;
    return out;
  }
};

void expect_same_array(const NpyArray &got, const NpyArray &want) {
  EXPECT_EQ(got.dtype, want.dtype);
  EXPECT_EQ(got.shape, want.shape);
  ASSERT_EQ(got.data.size(), want.data.size());
  for (size_t i = 0; i < want.data.size(); ++i) {
    if (std::isnan(want.data[i]))
      EXPECT_TRUE(std::isnan(got.data[i])) << "element " << i;
    else
      EXPECT_EQ(got.data[i], want.data[i]) << "element " << i;
  }
}

TEST_F(NpyTest, RoundTripsEveryDtypeAndShape) {
  int cases = 0;
  for (const std::string &dtype : kDtypes)
    for (const auto &shape : kShapes) {
      SCOPED_TRACE(fmt::format("{}[{}]", dtype, fmt::join(shape, ",")));
      size_t n = 1;
      for (int64_t d : shape)
        n *= static_cast<size_t>(d);
      NpyArray a{dtype, shape, sample_values(dtype, n), {}};
      std::string p = path(fmt::format("a{}.npy", cases++));
      write_npy(p, a);
      expect_same_array(read_npy(p), a);
      // The data starts at a multiple of 64 bytes, after a '\n'.
      std::string bytes = read_bytes(p);
      size_t elem = dtype == "bool"                      ? 1
                    : (dtype == "f32" || dtype == "i32") ? 4
                                                         : 8;
      size_t data_start = bytes.size() - n * elem;
      EXPECT_EQ(data_start % 64, 0u);
      EXPECT_EQ(bytes[data_start - 1], '\n');
    }
  EXPECT_EQ(cases, 35);
}

TEST_F(NpyTest, RoundTripsExtremeValues) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<NpyArray> arrays = {
      {"f32", {6}, {inf, -inf, nan, -0.0, 0x1p-149, 3.4028234663852886e38}},
      {"f64", {6}, {inf, -inf, nan, -0.0, 0x1p-1074, 1.7976931348623157e308}},
      {"i32", {3}, {-2147483648.0, 2147483647.0, 0}},
      {"i64", {4}, {-0x1p63, 0x1p53, -0x1p53, 9223372036854774784.0}},
      {"bool", {2}, {0, 1}},
  };
  for (const NpyArray &a : arrays) {
    SCOPED_TRACE(a.dtype);
    write_npy(path("x.npy"), a);
    expect_same_array(read_npy(path("x.npy")), a);
  }
  // -0.0 keeps its sign.
  write_npy(path("z.npy"), {"f64", {}, {-0.0}});
  EXPECT_TRUE(std::signbit(read_npy(path("z.npy")).data[0]));
}

TEST_F(NpyTest, WritesTheBytesNumpySaveWrites) {
  // The headers numpy 1.24's numpy.save wrote for these arrays: version 1.0,
  // 118 header bytes (0x76 'v'), growth-axis room, data at byte 128.
  struct Case {
    NpyArray array;
    std::string dict;
  };
  std::vector<Case> cases = {
      {{"f32", {2, 3}, sample_values("f32", 6)},
       "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"},
      {{"f64", {}, {2.5}},
       "{'descr': '<f8', 'fortran_order': False, 'shape': (), }"},
      {{"i64", {5}, sample_values("i64", 5)},
       "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }"},
      {{"bool", {0}, {}},
       "{'descr': '|b1', 'fortran_order': False, 'shape': (0,), }"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.dict);
    write_npy(path("h.npy"), c.array);
    std::string bytes = read_bytes(path("h.npy"));
    std::string want = std::string("\x93NUMPY\x01\x00v\x00", 10) + c.dict;
    want += std::string(127 - want.size(), ' ') + "\n";
    ASSERT_GE(bytes.size(), 128u);
    EXPECT_EQ(bytes.substr(0, 128), want);
  }
  // The data itself is plain little-endian: f64 2.5 is 0x4004000000000000.
  write_npy(path("s.npy"), {"f64", {}, {2.5}});
  std::string bytes = read_bytes(path("s.npy"));
  ASSERT_EQ(bytes.size(), 136u);
  EXPECT_EQ(bytes.substr(128), std::string("\0\0\0\0\0\0\x04\x40", 8));
}

TEST_F(NpyTest, AlignsDataForManyDimensions) {
  for (size_t rank = 0; rank <= 12; ++rank) {
    std::vector<int64_t> shape(rank, 1);
    if (rank > 0)
      shape[0] = 1234567;
    if (rank > 1)
      shape[0] = 0;
    size_t n = rank == 1 ? 1234567 : rank == 0 ? 1 : 0;
    write_npy(path("r.npy"), {"bool", shape, std::vector<double>(n, 1.0)});
    std::string bytes = read_bytes(path("r.npy"));
    size_t start = bytes.size() - n;
    EXPECT_EQ(start % 64, 0u) << "rank " << rank;
    EXPECT_EQ(bytes[start - 1], '\n');
    EXPECT_EQ(read_npy(path("r.npy")).shape, shape);
  }
}

TEST_F(NpyTest, NumpyReadsWhatKilnWrites) {
  if (numpy_python().empty())
    GTEST_SKIP() << "no python3 with numpy found (tried $KILN_PYTHON, "
                    "python3, /usr/bin/python3)";
  std::string script = "import io, sys, numpy as np\n"
                       "def values(dtype, n):\n"
                       "    k = np.arange(n, dtype=np.float64)\n"
                       "    if dtype == 'f32': return (k - 3) * 0.375\n"
                       "    if dtype == 'f64': return (k - 3) * 0.1\n"
                       "    if dtype == 'i32': return k * 1000003 - 7\n"
                       "    if dtype == 'i64': return k * 2.0**42 - 5\n"
                       "    return k % 3 == 1\n"
                       "np_type = dict(f32=np.float32, f64=np.float64, "
                       "i32=np.int32, i64=np.int64, bool=np.bool_)\n"
                       "bad = 0\n";
  int count = 0;
  for (const std::string &dtype : kDtypes)
    for (const auto &shape : kShapes) {
      size_t n = 1;
      for (int64_t d : shape)
        n *= static_cast<size_t>(d);
      std::string p = path(fmt::format("k{}.npy", count++));
      write_npy(p, {dtype, shape, sample_values(dtype, n)});
      std::string shape_tuple =
          shape.size() == 1 ? fmt::format("({},)", shape[0])
                            : fmt::format("({})", fmt::join(shape, ", "));
      script += fmt::format(
          "want = values('{0}', {1}).astype(np_type['{0}']).reshape({2})\n"
          "got = np.load('{3}')\n"
          "if got.dtype != want.dtype or got.shape != want.shape or not "
          "np.array_equal(got, want):\n"
          "    print('{3}: numpy read', got.dtype, got.shape, got); bad += 1\n"
          "buf = io.BytesIO(); np.save(buf, want)\n"
          "if buf.getvalue() != open('{3}', 'rb').read():\n"
          "    print('{3}: bytes differ from numpy.save'); bad += 1\n",
          dtype, n, shape_tuple, p);
    }
  script += "sys.exit(1 if bad else 0)\n";
  EXPECT_EQ(run_python(script), 0);
}

TEST_F(NpyTest, KilnReadsWhatNumpyWrites) {
  if (numpy_python().empty())
    GTEST_SKIP() << "no python3 with numpy found (tried $KILN_PYTHON, "
                    "python3, /usr/bin/python3)";
  std::string d = dir_.string();
  std::string script = fmt::format(
      "import numpy as np\n"
      "d = '{}'\n"
      "np.save(d + '/f32.npy', np.arange(24, dtype=np.float32).reshape(2, 3, "
      "4) / 8)\n"
      "np.save(d + '/f64.npy', np.array([[0.1, -2.5], [1e300, -1e-300]]))\n"
      "np.save(d + '/i32.npy', np.array([-2**31, 2**31 - 1, 7], "
      "dtype=np.int32))\n"
      "np.save(d + '/i64.npy', np.array([-2**53, 2**53, 3], dtype=np.int64))\n"
      "np.save(d + '/bool.npy', np.array([[True, False, True]]))\n"
      "np.save(d + '/scalar.npy', np.float64(-4.25))\n"
      "np.save(d + '/empty.npy', np.zeros((3, 0), dtype=np.int32))\n"
      "np.save(d + '/fortran.npy', np.asfortranarray(np.ones((2, 3))))\n"
      "np.save(d + '/big_endian.npy', np.ones(3, dtype='>f4'))\n"
      "np.save(d + '/f16.npy', np.ones(3, dtype=np.float16))\n"
      "for v in [(2, 0), (3, 0)]:\n"
      "    with open(d + '/v%d.npy' % v[0], 'wb') as f:\n"
      "        np.lib.format.write_array(f, np.arange(6, "
      "dtype=np.int64).reshape(3, 2), version=v)\n",
      d);
  ASSERT_EQ(run_python(script), 0);

  std::vector<double> f32(24);
  for (int i = 0; i < 24; ++i)
    f32[i] = i / 8.0;
  expect_same_array(read_npy(path("f32.npy")), {"f32", {2, 3, 4}, f32});
  expect_same_array(read_npy(path("f64.npy")),
                    {"f64", {2, 2}, {0.1, -2.5, 1e300, -1e-300}});
  expect_same_array(read_npy(path("i32.npy")),
                    {"i32", {3}, {-2147483648.0, 2147483647.0, 7}});
  expect_same_array(read_npy(path("i64.npy")),
                    {"i64", {3}, {-0x1p53, 0x1p53, 3}});
  expect_same_array(read_npy(path("bool.npy")), {"bool", {1, 3}, {1, 0, 1}});
  expect_same_array(read_npy(path("scalar.npy")), {"f64", {}, {-4.25}});
  expect_same_array(read_npy(path("empty.npy")), {"i32", {3, 0}, {}});
  expect_same_array(read_npy(path("v2.npy")),
                    {"i64", {3, 2}, {0, 1, 2, 3, 4, 5}});
  expect_same_array(read_npy(path("v3.npy")),
                    {"i64", {3, 2}, {0, 1, 2, 3, 4, 5}});
  expect_read_error(path("fortran.npy"), "fortran_order is True");
  expect_read_error(path("big_endian.npy"), "unsupported npy dtype '>f4'");
  expect_read_error(path("f16.npy"), "unsupported npy dtype '<f2'");
}

TEST_F(NpyTest, ReadsOtherwiseSpelledHeaders) {
  // Key order, double quotes, no trailing comma, Python 2 longs, no padding.
  std::string data(8, '\0');
  write_bytes(path("a.npy"),
              raw_npy("{\"shape\": (1L, 2L), \"fortran_order\": False, "
                      "\"descr\": \"<i4\"}",
                      data));
  expect_same_array(read_npy(path("a.npy")), {"i32", {1, 2}, {0, 0}});
  std::string tight =
      std::string("\x93NUMPY\x01\x00", 8) + std::string("\x33\x00", 2) +
      "{'descr':'<i4','fortran_order':False,'shape':(2,)}\n" + data;
  ASSERT_EQ(tight.size(), 10u + 0x33 + 8);
  write_bytes(path("b.npy"), tight);
  expect_same_array(read_npy(path("b.npy")), {"i32", {2}, {0, 0}});
}

TEST_F(NpyTest, MissingFileNamesThePath) {
  expect_read_error(path("nope.npy"), "cannot open npy file");
  expect_read_error(dir_.string(), "not a regular file");
}

TEST_F(NpyTest, BadMagicIsReported) {
  std::string good =
      raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
              std::string(4, '\0'));
  write_bytes(path("empty.npy"), "");
  expect_read_error(path("empty.npy"), "bad magic");
  std::string text = good;
  text[1] = 'P';
  write_bytes(path("bad.npy"), text);
  expect_read_error(path("bad.npy"), "bad magic");
  write_bytes(path("zip.npy"), "PK\x03\x04 this is an npz archive");
  expect_read_error(path("zip.npy"), "bad magic");
}

TEST_F(NpyTest, UnsupportedVersionsAreReported) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (), }";
  write_bytes(path("v4.npy"), raw_npy(dict, std::string(4, '\0'), 4, 0));
  expect_read_error(path("v4.npy"), "unsupported npy format version 4.0");
  write_bytes(path("v11.npy"), raw_npy(dict, std::string(4, '\0'), 1, 1));
  expect_read_error(path("v11.npy"), "unsupported npy format version 1.1");
  write_bytes(path("v0.npy"), raw_npy(dict, std::string(4, '\0'), 0, 0));
  expect_read_error(path("v0.npy"), "unsupported npy format version 0.0");
}

TEST_F(NpyTest, UnsupportedDtypesAreReported) {
  for (std::string descr : {">f4", "<f2", "<u4", "|u1", "<c8", "|b2", "f4"}) {
    std::string p = path("d.npy");
    write_bytes(p, raw_npy(fmt::format("{{'descr': '{}', 'fortran_order': "
                                       "False, 'shape': (1,), }}",
                                       descr),
                           std::string(8, '\0')));
    expect_read_error(p, fmt::format("unsupported npy dtype '{}'", descr));
  }
  write_bytes(path("s.npy"), raw_npy("{'descr': [('a', '<f4'), ('b', '<i4')], "
                                     "'fortran_order': False, 'shape': (1,), }",
                                     std::string(8, '\0')));
  expect_read_error(path("s.npy"), "structured arrays are not supported");
}

TEST_F(NpyTest, FortranOrderIsReported) {
  write_bytes(path("f.npy"),
              raw_npy("{'descr': '<f8', 'fortran_order': True, 'shape': (2, "
                      "2), }",
                      std::string(32, '\0')));
  expect_read_error(path("f.npy"), "fortran_order is True");
}

TEST_F(NpyTest, EveryTruncationIsReported) {
  write_npy(path("full.npy"), {"f32", {2, 3}, sample_values("f32", 6)});
  std::string full = read_bytes(path("full.npy"));
  ASSERT_EQ(full.size(), 128u + 24u);
  for (size_t cut = 0; cut < full.size(); ++cut) {
    SCOPED_TRACE(fmt::format("cut at {}", cut));
    write_bytes(path("cut.npy"), full.substr(0, cut));
    std::string what = cut == 0    ? "bad magic"
                       : cut < 128 ? "truncated npy header"
                                   : "truncated npy data";
    expect_read_error(path("cut.npy"), what);
  }
  write_bytes(path("long.npy"), full + "x");
  expect_read_error(path("long.npy"), "1 unexpected bytes after the npy data");
}

TEST_F(NpyTest, MalformedHeadersAreReported) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "expected '{'"},
      {"[1, 2, 3]", "expected '{'"},
      {"{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"},
      {"{'fortran_order': False, 'shape': (2,)}", "missing key 'descr'"},
      {"{'descr': '<f4', 'shape': (2,)}", "missing key 'fortran_order'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2), }",
       "a one-element shape needs a trailing comma"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }",
       "negative dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [2], }",
       "expected '('"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,, 3), }",
       "expected a dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': "
       "(99999999999999999999,), }",
       "dimension too large"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }",
       "expected True or False"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }",
       "expected '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
       "unexpected key 'x'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': "
       "(2,)}",
       "duplicate key 'descr'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } extra",
       "text after the closing '}'"},
      {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}",
       "expected '}'"},
      {"{'descr': 'a\\'b', 'fortran_order': False, 'shape': (2,)}",
       "escapes in strings are not supported"},
      {"{'descr: '<f4'}", "expected ':'"},
      {"{'descr': \"<f4", "unterminated string"},
  };
  for (const auto &[dict, what] : cases) {
    SCOPED_TRACE(dict);
    write_bytes(path("m.npy"), raw_npy(dict, std::string(8, '\0')));
    expect_read_error(path("m.npy"), "malformed npy header: " + what);
  }
  // A shape whose size overflows is caught before any allocation.
  write_bytes(path("huge.npy"),
              raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': "
                      "(4294967296, 4294967296), }",
                      std::string(8, '\0')));
  expect_read_error(path("huge.npy"), "is too large");
  write_bytes(path("big.npy"),
              raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': "
                      "(1000000000000,), }",
                      std::string(8, '\0')));
  expect_read_error(path("big.npy"), "truncated npy data");
  // A header length beyond the end of the file.
  std::string text = std::string("\x93NUMPY\x02\x00", 8) +
                     std::string("\xff\xff\xff\x7f", 4) + "{'descr'";
  write_bytes(path("len.npy"), text);
  expect_read_error(path("len.npy"), "truncated npy header");
}

TEST_F(NpyTest, BadArraysAreRefusedBeforeWriting) {
  expect_write_error({"f16", {1}, {1}}, "unknown dtype 'f16'");
  expect_write_error({"f32", {2, 3}, {1, 2, 3}},
                     "shape [2,3] has 6 elements but data has 3");
  expect_write_error({"f32", {-1}, {}}, "invalid shape [-1]");
  expect_write_error({"i32", {2}, {1, 1.5}},
                     "element 1 = 1.5 does not fit i32");
  expect_write_error({"i32", {1}, {2147483648.0}}, "does not fit i32");
  expect_write_error({"i64", {1}, {0x1p63}}, "does not fit i64");
  expect_write_error({"i64", {1}, {std::nan("")}}, "does not fit i64");
  expect_write_error({"bool", {3}, {0, 1, 2}},
                     "element 2 = 2 does not fit bool");
}

TEST_F(NpyTest, OverwritesAtomically) {
  std::string p = path("w.npy");
  write_npy(p, {"f32", {2}, {1, 2}});
  write_npy(p, {"i64", {3}, {4, 5, 6}});
  expect_same_array(read_npy(p), {"i64", {3}, {4, 5, 6}});
  EXPECT_TRUE(only_files_are({"w.npy"}));
}

TEST_F(NpyTest, FailedWriteLeavesTheOldFile) {
  std::string p = path("w.npy");
  write_npy(p, {"f32", {2}, {1, 2}});
  std::string before = read_bytes(p);

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
    write_npy(p, {"f64", {1000}, std::vector<double>(1000, 1.0)});
  } catch (const Error &e) {
    msg = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg;
  EXPECT_NE(msg.find("cannot write npy file"), std::string::npos) << msg;
  EXPECT_EQ(read_bytes(p), before);
  EXPECT_TRUE(only_files_are({"w.npy"}));

  // A missing directory is reported with the path.
  std::string missing = path("no/such/dir/x.npy");
  try {
    write_npy(missing, {"f32", {}, {1}});
    ADD_FAILURE() << "no error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos);
  }
}

// i64 values beyond 2^53 round-trip exactly (`i64`), INT64_MAX included.
TEST_F(NpyTest, I64RoundTripsExactly) {
  const int64_t big = (int64_t{1} << 62) + 1; // 4611686018427387905
  const std::vector<int64_t> v = {big, std::numeric_limits<int64_t>::max(),
                                  std::numeric_limits<int64_t>::min(), -big};
  NpyArray a{"i64", {4}, std::vector<double>(4, 0.0), v};
  write_npy(path("i.npy"), a);
  NpyArray r = read_npy(path("i.npy"));
  EXPECT_EQ(r.i64, v);
  EXPECT_EQ(r.data[0], static_cast<double>(big)); // data: rounded
  std::string bytes = read_bytes(path("i.npy"));
  int64_t last = 0;
  std::memcpy(&last, bytes.data() + bytes.size() - 8, 8);
  EXPECT_EQ(last, -big);
  a.i64.pop_back();
  fs::remove(path("i.npy"));
  expect_write_error(a, "3 exact i64 values for 4 elements");
}

// A FIFO is refused before it is opened: open() would block until a writer
// comes. The read runs on another thread so that a regression fails the
// test instead of hanging it.
TEST_F(NpyTest, FifoIsRefusedWithoutBlocking) {
  std::string p = path("fifo.npy");
  EXPECT_EQ(
      testing::error_reading_fifo(p, [](const std::string &f) { read_npy(f); }),
      p + ": cannot read npy file: not a regular file");
}

} // namespace
} // namespace kiln
