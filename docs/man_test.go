package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	kdaction "github.com/doorward/doorward/actions/knockdaemon"
	"github.com/doorward/doorward/config/doorman"
	"github.com/doorward/doorward/config/knockd"
	kdetect "github.com/doorward/doorward/detectors/knockdaemon"
)

// usageOption is an option as a usage text writes it: a dash or two
// after a space, "[", "(" or the start of a line.
var usageOption = regexp.MustCompile(`(?m)(?:^|[\s\[(,])(--?[A-Za-z0-9][A-Za-z0-9_-]*)`)

// TestManPagesNameEveryOption: the man pages are written by hand, so an
// option added to a usage text, or a key to a config reader, without a
// word in its man page fails here.
func TestManPagesNameEveryOption(t *testing.T) {
	pages := []struct {
		page   string
		usages []string // "file:const" holding a usage text
	}{
		{"man/knockd.8", []string{"../cmd/knockd/flags.go:usage"}},
		{"man/knock.1", []string{
			"../client/sequence/cli.go:knockdUsage",
			"../client/sequence/rotating.go:rotatingUsage",
			"../client/doorman/cli.go:doormanUsage",
			"../client/knockdaemon/cli.go:usage",
		}},
	}
	for _, p := range pages {
		text := manText(t, p.page)
		for _, u := range p.usages {
			file, name, _ := strings.Cut(u, ":")
			usage := stringConst(t, file, name)
			opts := usageOption.FindAllStringSubmatch(usage, -1)
			if len(opts) < 5 {
				t.Fatalf("%s: only %d options found in %s", file, len(opts), name)
			}
			for _, m := range opts {
				if !hasWord(text, m[1]) {
					t.Errorf("%s does not name %s (in %s's %s)", p.page, m[1], file, name)
				}
			}
		}
	}
}

// TestManPageNamesEveryConfigKey: knockd.conf(5) names every key of
// [options], of each protocol's doors and of knockdaemon's actions, with
// its aliases, as the readers accept them.
func TestManPageNamesEveryConfigKey(t *testing.T) {
	text := manText(t, "man/knockd.conf.5")
	var keys []string
	for _, ks := range [][]knockd.Key{knockd.OptionKeys(), knockd.DoorKeys()} {
		for _, k := range ks {
			keys = append(keys, k.Name)
			keys = append(keys, k.Aliases...)
		}
	}
	keys = append(keys, doorman.DoorKeys()...)
	keys = append(keys, kdetect.Directives()...)
	keys = append(keys, kdaction.ActionKeys()...)
	for _, k := range keys {
		if !hasWord(text, k) {
			t.Errorf("knockd.conf.5 does not name the key %s", k)
		}
	}
}

// manText is a page's text as the reader sees it, near enough for
// finding words: roff's escaped dashes plain, font changes removed.
func manText(t *testing.T, path string) string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer(`\-`, "-", `\fB`, "", `\fI`, "", `\fR`, "", `\fP`, "", `\&`, "")
	var b strings.Builder
	for _, line := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(line, `.\"`) {
			continue // comments name things without documenting them
		}
		b.WriteString(r.Replace(line))
		b.WriteByte('\n')
	}
	return b.String()
}

// hasWord reports whether w appears in text not as part of a longer
// option or key (so "-i" is not found in "--interface").
func hasWord(text, w string) bool {
	re := regexp.MustCompile(`(?:^|[^A-Za-z0-9_-])` + regexp.QuoteMeta(w) + `(?:$|[^A-Za-z0-9_])`)
	return re.MatchString(text)
}

// stringConst is the value of the string constant name in a Go file:
// the usage texts are unexported constants of main and client packages.
func stringConst(t *testing.T, file, name string) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if n.Name != name || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s: %s is not a string literal", file, name)
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
	}
	t.Fatalf("%s: no constant %s", file, name)
	return ""
}

// TestManPagesVersion: each page's title line carries the version knockd
// -V prints, so a release that bumps one bumps the other.
func TestManPagesVersion(t *testing.T) {
	want := `"Doorward ` + stringConst(t, "../cmd/knockd/main.go", "version") + `"`
	for _, page := range []string{"man/knockd.8", "man/knock.1", "man/knockd.conf.5"} {
		src, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		th := regexp.MustCompile(`(?m)^\.TH .*$`).FindString(string(src))
		if !strings.Contains(th, want) {
			t.Errorf("%s: title line %q does not carry %s", page, th, want)
		}
	}
}
