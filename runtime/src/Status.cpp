//===- Status.cpp - Errors, messages, versions ----------------------------===//

#include "runtime/src/Status.h"

#include <cstdio>

namespace femc::rt {

namespace {
struct LastError {
  std::string message;
  /// Set instead of `message` when storing the message failed.
  const char *fallback = nullptr;
};
thread_local LastError lastErrorStorage;
} // namespace

femrt_status fail(femrt_status status, const std::string &message) noexcept {
  LastError &last = lastErrorStorage;
  try {
    last.message = message;
    last.fallback = nullptr;
  } catch (...) {
    last.fallback = "out of memory while recording the error message";
  }
  return status;
}

const char *lastError() noexcept {
  const LastError &last = lastErrorStorage;
  return last.fallback ? last.fallback : last.message.c_str();
}

std::string formatAddress(uintptr_t address) {
  char buffer[2 + 2 * sizeof(uintptr_t) + 1];
  std::snprintf(buffer, sizeof(buffer), "0x%llx",
                static_cast<unsigned long long>(address));
  return buffer;
}

std::string formatPointer(const void *pointer) {
  return formatAddress(reinterpret_cast<uintptr_t>(pointer));
}

} // namespace femc::rt

using namespace femc::rt;

extern "C" {

const char *femrt_status_string(femrt_status status) {
  switch (status) {
  case FEMRT_OK:
    return "FEMRT_OK";
  case FEMRT_ERROR_INVALID_ARGUMENT:
    return "FEMRT_ERROR_INVALID_ARGUMENT";
  case FEMRT_ERROR_SHAPE_MISMATCH:
    return "FEMRT_ERROR_SHAPE_MISMATCH";
  case FEMRT_ERROR_DTYPE:
    return "FEMRT_ERROR_DTYPE";
  case FEMRT_ERROR_DEVICE:
    return "FEMRT_ERROR_DEVICE";
  case FEMRT_ERROR_ALIGNMENT:
    return "FEMRT_ERROR_ALIGNMENT";
  case FEMRT_ERROR_ALIASING:
    return "FEMRT_ERROR_ALIASING";
  case FEMRT_ERROR_NOT_FOUND:
    return "FEMRT_ERROR_NOT_FOUND";
  case FEMRT_ERROR_ABI_VERSION:
    return "FEMRT_ERROR_ABI_VERSION";
  case FEMRT_ERROR_IO:
    return "FEMRT_ERROR_IO";
  case FEMRT_ERROR_NO_CUDA_DEVICE:
    return "FEMRT_ERROR_NO_CUDA_DEVICE";
  case FEMRT_ERROR_CUDA:
    return "FEMRT_ERROR_CUDA";
  case FEMRT_ERROR_OUT_OF_MEMORY:
    return "FEMRT_ERROR_OUT_OF_MEMORY";
  case FEMRT_ERROR_INTERNAL:
    return "FEMRT_ERROR_INTERNAL";
  case FEMRT_ERROR_INVALID_HANDLE:
    return "FEMRT_ERROR_INVALID_HANDLE";
  case FEMRT_ERROR_LAYOUT:
    return "FEMRT_ERROR_LAYOUT";
  case FEMRT_ERROR_INVALID_LIBRARY:
    return "FEMRT_ERROR_INVALID_LIBRARY";
  case FEMRT_ERROR_UNSUPPORTED:
    return "FEMRT_ERROR_UNSUPPORTED";
  }
  return "FEMRT_ERROR_UNKNOWN";
}

const char *femrt_last_error(void) { return lastError(); }

femrt_status femrt_version(int *out_major, int *out_minor, int *out_patch) {
  if (out_major)
    *out_major = FEMRT_VERSION_MAJOR;
  if (out_minor)
    *out_minor = FEMRT_VERSION_MINOR;
  if (out_patch)
    *out_patch = FEMRT_VERSION_PATCH;
  return FEMRT_OK;
}

uint32_t femrt_kernel_abi_version(void) { return FEMRT_KERNEL_ABI_VERSION; }

} // extern "C"
