//===- ElfCheck.h - Checking a shared object before dlopen ------*- C++ -*-===//
#ifndef FEMRT_SRC_ELFCHECK_H
#define FEMRT_SRC_ELFCHECK_H

#include "runtime/src/Status.h"

namespace femc::rt {

/// Checks that `path` can be handed to dlopen without crashing the loader:
/// a regular file, at least an ELF header long, with the ELF magic, of this
/// host's class (64-bit), byte order and machine (e_machine), a shared
/// object (ET_DYN), with its program and section header tables and every
/// PT_LOAD / PT_DYNAMIC segment's file range inside the file. On failure
/// sets the last error ("<function>: '<path>' is ...") and returns
/// FEMRT_ERROR_IO.
femrt_status checkElfLibrary(const char *function, const char *path);

/// Checks a CUDA module image of `size` bytes before the driver reads it
/// (cuModuleLoadData takes no size, so it reads as far as the headers say):
/// an ELF image must be a 64-bit little-endian cubin (EM_CUDA) whose header
/// tables, sections and segments lie within `size` bytes; a fatbin's header
/// must fit, and the size it gives too. Other images (PTX text) pass. On
/// failure sets the last error ("<function>: the cubin image is ...") and
/// returns FEMRT_ERROR_INVALID_ARGUMENT.
femrt_status checkCudaImage(const char *function, const void *image,
                            size_t size);

} // namespace femc::rt

#endif // FEMRT_SRC_ELFCHECK_H
