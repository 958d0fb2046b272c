# Installs the libfemrt of a femc build into a fresh prefix and checks that
# the package is complete (ctest: embed.install).
#
#   cmake -DRUNTIME_BUILD_DIR=build/runtime -DPREFIX=/tmp/p -P install_runtime.cmake
#
# Installs from the runtime's own build folder, so only libfemrt's install
# rules run, whatever else the femc build may install.
foreach(var RUNTIME_BUILD_DIR PREFIX)
  if(NOT ${var})
    message(FATAL_ERROR "install_runtime.cmake: -D${var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE "${PREFIX}")
execute_process(
  COMMAND "${CMAKE_COMMAND}" --install "${RUNTIME_BUILD_DIR}" --prefix "${PREFIX}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install ${RUNTIME_BUILD_DIR} failed: ${rc}")
endif()
file(GLOB_RECURSE config "${PREFIX}/*/femrtConfig.cmake")
file(GLOB_RECURSE shared "${PREFIX}/*/libfemrt.so")
file(GLOB_RECURSE static "${PREFIX}/*/libfemrt.a")
foreach(what config shared static)
  if(NOT ${what})
    message(FATAL_ERROR "the install of libfemrt into ${PREFIX} has no ${what} "
                        "(femrtConfig.cmake, libfemrt.so, libfemrt.a)")
  endif()
endforeach()
foreach(header femrt.h kernel_abi.h dlpack_compat.h)
  if(NOT EXISTS "${PREFIX}/include/femrt/${header}")
    message(FATAL_ERROR "the install has no include/femrt/${header}")
  endif()
endforeach()
message(STATUS "libfemrt installed into ${PREFIX}: ${config}")
