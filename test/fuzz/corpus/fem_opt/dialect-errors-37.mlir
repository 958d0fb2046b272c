// expected-error @+1 {{#fem.tiles: q (query rows per workgroup) must be in [1, 1024], found 0}}
func.func private @tiles_q() attributes {t = #fem.tiles<q = 0, k = 64>}
