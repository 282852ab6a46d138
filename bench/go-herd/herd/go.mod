module github.com/hackstrix/herd

go 1.24.0
