//===- Handles.cpp - Registry of live C API handles -----------------------===//

#include "runtime/src/Handles.h"

#include <algorithm>

namespace femc::rt {

/// Tokens start well above the null page and advance by 16 so that they
/// look like (but are never used as) aligned pointers.
static constexpr uintptr_t kFirstHandle = 0xfe0000;
static constexpr uintptr_t kHandleStep = 16;

const char *handleKindName(HandleKind kind) {
  switch (kind) {
  case HandleKind::Context:
    return "femrt_context";
  case HandleKind::Module:
    return "femrt_module";
  case HandleKind::Kernel:
    return "femrt_kernel";
  case HandleKind::Device:
    return "femrt_device";
  case HandleKind::CudaModule:
    return "femrt_cuda_module";
  }
  return "femrt handle";
}

HandleRegistry::HandleRegistry() : nextHandle(kFirstHandle) {}

HandleRegistry &HandleRegistry::instance() {
  // Leaked on purpose: handles may be destroyed from static destructors.
  static HandleRegistry *registry = new HandleRegistry();
  return *registry;
}

uintptr_t HandleRegistry::add(HandleKind kind, std::shared_ptr<void> object,
                              uintptr_t parent) {
  std::lock_guard<std::mutex> lock(mutex);
  Entry *parentEntry = nullptr;
  if (parent) {
    auto it = entries.find(parent);
    if (it == entries.end())
      return 0;
    parentEntry = &it->second;
  }
  uintptr_t handle = nextHandle;
  nextHandle += kHandleStep;
  if (parentEntry)
    parentEntry->children.push_back(handle);
  entries.emplace(handle, Entry{kind, std::move(object), parent, {}});
  return handle;
}

std::shared_ptr<void> HandleRegistry::find(uintptr_t handle, HandleKind kind,
                                           std::string &error) const {
  std::lock_guard<std::mutex> lock(mutex);
  auto it = entries.find(handle);
  if (it == entries.end()) {
    error = concat(formatAddress(handle), " is not a live ",
                   handleKindName(kind),
                   " (already destroyed, destroyed with its owner, or not "
                   "created by libfemrt)");
    return nullptr;
  }
  if (it->second.kind != kind) {
    error = concat(formatAddress(handle), " is a ",
                   handleKindName(it->second.kind), ", not a ",
                   handleKindName(kind));
    return nullptr;
  }
  return it->second.object;
}

void HandleRegistry::collect(uintptr_t handle,
                             std::vector<std::shared_ptr<void>> &released) {
  auto it = entries.find(handle);
  if (it == entries.end())
    return;
  std::vector<uintptr_t> children = std::move(it->second.children);
  released.push_back(std::move(it->second.object));
  entries.erase(it);
  for (uintptr_t child : children)
    collect(child, released);
}

bool HandleRegistry::remove(uintptr_t handle, HandleKind kind,
                            std::string &error) {
  std::vector<std::shared_ptr<void>> released;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = entries.find(handle);
    if (it == entries.end() || it->second.kind != kind) {
      error = it == entries.end()
                  ? concat(formatAddress(handle), " is not a live ",
                           handleKindName(kind),
                           " (already destroyed, destroyed with its owner, or "
                           "not created by libfemrt)")
                  : concat(formatAddress(handle), " is a ",
                           handleKindName(it->second.kind), ", not a ",
                           handleKindName(kind));
      return false;
    }
    uintptr_t parent = it->second.parent;
    if (parent) {
      auto parentIt = entries.find(parent);
      if (parentIt != entries.end()) {
        std::vector<uintptr_t> &siblings = parentIt->second.children;
        siblings.erase(std::remove(siblings.begin(), siblings.end(), handle),
                       siblings.end());
      }
    }
    collect(handle, released);
  }
  // Release children before parents (they hold references to them anyway).
  while (!released.empty())
    released.pop_back();
  return true;
}

size_t HandleRegistry::size() const {
  std::lock_guard<std::mutex> lock(mutex);
  return entries.size();
}

} // namespace femc::rt
