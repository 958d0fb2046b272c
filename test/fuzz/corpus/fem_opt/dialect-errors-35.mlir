// expected-error @+1 {{!fem.prior expects 4 extents (B x H x T x S), found 3}}
func.func private @prior_rank(!fem.prior<softmax, 1x4x8>)
