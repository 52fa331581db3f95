// Package doorward holds no code, only this test: the import rules of the
// whole module, checked against the import graph `go list` reports. It sits
// at the module root, beside go.mod, because it is about every package at
// once (`go test .` runs it), and because a test-only package here imports
// nothing, so it cannot itself break a rule it checks.
package doorward

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// rules are the import arrows that must not exist (README.md,
// "Architecture: import rules"). Together they make these layers, bottom
// up, where a package imports only from its own layer and those below:
//
//  1. internal/... (mechanisms) and config (positions and errors); neither imports the other
//  2. formats/...: wire, file and text grammars both sides share
//  3. config/<dialect>, and beside it client/... (then cmd/knock)
//  4. actions/...
//  5. detectors/...
//  6. protocols (the build's list of protocols) and, beside it, daemon
//     (the runtime, which knows no protocol)
//  7. cmd/knockd
//
// Patterns are module-relative ("formats/..." is formats and everything
// below it, as in `go list`), third-party paths are written in full, and
// "!std" is every import outside the standard library. Only the packages'
// own imports count, not their tests': a test may reach up the stack
// (config/knockdaemon replays a migrated config through daemon to prove
// it behaves the same, the detectors' tests knock with the client), and
// test code is in no binary. Files built only for another GOOS are not
// seen; today they import only the standard library.
var rules = []rule{
	{
		name:   "internal is below every protocol layer",
		from:   "internal/...",
		forbid: "formats/... config/... actions/... detectors/... client/... daemon cmd/...",
		why:    "internal/ holds mechanisms (locks, trust checks, rate limits, the spent set) that every layer uses; one that knew a protocol layer would tie the layers below that one to it",
	},
	{
		name:   "formats are leaves: no config, action, detector or runtime",
		from:   "formats/...",
		forbid: "config config/... actions/... detectors/... client/... daemon cmd/...",
		why:    "formats are the wire, file and text grammars both sides share (the sequence syntax, payloads, one-time files, the condition language); config readers, actions and the client build on them, so a format that imported config would pull the server's config layer into the client. Positions live in formats/srcpos, which config re-exports",
	},
	{
		name:   "config reads files: no actions, detectors or runtime",
		from:   "config/...",
		forbid: "actions/... detectors/... client/... daemon cmd/...",
		why:    "a config reader turns a file into positioned, validated values; what a door does is the action's and how a knock is seen is the detector's, and both are built from the config, never the other way",
	},
	{
		name:   "actions never see packets",
		from:   "actions/...",
		forbid: "detectors/... client/... daemon cmd/... github.com/gopacket/... github.com/google/gopacket/...",
		why:    "actions work on Events; kept apart from capture and decoding (and from gopacket) they are tested, replayed and reused without a packet in sight",
	},
	{
		name:   "detectors are below the runtime",
		from:   "detectors/...",
		forbid: "daemon client/... cmd/...",
		why:    "the runtime (live capture, replay, --check, reload) drives the detectors; a detector that imported it would make the runtime impossible to change without touching every protocol",
	},
	{
		name:   "the client speaks formats, not the server's config",
		from:   "client/... cmd/knock",
		forbid: "config/... actions/... detectors/... daemon",
		allow:  "config",
		why:    "knock shares only the wire formats with the server; a config dialect, a detector or an action in the client is server code shipped to every user's laptop (and the knockd.conf parser reachable from knock's input)",
	},
	{
		name:   "the runtime imports no protocol package",
		from:   "daemon daemon/...",
		forbid: "protocols @protocol",
		why:    "protocols register themselves (detectors.Register, actions.Register, knockd.RegisterLoader) and the binary lists them in package protocols; a runtime that named one would have to change for every protocol added. @protocol is every package under detectors/, actions/, config/, formats/ or client/ in a folder named after a protocol that package protocols imports",
	},
	{
		name:   "contract: detectors imports only the standard library, actions, config, config/knockd and formats/proto",
		from:   "detectors",
		forbid: "!std",
		allow:  "actions config config/knockd formats/proto",
		why:    "contracts are what every implementation imports; one way only (detectors → actions for Event, detectors → config for positions, detectors → config/knockd for the door model every dialect is read into and a Protocol's Detector is built from, detectors → formats/proto for the protocol and flag types a door's config shares), so they never form a cycle and never pull a dependency into an implementation",
	},
	{
		name:   "contract: actions imports only the standard library and config/knockd",
		from:   "actions",
		forbid: "!std",
		allow:  "config/knockd",
		why:    "the Action and Event contract is imported by every action and every detector; it must not pull anything in but the door model (config/knockd) that a protocol's action is built and reconfigured from",
	},
	{
		name:   "contract: config imports only the standard library and formats/srcpos",
		from:   "config",
		forbid: "!std",
		allow:  "formats/srcpos",
		why:    "the config contract (positions, positioned errors, raw key = value lines) is used by every config reader and the runtime; it re-exports formats/srcpos and must pull nothing else in",
	},
	{
		name:   "nothing imports a command",
		from:   "...",
		except: "cmd/...",
		forbid: "cmd/...",
		why:    "a command is wiring at the top of the graph; what another package needs from it belongs in a library package below it",
	},
}

