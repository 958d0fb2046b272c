//===- Json.cpp - a small JSON value, reader and writer -------------------===//
#include "support/Json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace femc::tune {

Json Json::makeBool(bool b) {
  Json j;
  j.kind = Kind::Bool;
  j.boolean = b;
  return j;
}
Json Json::makeNumber(double d) {
  Json j;
  j.kind = Kind::Number;
  j.number = d;
  return j;
}
Json Json::makeString(std::string s) {
  Json j;
  j.kind = Kind::String;
  j.string = std::move(s);
  return j;
}
Json Json::makeArray() {
  Json j;
  j.kind = Kind::Array;
  return j;
}
Json Json::makeObject() {
  Json j;
  j.kind = Kind::Object;
  return j;
}

const Json *Json::get(std::string_view key) const {
  if (kind != Kind::Object)
    return nullptr;
  auto it = object.find(std::string(key));
  return it == object.end() ? nullptr : &it->second;
}
std::optional<std::string> Json::getString(std::string_view key) const {
  const Json *j = get(key);
  if (!j || !j->isString())
    return std::nullopt;
  return j->string;
}
std::optional<int64_t> Json::getInteger(std::string_view key) const {
  const Json *j = get(key);
  if (!j || !j->isNumber() || j->number != std::floor(j->number) ||
      std::fabs(j->number) > 9007199254740992.0)
    return std::nullopt;
  return static_cast<int64_t>(j->number);
}
std::optional<double> Json::getNumber(std::string_view key) const {
  const Json *j = get(key);
  if (!j || !j->isNumber())
    return std::nullopt;
  return j->number;
}
std::optional<bool> Json::getBool(std::string_view key) const {
  const Json *j = get(key);
  if (!j || !j->isBool())
    return std::nullopt;
  return j->boolean;
}
Json &Json::set(const std::string &key, Json value) {
  if (kind == Kind::Null)
    kind = Kind::Object;
  return object[key] = std::move(value);
}

namespace {

constexpr int kMaxDepth = 200;

class Parser {
public:
  explicit Parser(std::string_view text) : text(text) {}

  bool parseDocument(Json &out, std::string &error) {
    skipSpace();
    if (!parseValue(out, 0))
      return fail(error);
    skipSpace();
    if (pos != text.size()) {
      message = "expected the end of the document, found " + found();
      return fail(error);
    }
    return true;
  }

  /// The line and column of the last failure.
  JsonPosition position() const { return failedAt; }

private:
  std::string_view text;
  size_t pos = 0;
  std::string message;
  JsonPosition failedAt;

  bool fail(std::string &error) {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < pos && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    failedAt = {line, column};
    error = "line " + std::to_string(line) + ", column " +
            std::to_string(column) + " (byte " + std::to_string(pos) +
            "): " + message;
    return false;
  }

  std::string found() const {
    if (pos >= text.size())
      return "the end of the file";
    unsigned char c = static_cast<unsigned char>(text[pos]);
    if (c >= 0x20 && c < 0x7f)
      return std::string("'") + static_cast<char>(c) + "'";
    char buf[16];
    std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
    return buf;
  }

