package otp

import (
	"os"
	"syscall"
	"time"
)

// ctime is the inode change time: it moves even when a tool restores the
// mtime after writing.
func ctime(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Unix())
	}
	return time.Time{}
}
