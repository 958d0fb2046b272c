# Runs examples/embed_c's embed_c on a kernel library and checks it
# (ctest: embed.c_shared, embed.c_static).
#
#   cmake -DPROGRAM=embed_c -DLIBRARY=softmax_fem.so -DKERNEL=softmax_fem
#         -DEXPECT_SHARED=ON|OFF -P run_embed_c.cmake
#
# Fails unless the program exits with 0, lists the kernel, launches it, and
# needs libfemrt.so exactly when EXPECT_SHARED is ON (readelf -d).
foreach(var PROGRAM LIBRARY KERNEL)
  if(NOT ${var})
    message(FATAL_ERROR "run_embed_c.cmake: -D${var}=... is required")
  endif()
endforeach()
execute_process(COMMAND "${PROGRAM}" "${LIBRARY}" "${KERNEL}"
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with ${rc}")
endif()
if(NOT out MATCHES "1 kernel\\(s\\)" OR NOT out MATCHES "  ${KERNEL}  prior=")
  message(FATAL_ERROR "${PROGRAM} did not list the kernel ${KERNEL}")
endif()
if(NOT out MATCHES "launched ${KERNEL} on zero-filled tensors: ok")
  message(FATAL_ERROR "${PROGRAM} did not launch ${KERNEL}")
endif()
find_program(READELF readelf)
if(READELF)
  execute_process(COMMAND "${READELF}" -d "${PROGRAM}" OUTPUT_VARIABLE dynamic)
  if(dynamic MATCHES "libfemrt\\.so")
    set(needs_shared ON)
  else()
    set(needs_shared OFF)
  endif()
  if(NOT needs_shared STREQUAL EXPECT_SHARED)
    message(FATAL_ERROR "${PROGRAM}: needs libfemrt.so: ${needs_shared}, "
                        "expected ${EXPECT_SHARED}")
  endif()
endif()
