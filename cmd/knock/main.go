// Command knock is doorward's port-knocking client.
//
// Its default mode is a drop-in replacement for Debian's knock 0.8 (the
// client of jvinet/knock):
//
//	knock [options] <host> <port[:proto]> [port[:proto]] ...
//
// and "knock NAME ..." runs another protocol's client. Each protocol's
// command line lives in its own client/ package and registers itself
// (package client); protocols.go lists the ones this build holds. This
// file only dispatches and lists them.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/doorward/doorward/client"
)

// version is doorward's version, set at build time with
// -ldflags "-X main.version=...". When empty, the module version from the
// build info is used.
var version string

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command that args[0] names, with the rest of args, or else
// the default (knockd) mode with all of them, so that every existing
// "knock host port ..." line keeps working. It returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := client.Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv, Version: doorwardVersion()}
	ctx := context.Background()
	if len(args) > 0 {
		if c, ok := client.Lookup(args[0]); ok {
			env.Name = args[0]
			return c.Run(ctx, args[1:], env)
		}
	}
	d, ok := client.Default()
	if !ok {
		fmt.Fprintln(stderr, "knock: this build has no default mode (see cmd/knock/protocols.go)")
		return 1
	}
	env.Modes = modes(client.Commands())
	return d.Run(ctx, args, env)
}

// modes is the listing of the named modes that ends the default mode's
// usage (knock -h): built from the registry, so a protocol added to
// protocols.go is listed without touching any help text.
func modes(cmds []client.Command) string {
	if len(cmds) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nother modes (knock MODE -h for their options):\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "  knock %s %s\n      %s", c.Name, c.Synopsis, c.Summary)
		for _, a := range c.Aliases {
			fmt.Fprintf(&b, " (alias: knock %s)", a)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func doorwardVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
