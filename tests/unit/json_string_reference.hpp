#pragma once

// The JSON string escaping rules written out one byte at a time: the reference the block-wise
// renderer's tests compare against (codec_render_blocks_test, codec_render_tokens_test).

#include <simdjson.h>

#include <string>
#include <string_view>

namespace sluice::test {

/// The escaping rules, one byte at a time: `"` and `\` escaped, \b \f \n \r \t by their short
/// forms, other control characters as \u00xx (lowercase hex), DEL and `/` as they are; valid UTF-8
/// copied; in a string that is not valid UTF-8, each complete valid sequence copied and every
/// other byte at or above 0x80 replaced by \ufffd.
inline std::string reference_json_string(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  const bool valid = simdjson::validate_utf8(s.data(), s.size());
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      switch (c) {
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
      }
    } else if (c < 0x80 || valid) {
      out += static_cast<char>(c);
    } else {
      size_t len = 0;
      for (size_t n = 2; n <= 4 && len == 0; ++n)
        if (i + n <= s.size() && simdjson::validate_utf8(s.data() + i, n))
          len = n;
      if (len == 0) {
        out += "\\ufffd";
      } else {
        out.append(s.data() + i, len);
        i += len;
        continue;
      }
    }
    ++i;
  }
  out += '"';
  return out;
}

} // namespace sluice::test
