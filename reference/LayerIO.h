//===- LayerIO.h - Layer configurations and parameters from files -*- C++ -*-===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// Reads what a user of the authors' module holds: the constructor's
/// configuration as JSON (a `FreeEnergyMixerConfig` written with
/// `json.dump(dataclasses.asdict(cfg))`, or a manifest's "layer" entry) and
/// a state_dict saved as an `.npz` (`np.savez(path, **state_dict)`). Plain
/// C++ (the JSON reader of femtune, the .npy/.npz readers of femsupport).
///
//===----------------------------------------------------------------------===//

#ifndef FEMC_REFERENCE_LAYERIO_H
#define FEMC_REFERENCE_LAYERIO_H

#include "reference/Layer.h"

#include <optional>
#include <string>
#include <string_view>

namespace femc::tune {
struct Json;
}

namespace femc::ref {

/// The configuration in the JSON object `object` (whole numbers are
/// integers, other numbers floats). `error` names the key at fault.
std::optional<LayerConfig> layerConfigFromJson(const tune::Json &object,
                                               ConfigForm form,
                                               std::string &error);

/// Parses `text` as one JSON object and reads it as above.
std::optional<LayerConfig> parseLayerConfigJson(std::string_view text,
                                                ConfigForm form,
                                                std::string &error);

/// Reads the JSON file at `path` as above; errors start with the path.
std::optional<LayerConfig> readLayerConfig(const std::string &path,
                                           ConfigForm form, std::string &error);

/// Reads a state_dict saved as an .npz: every member, converted to float32
/// (f16, f32 or f64 members; any other dtype is an error naming it).
std::optional<ParameterMap> readParameters(const std::string &path,
                                           std::string &error);

} // namespace femc::ref

#endif // FEMC_REFERENCE_LAYERIO_H
