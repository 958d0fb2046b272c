// expected-error @+1 {{unknown prior kind 'cosine', expected one of softmax, linear, gla, aft, ssm}}
func.func private @prior_unknown(!fem.prior<cosine, 1x4x8x8>)
