package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/doorward/doorward/client"
)

// TestProtocols: protocols.go registers every client protocol, under its
// one name, with the former names as aliases, and the knockd mode as the
// default.
func TestProtocols(t *testing.T) {
	var got []string
	for _, c := range client.Commands() {
		got = append(got, fmt.Sprintf("%s %v", c.Name, c.Aliases))
	}
	if want := []string{"doorman []", "fwknop []", "knockdaemon [span]", "rotating []"}; !slices.Equal(got, want) {
		t.Errorf("registered commands %q, want %q", got, want)
	}
	if d, ok := client.Default(); !ok || d.Name != "sequence" {
		t.Errorf("default command %q, %v; want sequence", d.Name, ok)
	}
}

// TestDispatch: the first argument, by name or alias, picks a registered
// command, which gets the rest and the name it was called by; anything
// else goes whole to the default mode, whose usage lists the registry.
func TestDispatch(t *testing.T) {
	defer client.Restore()()
	var gotArgs []string
	var gotName string
	client.Register(client.Command{
		Name: "probe", Aliases: []string{"pr"}, Synopsis: "[-x] thing", Summary: "a test mode",
		Run: func(_ context.Context, args []string, env client.Env) int {
			gotArgs, gotName = args, env.Name
			fmt.Fprint(env.Stdout, "probed")
			return 7
		},
	})
	for _, tc := range []struct {
		args     []string
		code     int
		name     string
		rest     []string
		inStdout string
	}{
		{[]string{"probe", "a", "-b"}, 7, "probe", []string{"a", "-b"}, "probed"},
		{[]string{"pr"}, 7, "pr", []string{}, "probed"},
		{[]string{"-v", "probe"}, 1, "", nil, "usage: knock "}, // an option first: the default mode's host
		{[]string{"Probe", "1:bad"}, 1, "", nil, ""},           // names are case-sensitive
		{[]string{"-h"}, 1, "", nil, "  knock probe [-x] thing\n      a test mode (alias: knock pr)\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			gotArgs, gotName = nil, ""
			var stdout, stderr strings.Builder
			code := run(tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code || gotName != tc.name || !slices.Equal(gotArgs, tc.rest) || (gotArgs == nil) != (tc.rest == nil) ||
				!strings.Contains(stdout.String(), tc.inStdout) {
				t.Errorf("exit %d, name %q, args %q, stdout %q, stderr %q; want exit %d, name %q, args %q, stdout containing %q",
					code, gotName, gotArgs, stdout.String(), stderr.String(), tc.code, tc.name, tc.rest, tc.inStdout)
			}
		})
	}
}

// TestHelpListsRegistry: knock -h lists every registered command with its
// synopsis, summary and aliases, and nothing else after "other modes".
func TestHelpListsRegistry(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run([]string{"-h"}, strings.NewReader(""), &stdout, &stderr); code != 1 {
		t.Fatalf("knock -h: exit %d, want 1 (as knock 0.8)", code)
	}
	_, listing, ok := strings.Cut(stdout.String(), "\nother modes (knock MODE -h for their options):\n")
	if !ok {
		t.Fatalf("no mode listing in %q", stdout.String())
	}
	cmds := client.Commands()
	if n := strings.Count(listing, "\n  knock "); n+1 != len(cmds) || !strings.HasPrefix(listing, "  knock ") {
		t.Errorf("listing has %d commands, registry %d:\n%s", n+1, len(cmds), listing)
	}
	for _, c := range cmds {
		if !strings.Contains(listing, "  knock "+c.Name+" "+c.Synopsis+"\n      "+c.Summary) {
			t.Errorf("listing does not show %s with its synopsis and summary:\n%s", c.Name, listing)
		}
		for _, a := range c.Aliases {
			if strings.Count(listing, "knock "+a) != 1 {
				t.Errorf("listing does not name alias %s once:\n%s", a, listing)
			}
		}
	}
}
