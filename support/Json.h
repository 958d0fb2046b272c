//===- Json.h - a small JSON value, reader and writer -----------*- C++ -*-===//
//
// Enough JSON for the tuning database and femc's manifests, with no
// dependency beyond the C++17 library: objects keep their keys sorted (so
// writing is deterministic), duplicate keys and trailing garbage are errors,
// and every parse error names the line, column and byte offset.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_SUPPORT_JSON_H
#define FEMC_SUPPORT_JSON_H

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace femc::tune {

struct Json {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::map<std::string, Json> object;

  Json() = default;
  static Json makeBool(bool b);
  static Json makeNumber(double d);
  static Json makeString(std::string s);
  static Json makeArray();
  static Json makeObject();

  bool isNull() const { return kind == Kind::Null; }
  bool isObject() const { return kind == Kind::Object; }
  bool isArray() const { return kind == Kind::Array; }
  bool isString() const { return kind == Kind::String; }
  bool isNumber() const { return kind == Kind::Number; }
  bool isBool() const { return kind == Kind::Bool; }

  /// The member `key` of an object, or null when absent or not an object.
  const Json *get(std::string_view key) const;
  /// The member as a string / whole number / number / bool, when it is one.
  std::optional<std::string> getString(std::string_view key) const;
  std::optional<int64_t> getInteger(std::string_view key) const;
  std::optional<double> getNumber(std::string_view key) const;
  std::optional<bool> getBool(std::string_view key) const;
  /// Sets member `key` (makes this an object if it is null).
  Json &set(const std::string &key, Json value);
};

/// Where a JSON syntax error is (1-based); line 0: no position.
struct JsonPosition {
  size_t line = 0, column = 0;
};

/// Parses `text`. On failure returns false with `error` = "line L, column C
/// (byte B): what was expected, what was found", and L and C in `*where`.
bool parseJson(std::string_view text, Json &out, std::string &error,
               JsonPosition *where = nullptr);

/// Writes `value` with two-space indentation, keys in sorted order, numbers
/// that are whole and below 2^53 without a fraction, others with 17
/// significant digits, and a final newline. Same value, same bytes.
std::string writeJson(const Json &value);

/// `s` as a JSON string literal.
std::string jsonQuote(std::string_view s);

} // namespace femc::tune

#endif // FEMC_SUPPORT_JSON_H
