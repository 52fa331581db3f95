package fwknop

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// setting is one "NAME value" line of an fwknoprc stanza.
type setting struct {
	Name, Value string
	Line        int
}

// readRC returns the settings of the [default] stanza of the fwknoprc at
// path, then those of the stanza named (if not ""), each in file order, as
// the fwknop client applies them: the named stanza overrides the default
// one and the command line overrides both. Stanza names compare without
// case; a line is "NAME value", NAME possibly ending in ':', the value its
// first word (up to a space, tab, ';' or '#'); lines starting with '#' or
// ';' are comments. A missing file is not an error when no stanza is named
// (fwknop would create one; knock leaves the home folder alone).
func readRC(path, named string) ([]setting, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) && named == "" {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	var def, sel []setting
	var cur *[]setting
	found := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if trim == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if rest, ok := strings.CutPrefix(trim, "["); ok {
			name, _, ok := strings.Cut(rest, "]")
			if !ok {
				return nil, fmt.Errorf("%s:%d: stanza name without ']'", path, n)
			}
			switch {
			case strings.EqualFold(name, "default"):
				cur = &def
			case named != "" && strings.EqualFold(name, named):
				cur, found = &sel, true
			default:
				cur = nil
			}
			continue
		}
		if cur == nil {
			continue
		}
		fields := strings.Fields(trim)
		name := strings.TrimSuffix(fields[0], ":")
		value := ""
		if len(fields) > 1 {
			value, _, _ = strings.Cut(fields[1], ";")
			value, _, _ = strings.Cut(value, "#")
		}
		if value == "" {
			return nil, fmt.Errorf("%s:%d: %q has no value", path, n, name)
		}
		*cur = append(*cur, setting{Name: name, Value: value, Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if named != "" && !found {
		return nil, fmt.Errorf("named configuration stanza [%s] was not found in %s", named, path)
	}
	return append(def, sel...), nil
}
