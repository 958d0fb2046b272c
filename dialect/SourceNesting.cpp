//===- SourceNesting.cpp - Refuse MLIR text nested too deeply -------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//

#include "dialect/SourceNesting.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/MemoryBuffer.h"

namespace mlir::fem {

std::optional<size_t> findTooDeepNesting(llvm::StringRef text,
                                         unsigned limit) {
  llvm::SmallVector<char, 64> open; // the unclosed brackets
  const size_t n = text.size();
  for (size_t i = 0; i < n; ++i) {
    char c = text[i];
    switch (c) {
    case '"': // a string literal: up to the unescaped quote or the line end
      for (++i; i < n && text[i] != '"' && text[i] != '\n'; ++i)
        if (text[i] == '\\')
          ++i;
      break;
    case '/': // a comment: up to the line end
      if (i + 1 < n && text[i + 1] == '/')
        while (i < n && text[i] != '\n')
          ++i;
      break;
    case '-': // `->` is an arrow, not a closing angle bracket
      if (i + 1 < n && text[i + 1] == '>')
        ++i;
      break;
    case '(':
    case '[':
    case '{':
    case '<':
      if (open.size() >= limit)
        return i;
      open.push_back(c);
      break;
    case '>':
      if (!open.empty() && open.back() == '<')
        open.pop_back();
      break;
    case ')':
    case ']':
    case '}': {
      // An unclosed '<' inside (e.g. a comparison in an unknown syntax)
      // ends with the bracket around it.
      while (!open.empty() && open.back() == '<')
        open.pop_back();
      char match = c == ')' ? '(' : c == ']' ? '[' : '{';
      if (!open.empty() && open.back() == match)
        open.pop_back();
      break;
    }
    default:
      break;
    }
  }
  return std::nullopt;
}

LogicalResult checkSourceNesting(const llvm::SourceMgr &sourceMgr,
                                 unsigned bufferId, MLIRContext *context,
                                 unsigned limit) {
  const llvm::MemoryBuffer *buffer = sourceMgr.getMemoryBuffer(bufferId);
  if (buffer->getBuffer().starts_with("\xEF\xBB\xBF"))
    return emitError(FileLineColLoc::get(context, buffer->getBufferIdentifier(),
                                         1, 1))
           << "the file starts with a UTF-8 byte-order mark (EF BB BF), "
              "which MLIR's parser does not accept; save it as UTF-8 "
              "without a byte-order mark";
  // A binary file (a compiled library given where the model goes, random
  // bytes): MLIR's lexer stopped at "unexpected character" and echoed the
  // bytes of the line, control characters and all, to the terminal. The
  // errors below are at column 0 ("unknown column"), which MLIR's handler
  // prints without the source line: at a real column it echoed the binary
  // line all the same (an ELF header's, NULs and escapes included).
  llvm::StringRef text = buffer->getBuffer();
  llvm::StringRef name = buffer->getBufferIdentifier();
  if (text.starts_with("\x7f"
                       "ELF"))
    return emitError(FileLineColLoc::get(context, name, 1, 0))
           << "the file is an ELF binary (a compiled library or program), "
              "not MLIR text; give the model's .mlir";
  // UTF-16 and UTF-32 text (an editor's "Unicode", PowerShell's `>`): its
  // NUL bytes made it "binary".
  const char *wide = nullptr;
  if (text.starts_with(llvm::StringRef("\xFF\xFE\0\0", 4)))
    wide = "UTF-32 text (byte-order mark FF FE 00 00)";
  else if (text.starts_with(llvm::StringRef("\0\0\xFE\xFF", 4)))
    wide = "UTF-32 text (byte-order mark 00 00 FE FF)";
  else if (text.starts_with("\xFF\xFE"))
    wide = "UTF-16 text (byte-order mark FF FE)";
  else if (text.starts_with("\xFE\xFF"))
    wide = "UTF-16 text (byte-order mark FE FF)";
  else if (text.size() >= 4 && text[0] && !text[1] && text[2] && !text[3])
    wide = "UTF-16 text (little-endian, without a byte-order mark)";
  else if (text.size() >= 4 && !text[0] && text[1] && !text[2] && text[3])
    wide = "UTF-16 text (big-endian, without a byte-order mark)";
  if (wide)
    return emitError(FileLineColLoc::get(context, name, 1, 0))
           << "the file is " << wide
           << ", which MLIR's parser does not read; save it as UTF-8 (e.g. "
              "iconv -f UTF-16 -t UTF-8)";
  if (size_t nul = text.find('\0'); nul != llvm::StringRef::npos) {
    auto [line, column] = sourceMgr.getLineAndColumn(
        llvm::SMLoc::getFromPointer(buffer->getBufferStart() + nul), bufferId);
    return emitError(FileLineColLoc::get(context, name, line, 0))
           << "the file holds a NUL byte (byte " << nul << ", line " << line
           << " column " << column << "): it is binary, not MLIR text";
  }
  std::optional<size_t> at = findTooDeepNesting(text, limit);
  if (!at)
    return success();
  auto [line, column] = sourceMgr.getLineAndColumn(
      llvm::SMLoc::getFromPointer(buffer->getBufferStart() + *at), bufferId);
  Location loc = FileLineColLoc::get(context, buffer->getBufferIdentifier(),
                                     line, column);
  return emitError(loc) << "the input nests brackets ('(', '[', '{', '<') "
                           "deeper than "
                        << limit
                        << " levels; femc's tools refuse it before parsing "
                           "(MLIR's parser recurses once per level and would "
                           "overflow its stack)";
}

} // namespace mlir::fem
