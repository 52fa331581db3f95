//go:build unix

package otp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doorward/doorward/formats/sequence"
)

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string)
		want    string // substring of Open's error; "" for success
		current string
	}{{
		name:  "missing",
		setup: func(*testing.T, string) {},
		want:  "no such file or directory",
	}, {
		name: "directory",
		setup: func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		},
		want: "is a directory",
	}, {
		name: "fifo",
		setup: func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		},
		want: "not a regular file",
	}, {
		name: "read-only",
		setup: func(t *testing.T, path string) {
			if os.Geteuid() == 0 {
				t.Skip("root may write a read-only file")
			}
			if err := os.WriteFile(path, []byte(" 1,2\n"), 0o400); err != nil {
				t.Fatal(err)
			}
		},
		want: "permission denied",
	}, {
		name: "larger than MaxFileSize",
		setup: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(" 1,2\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, MaxFileSize+1); err != nil {
				t.Fatal(err)
			}
		},
		want: fmt.Sprintf("file is %d bytes, more than the %d allowed", MaxFileSize+1, MaxFileSize),
	}, {
		// One line of NULs: a problem, not a crash.
		name: "MaxFileSize bytes",
		setup: func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, MaxFileSize); err != nil {
				t.Fatal(err)
			}
		},
		want: "no valid unused sequence line (knockd refuses such a file); add one (1 lines skipped, first: ",
	}, {
		// knockd refuses a file with no valid line at start; so do we
		// (issue 12 item 13).
		name: "no sequence yet",
		setup: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("# add lines here\n#001,2002\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		want: "otp.seq: no valid unused sequence line (knockd refuses such a file); add one",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "otp.seq")
			tt.setup(t, path)
			f, err := Open(path)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Open: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Open: error %v, want one containing %q", err, tt.want)
			case err == nil && current(f) != tt.current:
				t.Fatalf("Current: %s, want %s", current(f), tt.current)
			}
		})
	}
}

// The kill test. TestKill runs this test binary again as a child that opens
// a copy of a fixture and uses its current sequence, killing itself with
// SIGKILL at one step of Use. The child writes the opened file only after
// Use returned nil, standing in for opening the door.
//
// SIGKILL proves the ordering: nothing is accepted before the '#' is
// written and fsynced, and the file is never left in a state other than
// "unchanged" or "one '#' on the used line". A process kill does not lose
// the page cache, so it cannot show what a power cut would; that is what
// the fsync before returning addresses, and no unit test can cut the power.
const (
	envStep   = "OTP_TEST_KILL_STEP"
	envFile   = "OTP_TEST_FILE"
	envOpened = "OTP_TEST_OPENED"
)

func TestHelperProcess(t *testing.T) {
	step := os.Getenv(envStep)
	if step == "" {
		t.Skip("the child of TestKill")
	}
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		os.Exit(3)
	}
	f, err := load(os.Getenv(envFile))
	if err != nil {
		fail("Open: %v", err)
	}
	seq, _, ok := f.Current()
	if !ok {
		fail("no current sequence")
	}
	err = f.use(seq, func(s string) {
		if s != step {
			return
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		for {
			time.Sleep(time.Second) // until the signal lands
		}
	})
	if err != nil {
		fail("Use: %v", err)
	}
	if err := os.WriteFile(os.Getenv(envOpened), []byte("OPENED "+sequence.Format(seq)), 0o600); err != nil {
		fail("%v", err)
	}
	os.Exit(0)
}

func TestKill(t *testing.T) {
	type outcome struct {
		Killed, Marked, Opened bool
	}
	steps := []struct {
		step string
		want outcome
	}{
		{stepOpen, outcome{Killed: true}},
		{stepOpened, outcome{Killed: true}},
		{stepVerified, outcome{Killed: true}},
		// The '#' is in the page cache: the sequence is lost, never
		// accepted, and never replayable.
		{stepWritten, outcome{Killed: true, Marked: true}},
		{stepSynced, outcome{Killed: true, Marked: true}},
		{stepClosed, outcome{Killed: true, Marked: true}},
		{"none", outcome{Marked: true, Opened: true}},
	}
	for _, fixture := range []string{"ots.seq", "ots2.seq", "crlf.seq", "messy.seq"} {
		orig, err := os.ReadFile(filepath.Join("testdata", fixture))
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range steps {
			t.Run(fixture+"/"+tt.step, func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, fixture)
				opened := filepath.Join(dir, "OPENED")
				if err := os.WriteFile(path, orig, 0o600); err != nil {
					t.Fatal(err)
				}
				f, err := load(path)
				if err != nil {
					t.Fatal(err)
				}
				seq, line, ok := f.Current()
				if !ok {
					t.Fatal("fixture has no current sequence")
				}

				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
				cmd.Env = append(os.Environ(), envStep+"="+tt.step, envFile+"="+path, envOpened+"="+opened)
				out, err := cmd.CombinedOutput()
				var got outcome
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
					got.Killed = true
				} else if err != nil {
					t.Fatalf("child: %v\n%s", err, out)
				}
				if b, err := os.ReadFile(opened); err == nil {
					if want := "OPENED " + sequence.Format(seq); string(b) != want {
						t.Fatalf("side file %q, want %q", b, want)
					}
					got.Opened = true
				} else if !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}

				// The invariant: the file is the original, or the original
				// with one '#' over the first byte of the used line.
				after, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				marked := bytes.Clone(orig)
				marked[lineStart(orig, line)] = '#'
				switch {
				case bytes.Equal(after, orig):
				case bytes.Equal(after, marked):
					got.Marked = true
				default:
					t.Fatalf("file is neither the original nor the original with line %d marked:\n%q", line, after)
				}

				// The door opened only for a marked sequence, and a reopened
				// file (a restarted daemon) never offers the used line again.
				g, err := load(path)
				if err != nil {
					t.Fatal(err)
				}
				_, now, ok := g.Current()
				if got.Marked == (ok && now == line) {
					t.Errorf("after restart Current is line %d (ok=%v); used line %d, marked %v", now, ok, line, got.Marked)
				}
				if got != tt.want {
					t.Errorf("got %+v, want %+v\nchild output:\n%s", got, tt.want, out)
				}
			})
		}
	}
}

// lineStart returns the offset of 1-based line n of data.
func lineStart(data []byte, n int) int {
	off := 0
	for ; n > 1; n-- {
		off += bytes.IndexByte(data[off:], '\n') + 1
	}
	return off
}
