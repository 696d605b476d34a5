module github.com/go-flock/flock/bench

go 1.26.0

require (
	github.com/go-flock/flock v0.0.0-00010101000000-000000000000
	github.com/gofrs/flock v0.13.2
	golang.org/x/sys v0.49.0
)

require golang.org/x/sync v0.11.0 // indirect

replace github.com/go-flock/flock => ../
