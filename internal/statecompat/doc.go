// Package statecompat holds no code, only a promise and its test: the
// state files written by a released doorward load unchanged in every
// later one.
//
// testdata/state/v1 is a state directory written by the release before
// the one-shape reshape (issue 13), with that release's own writers:
// the journal of open doors, a doorman hash archive, a port-span spent
// store, a knockdaemon state cache and a knockd one-time sequence file
// with lines used. The test loads each with today's readers and checks
// what is in it. The bytes are frozen: a change of format is a new
// directory (v2) beside it, never a regeneration of v1, because an admin's
// /var/lib/doorward was not regenerated either.
package statecompat
