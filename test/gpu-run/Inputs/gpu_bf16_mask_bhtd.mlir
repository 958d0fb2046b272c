// GPU shape matrix (test/gpu-run/CMakeLists.txt): non-causal, bhtd, bf16, H = 4, Hkv = 4, dk = 128, dv = 128, key mask.
func.func @gpu_bf16_mask_bhtd(%q: tensor<?x4x?x128xbf16>, %k: tensor<?x4x?x128xbf16>, %v: tensor<?x4x?x128xbf16>,
    %beta_raw: tensor<512xbf16>, %lam: tensor<?x4x?x128xbf16>, %gate: tensor<?x4x?x128xbf16>, %mask: tensor<?x?xi8>) -> tensor<?x4x?x128xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x4x?x128xbf16>) k(%k : tensor<?x4x?x128xbf16>) v(%v : tensor<?x4x?x128xbf16>)
      beta_raw(%beta_raw : tensor<512xbf16>) lam(%lam : tensor<?x4x?x128xbf16>) gate(%gate : tensor<?x4x?x128xbf16>) mask(%mask : tensor<?x?xi8>) {layout = #fem.layout<bhtd>} -> tensor<?x4x?x128xbf16>
  return %out : tensor<?x4x?x128xbf16>
}
