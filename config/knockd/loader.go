package knockd

import (
	"os"
	"slices"
)

// Loader reads another program's config file into knockd's model, so that
// `knockd -c` runs it unchanged (an unchanged doormand.cf). A protocol
// registers its loader from its config/<name> folder's init; the runtime
// loads every config through LoadFile and names no dialect.
type Loader struct {
	// Name is the dialect, for errors ("doormand.cf").
	Name string
	// Recognise says whether the file at path, whose content is src, is
	// of the dialect. It must not claim a knockd.conf: LoadFile asks every
	// loader before it falls back to knockd's own dialect.
	Recognise func(path string, src []byte) bool
	// Load turns src into a config (errors carry file:line).
	Load func(path string, src []byte, opt LoadOptions) (*Config, error)
}

// LoadOptions are the command line's say in how a config is read.
type LoadOptions struct {
	// Debug is knockd -D: dialects whose own daemon skips its file
	// permission checks under -D (doormand) skip them too.
	Debug bool
}

// loaders is filled by init functions and read-only after them.
var loaders []Loader

// RegisterLoader adds a config dialect. It is called from init and panics
// on misuse, so a bad build cannot start.
func RegisterLoader(l Loader) {
	if l.Name == "" || l.Recognise == nil || l.Load == nil {
		panic("knockd: RegisterLoader needs a Name, Recognise and Load")
	}
	if slices.ContainsFunc(loaders, func(o Loader) bool { return o.Name == l.Name }) {
		panic("knockd: config loader " + l.Name + " registered twice")
	}
	loaders = append(loaders, l)
}

// LoadFile reads the config at path in whichever registered dialect
// recognises it, and as a knockd.conf (Parse) when none does.
func LoadFile(path string, opt LoadOptions) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, readError(path, err)
	}
	for _, l := range loaders {
		if l.Recognise(path, src) {
			return l.Load(path, src, opt)
		}
	}
	return Parse(path, src)
}
