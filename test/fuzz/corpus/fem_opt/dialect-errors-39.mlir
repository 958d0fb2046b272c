// expected-error @+1 {{#fem.tiles: vec must be 0 (target default), 4, 8 or 16, found 6}}
func.func private @tiles_vec() attributes {t = #fem.tiles<q = 64, k = 64, vec = 6>}
