//===- Handles.h - Registry of live C API handles ---------------*- C++ -*-===//
//
// The C API never hands out pointers to runtime objects. A handle is an
// integer token (cast to the opaque pointer type) that names an entry in a
// process-wide registry; the entry owns a std::shared_ptr to the object.
// Tokens are never reused, so a handle used after its object was destroyed,
// a double destroy, or a handle of another kind is detected on every call
// without ever touching freed memory.
//
// Handles form a tree (context -> modules -> kernels, context -> devices ->
// CUDA modules); removing a handle removes its descendants. The registry
// only owns one reference: a call in flight keeps the objects it uses alive
// through its own shared_ptr copies, so destroying a handle while another
// thread uses it is safe.
//
//===----------------------------------------------------------------------===//
#ifndef FEMRT_SRC_HANDLES_H
#define FEMRT_SRC_HANDLES_H

#include "runtime/src/Status.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace femc::rt {

enum class HandleKind : uint8_t { Context, Module, Kernel, Device, CudaModule };

/// "femrt_context", "femrt_module", ...
const char *handleKindName(HandleKind kind);

class HandleRegistry {
public:
  /// The process-wide registry (never destroyed, so handles stay checkable
  /// during static destruction).
  static HandleRegistry &instance();

  /// Registers `object` as a child of `parent` (0: no parent) and returns
  /// its new handle, or 0 when `parent` is not live any more.
  uintptr_t add(HandleKind kind, std::shared_ptr<void> object,
                uintptr_t parent);

  /// The object of live handle `handle` of kind `kind`; otherwise null and
  /// `error` says why ("is not a live ...", "is a femrt_kernel, not ...").
  std::shared_ptr<void> find(uintptr_t handle, HandleKind kind,
                             std::string &error) const;

  /// Removes `handle` (of kind `kind`) and all its descendants. Returns
  /// false with `error` set when the handle is not live or of another kind.
  /// The objects are released after the registry's lock is dropped.
  bool remove(uintptr_t handle, HandleKind kind, std::string &error);

  /// The number of live handles (for tests).
  size_t size() const;

private:
  struct Entry {
    HandleKind kind;
    std::shared_ptr<void> object;
    uintptr_t parent;
    std::vector<uintptr_t> children;
  };

  void collect(uintptr_t handle, std::vector<std::shared_ptr<void>> &released);

  mutable std::mutex mutex;
  std::unordered_map<uintptr_t, Entry> entries;
  uintptr_t nextHandle;

  HandleRegistry();
};

/// Converts between registry tokens and the C API's opaque handle types.
template <typename Handle>
Handle *toHandle(uintptr_t token) {
  return reinterpret_cast<Handle *>(token);
}
template <typename Handle>
uintptr_t fromHandle(Handle *handle) {
  return reinterpret_cast<uintptr_t>(handle);
}

/// Looks up `handle` as an object of type T (which names its kind in
/// `T::handleKind`). On failure sets the last error (naming `function` and
/// the parameter `param`) and returns its status: INVALID_ARGUMENT for NULL,
/// INVALID_HANDLE otherwise.
template <typename T, typename Handle>
femrt_status lookup(Handle *handle, const char *function, const char *param,
                    std::shared_ptr<T> &out) {
  if (!handle)
    return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                concat(function, ": ", param, " is NULL"));
  std::string error;
  std::shared_ptr<void> object =
      HandleRegistry::instance().find(fromHandle(handle), T::handleKind, error);
  if (!object)
    return fail(FEMRT_ERROR_INVALID_HANDLE,
                concat(function, ": ", param, " ", error));
  out = std::static_pointer_cast<T>(std::move(object));
  return FEMRT_OK;
}

/// Destroys `handle` of kind T::handleKind: NULL is a no-op, a handle that
/// is not live is FEMRT_ERROR_INVALID_HANDLE.
template <typename T, typename Handle>
femrt_status destroyHandle(Handle *handle, const char *function,
                           const char *param) {
  if (!handle)
    return FEMRT_OK;
  std::string error;
  if (!HandleRegistry::instance().remove(fromHandle(handle), T::handleKind,
                                         error))
    return fail(FEMRT_ERROR_INVALID_HANDLE,
                concat(function, ": ", param, " ", error));
  return FEMRT_OK;
}

/// Checks that an out parameter is not NULL.
inline femrt_status checkOut(const void *out, const char *function,
                             const char *param) {
  if (!out)
    return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                concat(function, ": ", param, " is NULL"));
  return FEMRT_OK;
}

} // namespace femc::rt

#endif // FEMRT_SRC_HANDLES_H
