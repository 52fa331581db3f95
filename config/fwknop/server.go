package fwknop

import (
	"path/filepath"
	"strings"

	"github.com/doorward/doorward/config"
)

// server is a read fwknopd.conf: the last value of each key, as fwknopd's
// set_config_entry keeps it.
type server struct {
	file string
	set  map[string]entry
}

func (s *server) get(key string) (entry, bool) {
	e, ok := s.set[key]
	return e, ok
}

// readServer reads an fwknopd.conf as fwknopd's parse_config_file does:
// one "KEY value" a line, keys case-sensitive, the last of a key wins,
// unknown keys and lines without a value warned about and skipped (fwknopd
// logs them and starts). A value starting with $NAME takes the value NAME
// has at that point of the file (only a key set above it, or CONFIG_FILE,
// the file itself), followed by the rest of the value's first word.
//
// Errors are only lines too long for fwknopd to read whole.
func readServer(path string, src []byte, n *notes) *server {
	s := &server{file: path, set: map[string]entry{}}
	valueless := func(pos config.Pos, key string) {
		n.warnf(pos, "invalid config file entry %q (no value), ignored", key)
	}
	n.entries(path, src, valueless, func(pos config.Pos, key, value string) {
		k, ok := lookup(serverKeys, key)
		if !ok {
			n.warnf(pos, "ignoring unknown configuration parameter '%s'", key)
			return
		}
		if strings.HasPrefix(value, "$") {
			v, ok := s.expand(value)
			if !ok {
				n.warnf(pos, "invalid embedded variable in '%s', %s ignored", value, key)
				return
			}
			value = v
		}
		n.use(k, pos, value)
		s.set[k.Name] = entry{Key: k.Name, Value: value, Pos: pos}
	})
	return s
}

// expand replaces a leading $NAME as fwknopd does with
// sscanf(val+1, "%[A-Z_]%s", name, rest): NAME is upper case letters and
// '_', rest the following non-space bytes. A value whose '$' is not
// followed by such a name is kept as written.
func (s *server) expand(value string) (string, bool) {
	v := value[1:]
	i := 0
	for i < len(v) && (v[i] == '_' || 'A' <= v[i] && v[i] <= 'Z') {
		i++
	}
	if i == 0 {
		return value, true
	}
	name, rest := v[:i], v[i:]
	if j := strings.IndexAny(rest, space); j >= 0 {
		rest = rest[:j]
	}
	if name == "CONFIG_FILE" {
		// Absolute, because relative paths in the file are taken from
		// its folder (resolve), not from our working directory.
		abs, err := filepath.Abs(s.file)
		return abs + rest, err == nil
	}
	e, ok := s.set[name]
	if !ok {
		return "", false
	}
	return e.Value + rest, true
}
