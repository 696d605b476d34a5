// Package fuzz holds the fuzz tests of package flock. It has no code of its
// own; the tests use the flock package through its public API only.
//
//   - FuzzOps runs random sequences of operations (Open, Close, Lock, RLock,
//     TryLock, TryRLock, LockContext and RLockContext with ended contexts,
//     Unlock, RUnlock, RLocker, File) by a few goroutines over handles on a
//     few files, some reached through symbolic and hard links, and compares
//     every result with a model of RWMutex semantics. After every step a
//     helper process reports what another process sees of each file.
//   - FuzzOpen (Unix) opens arbitrary paths with arbitrary options inside a
//     sandbox: no panic, nothing created outside the sandbox or anywhere on
//     failure, every error an *fs.PathError naming the path.
//
// Run them with .ci/fuzz.sh, or one at a time:
//
//	go test ./fuzz -run '^$' -fuzz '^FuzzOps$' -fuzztime 30s
package fuzz
