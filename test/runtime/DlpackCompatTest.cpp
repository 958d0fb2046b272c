//===- DlpackCompatTest.cpp - femrt's fallback DLPack definitions ---------===//

#include "femrt/femrt.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

extern "C" const size_t femrt_compat_dltensor_layout[];
extern "C" const size_t femrt_compat_dltensor_layout_size;

namespace {

TEST(DlpackCompat, fallbackLayoutMatchesTheHeaderInUse) {
#ifdef FEMRT_DLPACK_USING_COMPAT
  RecordProperty("dlpack", "femrt fallback (no system dlpack.h)");
#else
  RecordProperty("dlpack", "system dlpack.h");
#endif
  std::vector<size_t> expected = {
      sizeof(DLTensor),
      offsetof(DLTensor, data),
      offsetof(DLTensor, device),
      offsetof(DLTensor, ndim),
      offsetof(DLTensor, dtype),
      offsetof(DLTensor, shape),
      offsetof(DLTensor, strides),
      offsetof(DLTensor, byte_offset),
      sizeof(DLDevice),
      sizeof(DLDataType),
      offsetof(DLDataType, bits),
      offsetof(DLDataType, lanes),
      static_cast<size_t>(kDLCPU),
      static_cast<size_t>(kDLCUDA),
      static_cast<size_t>(kDLCUDAHost),
      static_cast<size_t>(kDLCUDAManaged),
      static_cast<size_t>(kDLFloat),
      static_cast<size_t>(kDLBfloat),
  };
  ASSERT_EQ(femrt_compat_dltensor_layout_size, expected.size());
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_EQ(femrt_compat_dltensor_layout[i], expected[i]) << "entry " << i;
}

TEST(DlpackCompat, lp64Layout) {
  if (sizeof(void *) != 8)
    GTEST_SKIP() << "not an LP64 target";
  // The DLPack specification's layout on 64-bit targets.
  EXPECT_EQ(sizeof(DLTensor), 48u);
  EXPECT_EQ(offsetof(DLTensor, ndim), 16u);
  EXPECT_EQ(offsetof(DLTensor, dtype), 20u);
  EXPECT_EQ(offsetof(DLTensor, byte_offset), 40u);
  EXPECT_EQ(FEMRT_DLPACK_CODE_BOOL, 6);
}

} // namespace
