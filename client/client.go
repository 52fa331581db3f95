// Package client is the contract between knock and the client protocols.
// Each protocol's client (client/sequence, client/doorman,
// client/knockdaemon) registers its command line from its own init(), and
// cmd/knock lists the build's protocols in one blank-import file, so a new
// protocol's client touches its own folder and one import line, never
// knock's dispatch or help.
//
// "knock NAME args..." runs the command registered as NAME (or one of its
// aliases); any other command line runs the default command, the
// knockd-compatible "knock host port..." of Debian's knock, so that
// existing command lines keep working. Registering a name therefore
// shadows a host of that bare name in the default mode; such a host stays
// reachable as "NAME." (fully qualified) or after an option, e.g.
// "knock -v NAME 1234" (only the first argument is checked).
package client

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Command is one of knock's modes.
type Command struct {
	// Name is the protocol's one name, as in its folders and config Type.
	Name string
	// Aliases are older spellings that keep working ("span" for
	// knockdaemon); help shows them, dispatch treats them as Name.
	Aliases []string
	// Synopsis is the arguments after "knock NAME", for knock -h
	// ("[options] host service").
	Synopsis string
	// Summary is one line, without a final period, for knock -h.
	Summary string
	// Run runs the mode with the arguments after its name and returns
	// knock's exit status. It reads and writes only through env, so a
	// test runs it in-process.
	Run func(ctx context.Context, args []string, env Env) int
}

// Env is what knock hands a command instead of the process's globals.
type Env struct {
	Stdin          io.Reader // os.Stdin in knock; a command that asks for a secret checks it for a terminal
	Stdout, Stderr io.Writer
	Getenv         func(string) string // os.Getenv in knock
	// Name is the name the command was run by, its Name or an alias, for
	// messages that quote the command line back ("knock span: ..."); ""
	// for the default command.
	Name string
	// Version is doorward's version, for the modes' version lines.
	Version string
	// Modes is knock's listing of the registered commands, which the
	// default command's usage ends with: knock -h is the default mode's
	// help, and only knock knows what the build holds.
	Modes string
}

// StdinFd returns the descriptor of env.Stdin when it is a file (knock's
// os.Stdin), for terminal checks; ok is false for anything else, which is
// then not a terminal.
func (env Env) StdinFd() (fd uintptr, ok bool) {
	f, ok := env.Stdin.(interface{ Fd() uintptr })
	if !ok {
		return 0, false
	}
	return f.Fd(), true
}

// registry holds the commands by every name they answer to. A protocol
// registers from init(), before main runs; the lock makes a late
// registration (a test) safe rather than racy.
var registry = struct {
	sync.RWMutex
	byName map[string]*Command
	dflt   *Command
}{byName: map[string]*Command{}}

// Register adds c under its name and aliases. It panics on a name or
// alias already taken, an empty or option-like name ("-x" would shadow
// the default mode's options) or a nil Run: these are programming errors
// of a protocol package, found the first time knock starts.
func Register(c Command) {
	check(c)
	registry.Lock()
	defer registry.Unlock()
	names := append([]string{c.Name}, c.Aliases...)
	for i, n := range names {
		if !validName(n) {
			panic(fmt.Sprintf("client: command %q: invalid name %q", c.Name, n))
		}
		if prev, dup := registry.byName[n]; dup || slices.Contains(names[:i], n) {
			owner := c.Name
			if dup {
				owner = prev.Name
			}
			panic(fmt.Sprintf("client: command %q: name %q is already registered by %q", c.Name, n, owner))
		}
	}
	cp := c
	cp.Aliases = slices.Clone(c.Aliases)
	for _, n := range names {
		registry.byName[n] = &cp
	}
}

// RegisterDefault makes c the command run when the first argument names
// no registered command. Its Name is used in messages only and is not
// looked up. It panics if a default is already registered.
func RegisterDefault(c Command) {
	check(c)
	registry.Lock()
	defer registry.Unlock()
	if registry.dflt != nil {
		panic(fmt.Sprintf("client: default command %q: %q is already the default", c.Name, registry.dflt.Name))
	}
	cp := c
	registry.dflt = &cp
}

func check(c Command) {
	if c.Run == nil {
		panic(fmt.Sprintf("client: command %q has no Run", c.Name))
	}
}

func validName(n string) bool {
	return n != "" && !strings.HasPrefix(n, "-") && !strings.ContainsAny(n, " \t\n")
}

// Lookup returns the command registered under name, a Name or an alias.
func Lookup(name string) (Command, bool) {
	registry.RLock()
	defer registry.RUnlock()
	c, ok := registry.byName[name]
	if !ok {
		return Command{}, false
	}
	return *c, true
}

// Default returns the default command, if one is registered.
func Default() (Command, bool) {
	registry.RLock()
	defer registry.RUnlock()
	if registry.dflt == nil {
		return Command{}, false
	}
	return *registry.dflt, true
}

// Commands returns the registered commands (not the default), each once,
// sorted by Name.
func Commands() []Command {
	registry.RLock()
	defer registry.RUnlock()
	var out []Command
	for n, c := range registry.byName {
		if n == c.Name {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b Command) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Restore returns a function that puts the registry back as it is now,
// for tests that register commands of their own.
func Restore() func() {
	registry.Lock()
	defer registry.Unlock()
	byName, dflt := maps.Clone(registry.byName), registry.dflt
	return func() {
		registry.Lock()
		defer registry.Unlock()
		registry.byName, registry.dflt = byName, dflt
	}
}