  void skipSpace() {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' ||
                                 text[pos] == '\n' || text[pos] == '\r'))
      ++pos;
  }

  bool literal(std::string_view word) {
    if (text.substr(pos, word.size()) != word) {
      message = "expected a JSON value, found " + found();
      return false;
    }
    pos += word.size();
    return true;
  }

  bool parseValue(Json &out, int depth) {
    if (depth > kMaxDepth) {
      message = "nesting deeper than " + std::to_string(kMaxDepth) + " levels";
      return false;
    }
    if (pos >= text.size()) {
      message = "expected a JSON value, found the end of the file";
      return false;
    }
    char c = text[pos];
    if (c == '{')
      return parseObject(out, depth);
    if (c == '[')
      return parseArray(out, depth);
    if (c == '"') {
      out.kind = Json::Kind::String;
      return parseString(out.string);
    }
    if (c == 't') {
      out = Json::makeBool(true);
      return literal("true");
    }
    if (c == 'f') {
      out = Json::makeBool(false);
      return literal("false");
    }
    if (c == 'n') {
      out = Json();
      return literal("null");
    }
    if (c == '-' || (c >= '0' && c <= '9'))
      return parseNumber(out);
    message = "expected a JSON value, found " + found();
    return false;
  }

  bool parseObject(Json &out, int depth) {
    out = Json::makeObject();
    ++pos; // {
    skipSpace();
    if (pos < text.size() && text[pos] == '}') {
      ++pos;
      return true;
    }
    while (true) {
      skipSpace();
      if (pos >= text.size() || text[pos] != '"') {
        message = "expected a member name in double quotes, found " + found();
        return false;
      }
      size_t keyAt = pos;
      std::string key;
      if (!parseString(key))
        return false;
      if (out.object.count(key)) {
        pos = keyAt;
        message = "duplicate member name " + jsonQuote(key);
        return false;
      }
      skipSpace();
      if (pos >= text.size() || text[pos] != ':') {
        message = "expected ':' after a member name, found " + found();
        return false;
      }
      ++pos;
      skipSpace();
      if (!parseValue(out.object[key], depth + 1))
        return false;
      skipSpace();
      if (pos < text.size() && text[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos < text.size() && text[pos] == '}') {
        ++pos;
        return true;
      }
      message = "expected ',' or '}' in an object, found " + found();
      return false;
    }
  }

  bool parseArray(Json &out, int depth) {
    out = Json::makeArray();
    ++pos; // [
    skipSpace();
    if (pos < text.size() && text[pos] == ']') {
      ++pos;
      return true;
    }
    while (true) {
      skipSpace();
      out.array.emplace_back();
      if (!parseValue(out.array.back(), depth + 1))
        return false;
      skipSpace();
      if (pos < text.size() && text[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos < text.size() && text[pos] == ']') {
        ++pos;
        return true;
      }
      message = "expected ',' or ']' in an array, found " + found();
      return false;
    }
  }

  static void appendUtf8(std::string &s, uint32_t cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xc0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xe0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      s += static_cast<char>(0xf0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  bool hex4(uint32_t &out) {
    out = 0;
    for (int i = 0; i < 4; ++i, ++pos) {
      if (pos >= text.size()) {
        message = "expected 4 hex digits after \\u, found the end of the file";
        return false;
      }
      char c = text[pos];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) {
        message = "expected 4 hex digits after \\u, found " + found();
        return false;
      }
      out = out * 16 + static_cast<uint32_t>(d);
    }
    return true;
  }

  bool parseString(std::string &out) {
    ++pos; // "
    out.clear();
    while (true) {
      if (pos >= text.size()) {
        message = "unterminated string: expected '\"', found the end of the "
                  "file";
        return false;
      }
      unsigned char c = static_cast<unsigned char>(text[pos]);
      if (c == '"') {
        ++pos;
        return true;
      }
      if (c < 0x20) {
        message = "control character in a string (escape it), found " +
                  found();
        return false;
      }
      if (c != '\\') {
        out += static_cast<char>(c);
        ++pos;
        continue;
      }
      ++pos;
      if (pos >= text.size()) {
        message = "unterminated escape at the end of the file";
        return false;
      }
      char e = text[pos++];
      switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        uint32_t cp = 0;
        if (!hex4(cp))
          return false;
        if (cp >= 0xd800 && cp < 0xdc00) {
          uint32_t low = 0;
          if (text.substr(pos, 2) != "\\u") {
            message = "a high surrogate \\u escape must be followed by a low "
                      "one, found " + found();
            return false;
          }
          pos += 2;
          if (!hex4(low))
            return false;
          if (low < 0xdc00 || low >= 0xe000) {
            message = "invalid low surrogate in a \\u escape";
            return false;
          }
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        } else if (cp >= 0xdc00 && cp < 0xe000) {
          message = "a lone low surrogate in a \\u escape";
          return false;
        }
        appendUtf8(out, cp);
        break;
      }
      default:
        --pos;
        message = "invalid escape in a string, found " + found();
        return false;
      }
    }
  }

  bool parseNumber(Json &out) {
    size_t start = pos;
    if (text[pos] == '-')
      ++pos;
    auto digits = [&] {
      size_t n = 0;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9')
        ++pos, ++n;
      return n;
    };
    if (pos < text.size() && text[pos] == '0') {
      ++pos;
    } else if (digits() == 0) {
      message = "expected digits in a number, found " + found();
      return false;
    }
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      if (digits() == 0) {
        message = "expected digits after '.', found " + found();
        return false;
      }
    }
    if (pos < text.size() && (text[pos] == 'e' || text[pos] == 'E')) {
      ++pos;
      if (pos < text.size() && (text[pos] == '+' || text[pos] == '-'))
        ++pos;
      if (digits() == 0) {
        message = "expected digits in an exponent, found " + found();
        return false;
      }
    }
    std::string number(text.substr(start, pos - start));
    double d = std::strtod(number.c_str(), nullptr);
    if (!std::isfinite(d)) {
      pos = start;
      message = "number " + number + " is out of range";
      return false;
    }
    out = Json::makeNumber(d);
    return true;
  }
};