// rule forbids the packages matched by from (minus except) to import what
// forbid matches (minus allow). Each field is a space-separated list of
// patterns.
type rule struct {
	name   string
	from   string
	except string
	forbid string
	allow  string
	why    string
}

// graph is the module's non-test import graph: each module package (by
// module-relative path) to its imports (module-relative for the module's
// own packages, in full otherwise), and which import paths are in the
// standard library.
type graph struct {
	imports map[string][]string
	std     map[string]bool
}

// violation is one arrow that runs the wrong way.
type violation struct {
	from, to string
	rule     *rule
}

func (v violation) String() string {
	forbid := v.rule.forbid
	if v.rule.allow != "" {
		forbid += " (" + v.rule.allow + " allowed)"
	}
	return fmt.Sprintf("%s imports %s: breaks rule %q\n\t%s must not import %s: %s",
		v.from, v.to, v.rule.name, v.rule.from, forbid, v.rule.why)
}

// check returns every arrow of g that a rule forbids, in package order.
func check(g graph, rules []rule) []violation {
	var out []violation
	for _, from := range slices.Sorted(maps.Keys(g.imports)) {
		for _, to := range g.imports[from] {
			for i := range rules {
				r := &rules[i]
				if r.applies(g, from) && r.forbids(g, to) {
					out = append(out, violation{from, to, r})
				}
			}
		}
	}
	return out
}

func (r *rule) applies(g graph, pkg string) bool {
	return matchAny(g, r.from, pkg) && !matchAny(g, r.except, pkg)
}

func (r *rule) forbids(g graph, imp string) bool {
	return matchAny(g, r.forbid, imp) && !matchAny(g, r.allow, imp)
}

func matchAny(g graph, patterns, path string) bool {
	for _, p := range strings.Fields(patterns) {
		if match(g, p, path) {
			return true
		}
	}
	return false
}

