package knockdaemon

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doorward/doorward/config/knockd"
	"github.com/doorward/doorward/daemon"
	"github.com/doorward/doorward/detectors/logtail"
)

var update = flag.Bool("update", false, "rewrite the migration goldens (testdata/migrate/*.ini)")

const migrateDir = "testdata/migrate"

// fixtureOpener resolves includes inside testdata/migrate and names files
// by their path there, so goldens do not depend on where tests run.
func fixtureOpener(name, from string) (string, []byte, error) {
	src, err := os.ReadFile(filepath.Join(migrateDir, name))
	return name, src, err
}

// migrateFixture migrates one legacy file of testdata/migrate.
func migrateFixture(t *testing.T, base string) *Result {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(migrateDir, base))
	if err != nil {
		t.Fatal(err)
	}
	if IsDoormandCF(src) {
		return MigrateDoormand(base, src)
	}
	res, err := MigrateKnockdaemon(base, src, fixtureOpener)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func fixtures(t *testing.T) []string {
	var out []string
	for _, pat := range []string{"*.conf", "*.cf"} {
		m, _ := filepath.Glob(filepath.Join(migrateDir, pat))
		for _, f := range m {
			out = append(out, filepath.Base(f))
		}
	}
	if len(out) == 0 {
		t.Fatal("no fixtures")
	}
	return out
}

func goldenOf(base string) string {
	return filepath.Join(migrateDir, strings.TrimSuffix(strings.TrimSuffix(base, ".conf"), ".cf")+".ini")
}

// TestMigrateGoldens: each legacy config in testdata/migrate migrates to
// its .ini (go test -update rewrites them; review the diff).
func TestMigrateGoldens(t *testing.T) {
	for _, base := range fixtures(t) {
		t.Run(base, func(t *testing.T) {
			res := migrateFixture(t, base)
			golden := goldenOf(base)
			if *update {
				if err := os.WriteFile(golden, []byte(res.INI), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if res.INI != string(want) {
				t.Errorf("migration of %s differs from %s:\n%s", base, golden, diffLines(string(want), res.INI))
			}
			// Every note is in the output, as a comment.
			for _, n := range res.Notes {
				first, _, _ := strings.Cut(n, "\n")
				if !strings.Contains(res.INI, "# migrate: "+first) {
					t.Errorf("note %q is not in the output", first)
				}
			}
		})
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "line %d:\n-%s\n+%s\n", i+1, a, c)
		}
	}
	return b.String()
}

// TestMigratedConfigsLoad: every golden .ini parses with config/knockd and
// passes knockd --check (daemon.Check builds every door and action as the
// daemon would); its log formats load too. The bad-* fixtures are the
// legacy configs that cannot be carried over: their .ini must fail the
// check with the reason, at its line, rather than load something else.
func TestMigratedConfigsLoad(t *testing.T) {
	wantFail := map[string][]string{
		"bad-cipher.ini":     {`bad-cipher.ini:16: Cipher: cipher "IDEA" is not supported (supported: blowfish)`},
		"bad-perl-regex.ini": {`log format "lb": ipclient is required (the sender's address)`},
	}
	for _, base := range fixtures(t) {
		ini := goldenOf(base)
		t.Run(filepath.Base(ini), func(t *testing.T) {
			src, err := os.ReadFile(ini)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := knockd.Parse(filepath.Base(ini), src)
			if err != nil {
				t.Fatalf("knockd.Parse: %v", err)
			}
			var problems []string
			if _, err := logtail.Formats(cfg); err != nil {
				problems = append(problems, err.Error())
			}
			var out, errOut bytes.Buffer
			code := daemon.Check(daemon.Options{Config: ini, Stdout: &out, Stderr: &errOut})
			if code != 0 {
				problems = append(problems, errOut.String())
			}
			want, bad := wantFail[filepath.Base(ini)]
			switch {
			case !bad && len(problems) > 0:
				t.Fatalf("the migrated config does not load:\n%s", strings.Join(problems, "\n"))
			case bad && len(problems) == 0:
				t.Fatalf("the migrated config loads, but should fail with %q", want)
			case bad:
				all := strings.Join(problems, "\n")
				for _, w := range want {
					if !strings.Contains(all, w) {
						t.Errorf("problems:\n%s\nlack %q", all, w)
					}
				}
			}
		})
	}
}

func TestIsDoormandCF(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{"interface eth0\nfirewall-add /x\n", true},
		{"interface = eth0\n", false},
		{"interface eth0\nrunmode network\n", false},
		{"interface eth0\n<actions>\n</actions>\n", false},
		{"[options]\ninterface = eth0\n", false},
	} {
		if got := IsDoormandCF([]byte(tc.src)); got != tc.want {
			t.Errorf("IsDoormandCF(%q) = %v, want %v", tc.src, got, tc.want)
		}
	}
}
