//===- CText.cpp - names and literals in generated C and JSON -------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//

#include "driver/CText.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>
#include <cstdlib>

using llvm::StringRef;

namespace femc::driver {

/// `s` as a C string literal, quotes included. Printable ASCII stays; `"`,
/// `\` and `?` (trigraphs, which -std=c11 enables) are escaped; every other
/// byte (controls, UTF-8 sequences) becomes a three-digit octal escape, so
/// the literal holds exactly the bytes of `s`.
std::string cString(StringRef s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\' || c == '?') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += '\\';
      out += static_cast<char>('0' + (c >> 6));
      out += static_cast<char>('0' + ((c >> 3) & 7));
      out += static_cast<char>('0' + (c & 7));
    }
  }
  return out + "\"";
}

/// `s` for a C comment: escaped as in a string literal (one line, no
/// trigraphs), without the quotes, and with `*/` and `/*` broken up (the
/// first would end the comment, the second warns under -Wcomment).
std::string cComment(StringRef s) {
  std::string text = cString(s);
  text = text.substr(1, text.size() - 2);
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    out += text[i];
    char next = i + 1 < text.size() ? text[i + 1] : 0;
    if ((text[i] == '*' && next == '/') || (text[i] == '/' && next == '*'))
      out += '\\';
  }
  return out;
}

