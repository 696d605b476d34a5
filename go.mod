module github.com/go-flock/flock

go 1.21

require (
	go.uber.org/goleak v1.3.0
	golang.org/x/sync v0.11.0
	golang.org/x/sys v0.30.0
)
