//go:build unix && !(linux && (amd64 || arm64))

package flock

// pathBufSizeForTest is the stack copy's bound where there is one; here
// the tests only need a length of path to try.
const pathBufSizeForTest = 256
