// escape_for_message, and the places that quote input bytes through it.
#include "ir/escape.h"

#include "ir/error.h"
#include "ir/parser.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln {
namespace {

TEST(EscapeForMessage, PrintableAsciiPassesEverythingElseIsHex) {
  EXPECT_EQ(escape_for_message("w.bias[0] ok"), "w.bias[0] ok");
  EXPECT_EQ(escape_for_message(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(escape_for_message("\x1b[31mred\n\t\x7f"),
            "\\x1b[31mred\\x0a\\x09\\x7f");
  EXPECT_EQ(escape_for_message("caf\xc3\xa9 \xff"), "caf\\xc3\\xa9 \\xff");
  // A backslash in the input cannot pass for an escape.
  EXPECT_EQ(escape_for_message("\\x41"), "\\\\x41");
  EXPECT_EQ(escape_for_message(""), "");
}

// The parse error for `text`, which must fail.
std::string parse_error(const std::string &text) {
  try {
    parse(text, "t.kir");
  } catch (const Error &e) {
    return e.what();
  }
  ADD_FAILURE() << "no error parsing " << text;
  return "";
}

TEST(EscapeForMessage, ParserQuotesStringsAndCharactersEscaped) {
  // U+202E (right-to-left override) is valid UTF-8 that reorders the rest of
  // the line on a terminal.
  std::string msg = parse_error("graph @g(%x: f32[2]) \"a\xe2\x80\xae"
                                "b\"");
  EXPECT_NE(msg.find("string \"a\\xe2\\x80\\xaeb\""), std::string::npos) << msg;
  msg = parse_error("graph @g(%x: f32[2]) {\n  \xe2\x80\xae\n}\n");
  EXPECT_NE(msg.find("unexpected character '\\xe2\\x80\\xae'"),
            std::string::npos)
      << msg;
}

} // namespace
} // namespace kiln
