package journal

import (
	"errors"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashEnv = "DOORWARD_JOURNAL_CRASH"

// TestCrash runs TestHelperCrash in a child process that records open 1,
// 2, 3 and close 1, then dies by SIGKILL in the middle of a fourth record;
// the parent must get doors 2 and 3 back (and 4 if its record made it
// whole), never door 1, never a damaged entry.
func TestCrash(t *testing.T) {
	e2, e3, e4 := with(door(2), 2, 0, 0), with(door(3), 3, 0, 0), with(door(4), 4, 0, 0)
	for _, tc := range []struct {
		mode    string
		want    []Entry
		damaged int
	}{
		{"before-write", []Entry{e2, e3}, 0},
		{"torn-write", []Entry{e2, e3}, 1},
		{"after-write-before-sync", []Entry{e2, e3, e4}, 0},
		{"compaction-before-rename", []Entry{e2, e3}, 0},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCrash$")
			cmd.Env = append(os.Environ(), crashEnv+"="+tc.mode+":"+dir)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
			}
			if names := dirNames(t, dir); tc.mode == "compaction-before-rename" && len(names) != 3 {
				t.Errorf("the child should have left a temp file: %q", names)
			}
			j, got, warn := open(t, dir)
			defer j.Shutdown()
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if w := damagedWarning(dir, tc.damaged); !reflect.DeepEqual(warn, w) {
				t.Errorf("warnings %q, want %q", warn, w)
			}
			want := []string{FileName, LockName}
			if tc.damaged > 0 {
				want = []string{FileName, DamagedName, LockName}
			}
			if names := dirNames(t, dir); !slices.Equal(names, want) {
				t.Errorf("state directory holds %q, want %q", names, want)
			}
		})
	}
}

func TestHelperCrash(t *testing.T) {
	env := os.Getenv(crashEnv)
	if env == "" {
		t.Skip("run by TestCrash")
	}
	mode, dir, _ := strings.Cut(env, ":")
	j, _, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		if _, err := j.OpenDoor(door(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.CloseDoor(1); err != nil {
		t.Fatal(err)
	}
	kill := func() {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
	}
	switch mode {
	case "before-write":
		kill()
	case "torn-write":
		line, _ := encode(entryRecord(opOpen, with(door(4), 4, 0, 0)))
		j.f.Write(line[:len(line)/2])
		kill()
	case "after-write-before-sync":
		j.crash = func(point string) {
			if point == "appended" {
				kill()
			}
		}
		j.OpenDoor(door(4))
	case "compaction-before-rename":
		j.crash = func(point string) {
			if point == "compacted" {
				kill()
			}
		}
		j.Compact()
	}
	t.Fatal("still alive")
}
