// The tokenizer of the .kir text form (see ir/printer.h for the grammar).
// Internal to the parser: it turns bytes into tokens with 1-based line and
// column (counted in characters, not bytes) and throws a located kiln::Error
// on bytes that cannot start a token, on invalid UTF-8 in comments and
// strings, and on malformed numbers.
#pragma once

#include <string>
#include <string_view>

namespace kiln {

struct Loc {
  int line = 1;
  int col = 1;
};

enum class Tok {
  eof,
  ident,    // graph, return, param, add, f32, true, inf ...
  value,    // %name (text without the '%')
  global,   // @name (text without the '@')
  integer,  // -12
  floating, // 0.5, -1e-08, inf, -nan (anything with '.', 'e', inf or nan)
  string,   // "text" (text without the quotes)
  lparen,
  rparen,
  lbrace,
  rbrace,
  lbracket,
  rbracket,
  comma,
  colon,
  equal,
  arrow, // ->
};

struct Token {
  Tok kind = Tok::eof;
  std::string_view text;
  Loc loc;
};

// "'%x'", "integer 3", "end of file": how a message names a token.
std::string describe(const Token &t);

// Formats and throws `FILE:LINE:COL: error: msg`.
[[noreturn]] void fail_at(std::string_view file, Loc loc,
                          const std::string &msg);

class Lexer {
public:
  Lexer(std::string_view text, std::string_view file)
      : text_(text), file_(file) {}

  Token next();

private:
  void skip_space_and_comments();
  // Checks one UTF-8 sequence at pos_ and steps over it.
  void step_utf8(const char *where);
  void step(); // one byte; updates line and column
  bool at_name_char() const;
  Token number(Loc start, size_t begin);
  [[noreturn]] void error(Loc loc, const std::string &msg) const {
    fail_at(file_, loc, msg);
  }

  std::string_view text_;
  std::string_view file_;
  size_t pos_ = 0;
  Loc loc_;
};

} // namespace kiln
