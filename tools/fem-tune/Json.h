//===- Json.h - moved to support/Json.h ------------------------*- C++ -*-===//
//
// The JSON value, reader and writer moved to support/Json.h (shared by
// fem-tune, fem-run, femc's tuning pass and the layer reference). This path
// stays only while reference/Layer.cpp and reference/LayerIO.cpp include it;
// remove it once they include "support/Json.h".
//
//===----------------------------------------------------------------------===//
#include "support/Json.h"
