package knockdaemon

import (
	"strings"

	"github.com/doorward/doorward/internal/trust"
)

// trustProgram checks the program of a System line when the line names it
// by an absolute path (its first word): it runs as root, so it and its
// directory must be root's alone (trust.Command). A program found through
// $PATH is the system's, and a shell construct is not a file.
func trustProgram(line string) error {
	fields := strings.Fields(line)
	if len(fields) == 0 || !strings.HasPrefix(fields[0], "/") {
		return nil
	}
	return trust.Command(fields[0])
}
