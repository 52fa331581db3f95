package caps

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestString(t *testing.T) {
	for _, tc := range []struct {
		set  Set
		want string
	}{
		{0, ""},
		{Of(unix.CAP_NET_RAW, unix.CAP_NET_ADMIN), "cap_net_admin,cap_net_raw"},
		{Of(unix.CAP_CHOWN, unix.CAP_CHECKPOINT_RESTORE, 50), "cap_chown,cap_checkpoint_restore,cap_50"},
	} {
		if got := tc.set.String(); got != tc.want {
			t.Errorf("%#x: %q, want %q", uint64(tc.set), got, tc.want)
		}
	}
}

// TestStatus reads this process's sets as the kernel reports them: the
// effective set is within the permitted one, the permitted within the
// bounding one (no capability can be gained past it).
func TestStatus(t *testing.T) {
	st, err := Status(0)
	if err != nil {
		t.Fatal(err)
	}
	same, err := Status(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.Bounding == 0 || st.Bounding != same.Bounding {
		t.Errorf("bounding set %q, by pid %q", st.Bounding, same.Bounding)
	}
	if st.Effective&^st.Permitted != 0 || st.Permitted&^st.Bounding != 0 {
		t.Errorf("sets out of order: %+v", st)
	}
}