void writeValue(const Json &v, int indent, std::string &out) {
  std::string pad(static_cast<size_t>(indent) * 2, ' ');
  switch (v.kind) {
  case Json::Kind::Null:
    out += "null";
    return;
  case Json::Kind::Bool:
    out += v.boolean ? "true" : "false";
    return;
  case Json::Kind::Number: {
    char buf[40];
    if (v.number == std::floor(v.number) &&
        std::fabs(v.number) < 9007199254740992.0)
      std::snprintf(buf, sizeof buf, "%lld",
                    static_cast<long long>(v.number));
    else {
      // The shortest of 15, 16 or 17 digits that reads back exactly.
      for (int digits = 15; digits <= 17; ++digits) {
        std::snprintf(buf, sizeof buf, "%.*g", digits, v.number);
        if (std::strtod(buf, nullptr) == v.number)
          break;
      }
    }
    out += buf;
    return;
  }
  case Json::Kind::String:
    out += jsonQuote(v.string);
    return;
  case Json::Kind::Array: {
    if (v.array.empty()) {
      out += "[]";
      return;
    }
    // Arrays of scalars on one line; others one element a line.
    bool flat = true;
    for (const Json &e : v.array)
      flat &= e.kind != Json::Kind::Array && e.kind != Json::Kind::Object;
    out += "[";
    for (size_t i = 0; i < v.array.size(); ++i) {
      if (flat) {
        out += i ? ", " : "";
      } else {
        out += i ? ",\n" : "\n";
        out += pad + "  ";
      }
      writeValue(v.array[i], indent + 1, out);
    }
    out += flat ? "]" : "\n" + pad + "]";
    return;
  }
  case Json::Kind::Object: {
    if (v.object.empty()) {
      out += "{}";
      return;
    }
    out += "{";
    bool first = true;
    for (const auto &[key, value] : v.object) {
      out += first ? "\n" : ",\n";
      first = false;
      out += pad + "  " + jsonQuote(key) + ": ";
      writeValue(value, indent + 1, out);
    }
    out += "\n" + pad + "}";
    return;
  }
  }
}

} // namespace

bool parseJson(std::string_view text, Json &out, std::string &error,
               JsonPosition *where) {
  out = Json();
  // A manifest or tuning database saved by an editor that writes a mark
  // got "expected a JSON value, found byte 0xef".
  if (text.substr(0, 3) == "\xEF\xBB\xBF") {
    error = "line 1, column 1 (byte 0): the file starts with a UTF-8 "
            "byte-order mark (EF BB BF), which JSON does not take; save it "
            "as UTF-8 without a byte-order mark";
    if (where)
      *where = JsonPosition{1, 1};
    return false;
  }
  Parser parser(text);
  if (parser.parseDocument(out, error))
    return true;
  if (where)
    *where = parser.position();
  return false;
}

std::string writeJson(const Json &value) {
  std::string out;
  writeValue(value, 0, out);
  out += "\n";
  return out;
}

std::string jsonQuote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    default:
      if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
    }
  }
  return out + "\"";
}

} // namespace femc::tune
