// Command knock is doorward's port-knocking client.
//
// Its default mode is a drop-in replacement for Debian's knock 0.8 (the
// client of jvinet/knock):
//
//	knock [options] <host> <port[:proto]> [port[:proto]] ...
//
// See knockd.go for the options and the deliberate differences.
package main

import (
	"io"
	"os"
)

// version is doorward's version, set at build time with
// -ldflags "-X main.version=...". When empty, the module version from the
// build info is used.
var version string

// modeFunc runs one mode of knock with the arguments after its name and
// returns the exit code.
type modeFunc func(args []string, stdout, stderr io.Writer) int

// modes holds the named subcommands: "knock NAME args..." runs modes[NAME].
// Anything else is the knockd-compatible default mode, so existing
// "knock host port ..." command lines keep working unchanged.
//
// The doorman single-packet mode ("knock doorman ...") and the knockdaemon
// port-span mode ("knock span ...") are to be registered here, each in its
// own file and its own client/ package. Registering a name shadows a host of
// the same bare name in the default mode; such a host stays reachable as
// "NAME." (fully qualified) or after the options, e.g. "knock -v NAME 1234"
// (only the first argument is checked).
var modes = map[string]modeFunc{}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if m, ok := modes[args[0]]; ok {
			return m(args[1:], stdout, stderr)
		}
	}
	return runKnockd(args, stdout, stderr)
}
