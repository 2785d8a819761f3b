#include "ir/lexer.h"

#include "ir/error.h"
#include "ir/escape.h"

#include <fmt/format.h>

namespace kiln {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the valid UTF-8 sequence starting at s[0], or 0 when invalid
// (overlong forms, surrogates and code points past U+10FFFF included).
size_t utf8_length(std::string_view s) {
  auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char c = b(0);
  if (c < 0x80)
    return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0;
    if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90;
    if (c == 0xF4)
      hi = 0x8F;
  } else
    return 0;
  if (s.size() < n)
    return 0;
  if (b(1) < lo || b(1) > hi)
    return 0;
  for (size_t i = 2; i < n; ++i)
    if (!is_continuation(b(i)))
      return 0;
  return n;
}

} // namespace

std::string describe(const Token &t) {
  switch (t.kind) {
  case Tok::eof:
    return "end of file";
  case Tok::value:
    return fmt::format("'%{}'", t.text);
  case Tok::global:
    return fmt::format("'@{}'", t.text);
  case Tok::integer:
    return fmt::format("integer {}", t.text);
  case Tok::floating:
    return fmt::format("number {}", t.text);
  case Tok::string:
    return fmt::format("string \"{}\"", escape_for_message(t.text));
  default:
    return fmt::format("'{}'", t.text);
  }
}

void fail_at(std::string_view file, Loc loc, const std::string &msg) {
  throw Error(fmt::format("{}:{}:{}: error: {}", file, loc.line, loc.col, msg));
}

void Lexer::step() {
  char c = text_[pos_++];
  if (c == '\n') {
    ++loc_.line;
    loc_.col = 1;
  } else if (pos_ >= text_.size() || !is_continuation(text_[pos_])) {
    ++loc_.col;
  }
}

void Lexer::step_utf8(const char *where) {
  auto c = static_cast<unsigned char>(text_[pos_]);
  if (c < 0x20 && c != '\t')
    error(loc_, fmt::format("control character 0x{:02x} in {}", c, where));
  size_t n = utf8_length(text_.substr(pos_));
  if (n == 0)
    error(loc_, fmt::format("invalid UTF-8 byte 0x{:02x} in {}", c, where));
  for (size_t i = 0; i < n; ++i)
    step();
}

void Lexer::skip_space_and_comments() {
  while (pos_ < text_.size()) {
    char c = text_[pos_];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      step();
    } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/') {
      while (pos_ < text_.size() && text_[pos_] != '\n') {
        if (text_[pos_] == '\r')
          step();
        else
          step_utf8("a comment");
      }
    } else {
      return;
    }
  }
}

// Value and graph names take MLIR's identifier characters, [A-Za-z0-9_.$-],
// so that dotted module paths (fc1.weight) and the like print and parse; a
// '-' that starts '->' ends the name, so `%a->%b` reads as an alias.
bool Lexer::at_name_char() const {
  if (pos_ >= text_.size())
    return false;
  char c = text_[pos_];
  if (c == '-')
    return pos_ + 1 >= text_.size() || text_[pos_ + 1] != '>';
  return is_alpha(c) || is_digit(c) || c == '.' || c == '$';
}

Token Lexer::number(Loc start, size_t begin) {
  bool is_float = false;
  auto digits = [&] {
    size_t from = pos_;
    while (pos_ < text_.size() && is_digit(text_[pos_]))
      step();
    return pos_ > from;
  };
  digits();
  if (pos_ < text_.size() && text_[pos_] == '.') {
    is_float = true;
    step();
    digits();
  }
  if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
    is_float = true;
    step();
    if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-'))
      step();
    if (!digits())
      error(start, fmt::format("malformed number '{}'",
                               text_.substr(begin, pos_ - begin)));
  }
  if (at_name_char()) {
    while (at_name_char())
      step();
    error(start, fmt::format("malformed number '{}'",
                             text_.substr(begin, pos_ - begin)));
  }
  return {is_float ? Tok::floating : Tok::integer,
          text_.substr(begin, pos_ - begin), start};
}

Token Lexer::next() {
  skip_space_and_comments();
  Loc start = loc_;
  size_t begin = pos_;
  if (pos_ >= text_.size())
    return {Tok::eof, {}, start};
  char c = text_[pos_];
  auto single = [&](Tok kind) {
    step();
    return Token{kind, text_.substr(begin, 1), start};
  };
  auto name_after_sigil = [&](Tok kind, const char *what) {
    step();
    while (at_name_char())
      step();
    if (pos_ == begin + 1)
      error(start, fmt::format("expected a {} name after '{}'", what, c));
    return Token{kind, text_.substr(begin + 1, pos_ - begin - 1), start};
  };
  switch (c) {
  case '(':
    return single(Tok::lparen);
  case ')':
    return single(Tok::rparen);
  case '{':
    return single(Tok::lbrace);
  case '}':
    return single(Tok::rbrace);
  case '[':
    return single(Tok::lbracket);
  case ']':
    return single(Tok::rbracket);
  case ',':
    return single(Tok::comma);
  case ':':
    return single(Tok::colon);
  case '=':
    return single(Tok::equal);
  case '%':
    return name_after_sigil(Tok::value, "value");
  case '@':
    return name_after_sigil(Tok::global, "graph");
  case '"': {
    step();
    while (pos_ < text_.size() && text_[pos_] != '"') {
      if (text_[pos_] == '\n')
        error(start, "string is not closed on its line");
      step_utf8("a string");
    }
    if (pos_ >= text_.size())
      error(start, "string is not closed before the end of file");
    step();
    return {Tok::string, text_.substr(begin + 1, pos_ - begin - 2), start};
  }
  case '-': {
    step();
    if (pos_ < text_.size() && text_[pos_] == '>') {
      step();
      return {Tok::arrow, text_.substr(begin, 2), start};
    }
    if (pos_ < text_.size() && is_digit(text_[pos_]))
      return number(start, begin);
    // -inf and -nan: the printer's text for those doubles.
    std::string_view rest = text_.substr(pos_, 3);
    if (rest == "inf" || rest == "nan") {
      for (int i = 0; i < 3; ++i)
        step();
      if (!at_name_char())
        return {Tok::floating, text_.substr(begin, 4), start};
    }
    error(start, "unexpected '-'");
  }
  default:
    break;
  }
  if (is_digit(c))
    return number(start, begin);
  if (is_alpha(c)) {
    while (pos_ < text_.size() &&
           (is_alpha(text_[pos_]) || is_digit(text_[pos_])))
      step();
    std::string_view word = text_.substr(begin, pos_ - begin);
    if (word == "inf" || word == "nan")
      return {Tok::floating, word, start};
    return {Tok::ident, word, start};
  }
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x80) {
    size_t n = utf8_length(text_.substr(pos_));
    if (n == 0)
      error(start, fmt::format("invalid UTF-8 byte 0x{:02x}", u));
    error(start, fmt::format("unexpected character '{}'",
                             escape_for_message(text_.substr(pos_, n))));
  }
  if (u < 0x20 || u == 0x7f)
    error(start, fmt::format("unexpected byte 0x{:02x}", u));
  if (c == '/')
    error(start, "unexpected '/' (comments start with '//')");
  error(start, fmt::format("unexpected character '{}'", c));
}

} // namespace kiln