// match is `go list` pattern matching restricted to what the rules use:
// "..." alone is every module package, "x/..." is x and everything below
// it, "!std" is every path outside the standard library, anything else
// is one path.
func match(g graph, pattern, path string) bool {
	switch {
	case pattern == "!std":
		return !g.std[path]
	case pattern == "@protocol":
		return isProtocolPackage(g, path)
	case pattern == "...":
		_, own := g.imports[path]
		return own
	case strings.HasSuffix(pattern, "/..."):
		base := strings.TrimSuffix(pattern, "/...")
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

// protocolLayers are the folders a protocol's packages live in, each in
// a folder named after the protocol.
var protocolLayers = []string{"detectors", "actions", "config", "formats", "client"}

// protocolNames are the protocols of the build: the folder names of the
// packages that package protocols imports, so a protocol added there is
// known to the rules without a change here.
func protocolNames(g graph) map[string]bool {
	names := map[string]bool{}
	for _, imp := range g.imports["protocols"] {
		for _, layer := range protocolLayers {
			if rest, ok := strings.CutPrefix(imp, layer+"/"); ok {
				name, _, _ := strings.Cut(rest, "/")
				names[name] = true
			}
		}
	}
	return names
}

// isProtocolPackage reports whether path is a package of one of the
// build's protocols: <layer>/<protocol> or below it.
func isProtocolPackage(g graph, path string) bool {
	for _, layer := range protocolLayers {
		if rest, ok := strings.CutPrefix(path, layer+"/"); ok {
			name, _, _ := strings.Cut(rest, "/")
			return protocolNames(g)[name]
		}
	}
	return false
}

// loadGraph asks `go list` for every package of the module and everything
// they import. `go test` puts its own go first in PATH.
func loadGraph(t *testing.T) graph {
	t.Helper()
	modOut, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", stderrOf(err))
	}
	mod := strings.TrimSpace(string(modOut))
	out, err := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Standard,Imports,DepOnly,Error", "./...").Output()
	if err != nil {
		t.Fatalf("go list -deps ./...: %v", stderrOf(err))
	}
	rel := func(p string) string {
		if p == mod {
			return "."
		}
		if r, ok := strings.CutPrefix(p, mod+"/"); ok {
			return r
		}
		return p
	}
	g := graph{imports: map[string][]string{}, std: map[string]bool{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Standard   bool
			DepOnly    bool
			Imports    []string
			Error      *struct{ Err string }
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Error != nil {
			t.Fatalf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		if p.Standard {
			g.std[p.ImportPath] = true
		}
		if p.DepOnly || rel(p.ImportPath) == p.ImportPath {
			continue // not one of the module's own packages
		}
		imps := make([]string, len(p.Imports))
		for i, imp := range p.Imports {
			imps[i] = rel(imp)
		}
		g.imports[rel(p.ImportPath)] = imps
	}
	return g
}

func stderrOf(err error) error {
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		return fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return err
}

// TestImportRules checks the module's real import graph against rules.
func TestImportRules(t *testing.T) {
	g := loadGraph(t)
	// A graph that lost its packages (a go list change, a bad parse) would
	// pass every rule; so would a rule whose folders were all renamed.
	for _, pkg := range []string{"detectors", "actions", "config", "formats/otp", "config/knockd", "client/doorman", "daemon", "protocols", "cmd/knock", "internal/trust"} {
		if _, ok := g.imports[pkg]; !ok {
			t.Fatalf("go list did not report package %s; packages: %v", pkg, slices.Sorted(maps.Keys(g.imports)))
		}
	}
	// A protocols package that lost its imports would make the runtime
	// rule about nothing.
	if names := protocolNames(g); len(names) < 3 {
		t.Fatalf("protocols names %d protocols (%v), want the build's three or more", len(names), slices.Sorted(maps.Keys(names)))
	}
	if !g.std["fmt"] {
		t.Fatal("go list did not mark fmt as standard library")
	}
	for i := range rules {
		r := &rules[i]
		n := 0
		for pkg := range g.imports {
			if r.applies(g, pkg) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("rule %q is about no package (from %q): renamed folders?", r.name, r.from)
		}
	}
	for _, v := range check(g, rules) {
		t.Error(v)
	}
}

// cleanGraph is a miniature of the intended architecture: every allowed
// kind of arrow once.
func cleanGraph() graph {
	return graph{
		imports: map[string][]string{
			"internal/trust":        {"os"},
			"internal/flock":        {"internal/trust", "golang.org/x/sys/unix"},
			"formats/srcpos":        {"fmt"},
			"config":                {"formats/srcpos"},
			"formats/sequence":      {"formats/srcpos", "strings"},
			"formats/otp":           {"formats/srcpos", "formats/sequence", "internal/trust"},
			"formats/doorman":       {"internal/flock"},
			"config/knockd":         {"config", "formats/sequence"},
			"config/doorman":        {"config", "config/knockd", "formats/doorman"},
			"actions":               {"net/netip", "config/knockd"},
			"actions/journal":       {"actions", "internal/flock"},
			"actions/knockdaemon":   {"actions", "config/knockd", "formats/expr"},
			"formats/expr":          {"formats/srcpos"},
			"detectors":             {"actions", "config", "config/knockd", "net/netip"},
			"detectors/capture":     {"detectors", "github.com/gopacket/gopacket/afpacket"},
			"detectors/sequence":    {"detectors", "actions", "config/knockd", "formats/otp"},
			"client/doorman":        {"formats/doorman", "config", "internal/trust"},
			"protocols":             {"detectors/sequence", "detectors/doorman", "config/doorman"},
			"detectors/doorman":     {"detectors", "config/doorman"},
			"daemon":                {"detectors", "detectors/logtail", "actions", "actions/journal", "config/knockd"},
			"cmd/knockd":            {"daemon", "protocols", "config"},
			"cmd/knock":             {"client/doorman", "formats/doorman"},
			"cmd/knockd/internal/x": {"daemon"},
		},
		std: map[string]bool{"os": true, "fmt": true, "strings": true, "net/netip": true},
	}
}

// TestRulesCatchWrongArrows keeps the checker honest: a clean miniature
// passes, and each rule, alone, catches an arrow added the wrong way.
func TestRulesCatchWrongArrows(t *testing.T) {
	if vs := check(cleanGraph(), rules); len(vs) != 0 {
		t.Fatalf("clean graph: %v", vs)
	}
	wrong := map[string][2]string{ // rule name → the arrow it must catch
		"internal is below every protocol layer":                                                                  {"internal/trust", "config/knockd"},
		"formats are leaves: no config, action, detector or runtime":                                              {"formats/expr", "config"},
		"config reads files: no actions, detectors or runtime":                                                    {"config/knockdaemon", "actions/knockdaemon"},
		"actions never see packets":                                                                               {"actions/journal", "github.com/gopacket/gopacket/layers"},
		"detectors are below the runtime":                                                                         {"detectors/sequence", "daemon"},
		"the client speaks formats, not the server's config":                                                      {"client/doorman", "config/doorman"},
		"the runtime imports no protocol package":                                                                 {"daemon", "config/doorman"},
		"contract: detectors imports only the standard library, actions, config, config/knockd and formats/proto": {"detectors", "formats/otp"},
		"contract: actions imports only the standard library and config/knockd":                                   {"actions", "config"},
		"contract: config imports only the standard library and formats/srcpos":                                   {"config", "internal/trust"},
		"nothing imports a command":                                                                               {"daemon", "cmd/knockd/internal/x"},
	}
	for _, r := range rules {
		arrow, ok := wrong[r.name]
		if !ok {
			t.Errorf("rule %q has no wrong arrow in this test", r.name)
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			g := cleanGraph()
			if _, ok := g.imports[arrow[0]]; !ok {
				g.imports[arrow[0]] = nil
			}
			g.imports[arrow[0]] = append(g.imports[arrow[0]], arrow[1])
			var got []string
			for _, v := range check(g, rules) {
				got = append(got, v.from+" → "+v.to+": "+v.rule.name)
			}
			want := []string{arrow[0] + " → " + arrow[1] + ": " + r.name}
			if !slices.Equal(got, want) {
				t.Errorf("violations = %q, want %q", got, want)
			}
		})
	}
}

// TestRuntimeRuleFollowsProtocols: the runtime rule's protocol names come
// from package protocols' imports, so a protocol added there (one line) is
// forbidden to the runtime in every layer at once, and a package that only
// shares a layer with the protocols is not.
func TestRuntimeRuleFollowsProtocols(t *testing.T) {
	g := cleanGraph()
	g.imports["protocols"] = append(g.imports["protocols"], "detectors/fwknop")
	g.imports["daemon"] = append(g.imports["daemon"], "formats/fwknop", "client/fwknop/x", "formats/fwlog", "protocols")
	var got []string
	for _, v := range check(g, rules) {
		got = append(got, v.from+" → "+v.to+": "+v.rule.name)
	}
	const r = ": the runtime imports no protocol package"
	want := []string{"daemon → formats/fwknop" + r, "daemon → client/fwknop/x" + r, "daemon → protocols" + r}
	if !slices.Equal(got, want) {
		t.Errorf("violations = %q, want %q", got, want)
	}
}
