// Kernels of AmxSoftmaxTest.cpp: the softmax read in bf16, every
// combination of causal x key mask x layout, with fully dynamic shapes;
// compiled for x86-64-v4+amx (AMX tiles for both contractions).

func.func @softmax_amx_causal_nomask_bthd(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>)
      beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) {causal} -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @softmax_amx_causal_nomask_bhtd(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>)
      beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) {causal, layout = #fem.layout<bhtd>} -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @softmax_amx_causal_mask_bthd(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>)
      beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) mask(%mask : tensor<?x?xi1>) {causal} -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @softmax_amx_causal_mask_bhtd(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>)
      beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) mask(%mask : tensor<?x?xi1>) {causal, layout = #fem.layout<bhtd>} -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @softmax_amx_full_nomask_bthd(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>)
      beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @softmax_amx_full_nomask_bhtd(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>)
      beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) {layout = #fem.layout<bhtd>} -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @softmax_amx_full_mask_bthd(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>)
      beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) mask(%mask : tensor<?x?xi1>) -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @softmax_amx_full_mask_bhtd(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>)
      beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) mask(%mask : tensor<?x?xi1>) {layout = #fem.layout<bhtd>} -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}
