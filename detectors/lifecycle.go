package detectors

// A detector's lifecycle across a reload, as the daemon drives it (Caddy's
// rule: build and validate while the old config serves, commit only when
// the new one is accepted as a whole):
//
//  1. Build (a kind's constructor, off the packet path, while the previous
//     detectors still serve): validate, read files, keep state in memory.
//     Building must not create, rename, resize, truncate, lock or write any
//     durable file: the config may still be rejected (an error in another
//     door, a bad action section), and the running detector is still using
//     those files.
//  2. Commit (Committer, on the packet goroutine, once every part of the
//     config was built without error): open, create or resize the files.
//     An error rejects the config; the old detectors keep serving.
//  3. Adopt (on the packet goroutine, after Commit): take over the previous
//     detector's attempts in progress and anything it recorded since step 1.
//  4. Close (io.Closer): the detector was replaced, its config rejected or
//     only checked (--check), or the daemon stops. Release every file the
//     detector still owns: a replaced detector is closed after its
//     successor's Adopt, so what Adopt handed over (an open store taken
//     over rather than copied) must no longer be closed by the old one.
//     Close must be safe on a detector that was never committed.
//
// A detector with durable state implements Committer and io.Closer; one
// without needs neither.

// Committer is a detector that opens durable files only once its config is
// accepted (step 2 above).
type Committer interface {
	Commit() error
}
