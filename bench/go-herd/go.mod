module herd-bench/go-herd

go 1.24.0

require github.com/hackstrix/herd v0.0.0

replace github.com/hackstrix/herd => ./herd
