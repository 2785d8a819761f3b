// escape_for_message: bytes read from an input file, made safe to quote in
// an error message. A corrupt file can hold anything: invalid UTF-8, a NUL,
// terminal escape sequences. Quoted raw, those garble the terminal or a log
// and can make two different inputs look alike. Printable ASCII passes
// through; every other byte (including valid multi-byte UTF-8, which may
// hide bidirectional or other invisible controls) becomes \xNN, and a
// backslash becomes \\ so that the escaping cannot be mistaken for input.
#pragma once

#include <string>
#include <string_view>

namespace kiln {

inline std::string escape_for_message(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size());
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

} // namespace kiln
