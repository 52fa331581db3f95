package main

import (
	"fmt"
	"strings"
)

// option describes one command-line option for getopt.
type option struct {
	short  byte   // 0 if none
	long   string // "" if none
	hasArg bool   // the option takes a required argument
}

// optval is one option found by getopt, in command-line order.
type optval struct {
	short byte
	arg   string
}

// getopt parses args like glibc's getopt_long with argument permutation:
// options may appear anywhere, before or after the positional arguments,
// until a "--". It supports "-abc" clusters, "-d400" and "-d 400", and
// "--delay=400", "--delay 400" and unique prefixes of long names ("--del").
//
// Options are returned in order, so the caller can act on the first -h or -V
// the way getopt's callers do. Parsing stops at the first bad option: the
// options before it are returned along with an error that carries glibc's
// wording (without the program-name prefix).
func getopt(args []string, opts []option) (found []optval, positional []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return found, append(positional, args[i+1:]...), nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			o, err := lookupLong(opts, name)
			if err != nil {
				return found, positional, err
			}
			switch {
			case !o.hasArg && hasVal:
				return found, positional, fmt.Errorf("option '--%s' doesn't allow an argument", o.long)
			case o.hasArg && !hasVal:
				if i+1 >= len(args) {
					return found, positional, fmt.Errorf("option '--%s' requires an argument", o.long)
				}
				i++
				val = args[i]
			}
			found = append(found, optval{o.short, val})
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				o := lookupShort(opts, a[j])
				if o == nil {
					return found, positional, fmt.Errorf("invalid option -- '%c'", a[j])
				}
				if !o.hasArg {
					found = append(found, optval{o.short, ""})
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return found, positional, fmt.Errorf("option requires an argument -- '%c'", a[j])
					}
					i++
					val = args[i]
				}
				found = append(found, optval{o.short, val})
				break
			}
		default: // including a lone "-"
			positional = append(positional, a)
		}
	}
	return found, positional, nil
}

func lookupShort(opts []option, c byte) *option {
	for i := range opts {
		if opts[i].short != 0 && opts[i].short == c {
			return &opts[i]
		}
	}
	return nil
}

func lookupLong(opts []option, name string) (*option, error) {
	var matches []*option
	for i := range opts {
		o := &opts[i]
		if o.long == "" {
			continue
		}
		if o.long == name {
			return o, nil
		}
		if name != "" && strings.HasPrefix(o.long, name) {
			matches = append(matches, o)
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("unrecognized option '--%s'", name)
	case 1:
		return matches[0], nil
	}
	names := make([]string, len(matches))
	for i, o := range matches {
		names[i] = "'--" + o.long + "'"
	}
	return nil, fmt.Errorf("option '--%s' is ambiguous; possibilities: %s", name, strings.Join(names, " "))
}