/// Length of the well-formed UTF-8 sequence at the start of `s`, or 0.
static size_t utf8Length(StringRef s) {
  auto c = static_cast<unsigned char>(s[0]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
                                          : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || n > s.size())
    return 0;
  uint32_t cp = n == 1 ? c : c & (0x7f >> n);
  for (size_t i = 1; i < n; ++i) {
    auto b = static_cast<unsigned char>(s[i]);
    if ((b >> 6) != 2)
      return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

/// `s` as a JSON string, quotes included. Valid UTF-8 is kept; a byte that
/// is not part of valid UTF-8 becomes U+FFFD (JSON text must be UTF-8).
std::string jsonString(StringRef s) {
  std::string out = "\"";
  while (!s.empty()) {
    auto c = static_cast<unsigned char>(s[0]);
    size_t n = utf8Length(s);
    if (n == 0) {
      out += "\\ufffd";
      n = 1;
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += s.take_front(n).str();
    }
    s = s.drop_front(n);
  }
  return out + "\"";
}

/// The file stem as a C identifier part: every byte other than an ASCII
/// letter, digit or `_` becomes `_` (femc_<this>_library).
std::string stemIdent(StringRef stem) {
  std::string out;
  for (char c : stem)
    out += (llvm::isAlnum(c) || c == '_') ? c : '_';
  return out;
}

/// Keywords of C (C23 included) and C++: the header is included from both.
static bool isKeyword(StringRef s) {
  static const char *const kKeywords[] = {
      "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand",
      "bitor", "bool", "break", "case", "catch", "char", "char16_t",
      "char32_t", "char8_t", "class", "co_await", "co_return", "co_yield",
      "compl", "concept", "const", "const_cast", "consteval", "constexpr",
      "constinit", "continue", "decltype", "default", "delete", "do",
      "double", "dynamic_cast", "else", "enum", "explicit", "export",
      "extern", "false", "float", "for", "friend", "goto", "if", "inline",
      "int", "long", "mutable", "namespace", "new", "noexcept", "not",
      "not_eq", "nullptr", "operator", "or", "or_eq", "private", "protected",
      "public", "register", "reinterpret_cast", "requires", "restrict",
      "return", "short", "signed", "sizeof", "static", "static_assert",
      "static_cast", "struct", "switch", "template", "this", "thread_local",
      "throw", "true", "try", "typedef", "typeid", "typename", "typeof",
      "typeof_unqual", "union", "unsigned", "using", "virtual", "void",
      "volatile", "wchar_t", "while", "xor", "xor_eq"};
  return llvm::is_contained(kKeywords, s);
}

/// Why `s` belongs to the C library (or the POSIX names a program commonly
/// links), or nothing. A kernel's exported entry point must not take such a
/// name: it would clash with the glue's own headers or replace the library's
/// function in the whole program.
static std::optional<std::string> libraryName(StringRef s) {
  const std::string library = "it is a name of the C or POSIX library";
  if (s == "std")
    return std::string("it is the C++ standard library's namespace");
  static const char *const kMath[] = {
      "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cbrt",
      "ceil", "copysign", "cos", "cosh", "erf", "erfc", "exp", "exp10",
      "exp2", "expm1", "fabs", "fdim", "floor", "fma", "fmax", "fmin",
      "fmod", "frexp", "hypot", "ilogb", "ldexp", "lgamma", "llrint",
      "llround", "log", "log10", "log1p", "log2", "logb", "lrint", "lround",
      "modf", "nan", "nearbyint", "nextafter", "nexttoward", "pow",
      "remainder", "remquo", "rint", "round", "scalbln", "scalbn", "sin",
      "sincos", "sinh", "sqrt", "tan", "tanh", "tgamma", "trunc"};
  for (StringRef m : kMath)
    if (s == m || s == (m + "f").str() || s == (m + "l").str())
      return library;
  static const char *const kNames[] = {
      "FILE", "NULL", "EOF", "BUFSIZ", "EXIT_FAILURE", "EXIT_SUCCESS",
      "HUGE_VAL", "INFINITY", "NAN", "RAND_MAX", "_Exit", "abort", "abs",
      "accept", "access", "aligned_alloc", "alloca", "asctime", "assert",
      "at_quick_exit", "atexit", "atof", "atoi", "atol", "atoll", "bind",
      "bsearch", "btowc", "calloc", "chdir", "clearerr", "clock", "close",
      "connect", "ctime", "difftime", "div", "dlclose", "dlerror", "dlopen",
      "dlsym", "dup", "dup2", "environ", "errno", "execv", "execve", "execvp",
      "exit", "fclose", "fcntl", "fdopen", "feof", "ferror", "fflush",
      "fgetc", "fgetpos", "fgets", "fileno", "fopen", "fork", "fprintf",
      "fputc", "fputs", "fread", "free", "freopen", "fscanf", "fseek",
      "fsetpos", "fstat", "ftell", "fwrite", "getc", "getchar", "getenv",
      "getpid", "gets", "gmtime", "j0", "j1", "jn", "kill", "labs", "ldiv",
      "listen", "llabs", "lldiv", "localeconv", "localtime", "longjmp",
      "lseek", "main", "malloc", "mblen", "mbstowcs", "mbtowc", "mkdir",
      "mktime", "mmap", "munmap", "offsetof", "open", "perror", "pipe",
      "posix_memalign", "printf", "putc", "putchar", "puts", "qsort",
      "quick_exit", "raise", "rand", "read", "realloc", "recv", "remove",
      "rename", "rewind", "rmdir", "scanf", "select", "send", "setbuf",
      "setjmp", "setlocale", "setvbuf", "signal", "sleep", "snprintf",
      "socket", "sprintf", "srand", "sscanf", "stat", "stderr", "stdin",
      "stdout", "system", "time", "timespec_get", "tmpfile", "tmpnam",
      "ungetc", "unlink", "usleep", "va_arg", "va_copy", "va_end",
      "va_start", "vfprintf", "vprintf", "vsnprintf", "vsprintf", "wait",
      "waitpid", "wcstombs", "wctomb", "write", "y0", "y1", "yn"};
  if (llvm::is_contained(kNames, s))
    return library;
  // The macros of <stdint.h> (which the header includes), and the `_t`
  // type names POSIX reserves.
  for (StringRef p : {"INT", "UINT", "SIZE_", "PTRDIFF_", "WCHAR_", "WINT_",
                      "SIG_ATOMIC_"})
    if (s.starts_with(p) &&
        (s.ends_with("_MAX") || s.ends_with("_MIN") || s.ends_with("_C")))
      return std::string("it is a <stdint.h> macro");
  if (s.ends_with("_t"))
    return std::string("names ending in _t are reserved for types (POSIX)");
  return std::nullopt;
}

/// Why `name` cannot be a C entry point (an exported function and the name
/// of its parameters in the header), or nothing if it can.
std::optional<std::string> whyNotCName(StringRef name) {
  if (name.empty())
    return std::string("it is empty");
  if (!llvm::isAlpha(name[0]))
    return std::string(name[0] == '_'
                           ? "it starts with '_' (reserved for the C "
                             "implementation and femc's generated symbols)"
                           : "it does not start with an ASCII letter");
  for (char c : name)
    if (!llvm::isAlnum(c) && c != '_')
      return std::string("it contains ") +
             (static_cast<unsigned char>(c) >= 0x80
                  ? "a non-ASCII character"
                  : "the character " + cString(StringRef(&c, 1)));
  if (isKeyword(name))
    return std::string("it is a C or C++ keyword");
  if (name.contains("__"))
    return std::string("names containing '__' are reserved in C++");
  if (name.starts_with_insensitive("femc_") ||
      name.starts_with_insensitive("femrt_"))
    return std::string("the prefixes femc_ and femrt_ belong to femc and "
                       "libfemrt");
  if (auto why = libraryName(name))
    return why;
  return std::nullopt;
}

/// The parameter name of argument #`index` in the generated C: the user's
/// name when it is a plain C name (and not `err`, `err_len` or another
/// argument's fallback `argN`), otherwise `arg<index>`.
std::string paramName(StringRef name, size_t index) {
  bool fallbackForm = name.starts_with("arg") && name.size() > 3 &&
                      llvm::all_of(name.drop_front(3), llvm::isDigit);
  if (whyNotCName(name) || name == "err" || name == "err_len" ||
      (fallbackForm && name != "arg" + std::to_string(index)))
    return "arg" + std::to_string(index);
  return name.str();
}

/// `name` quoted for a diagnostic: 'name', escaped like a C string.
std::string quoted(StringRef name) {
  std::string s = cString(name);
  return "'" + s.substr(1, s.size() - 2) + "'";
}

/// A finite double as a C (and JSON) literal that reads back to the same
/// value, with the fewest digits from %g's six up: 40 and 1e-06, not
/// 4e+01 or 9.9999999999999995e-07.
std::string cDouble(double value) {
  char buffer[32];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(buffer, sizeof buffer, "%.*g", digits, value);
    if (std::strtod(buffer, nullptr) == value)
      break;
  }
  return buffer;
}

} // namespace femc::driver
