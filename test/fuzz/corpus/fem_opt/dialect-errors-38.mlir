// expected-error @+1 {{#fem.tiles: k (keys per step) must be in [1, 1024], found 5000}}
func.func private @tiles_k() attributes {t = #fem.tiles<q = 64, k = 5000>}
