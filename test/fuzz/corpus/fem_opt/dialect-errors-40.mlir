// expected-error @+1 {{#fem.tiles: k must be a multiple of vec, found k = 20 and vec = 8}}
func.func private @tiles_k_vec() attributes {t = #fem.tiles<q = 64, k = 20, vec = 8>}
