// Package getopt parses command lines the way glibc's getopt_long does, for
// both binaries: knockd and knock are drop-ins for programs whose users'
// scripts and fingers know getopt's rules and its error messages.
//
// It supports "-abc" clusters, "-d400" and "-d 400", "--delay=400" and
// "--delay 400", and "--" to end the options. Two behaviours differ between
// the programs it serves and are chosen by the Parser:
//
//   - Abbrev: a unique prefix of a long name ("--del") is that option, as in
//     glibc; without it only the whole name is.
//   - InOrder: options end at the first operand (getopt's "+" mode, or
//     POSIXLY_CORRECT), for a program that takes no operands and reports the
//     first one; without it operands and options may be mixed (glibc's
//     default permutation).
//
// Errors carry glibc's wording without the program-name prefix, so each
// program prints them after its own name.
package getopt

import (
	"fmt"
	"strings"
)

// Option is one option a program accepts.
type Option struct {
	Short  byte   // 0: long only
	Long   string // "": short only
	HasArg bool   // takes a required argument
}

// Found is one option found on the command line.
type Found struct {
	Index int    // into Parser.Options
	Short byte   // Options[Index].Short, for a caller that switches on it
	Arg   string // the argument, "" for an option that takes none
}

// Parser is a program's option set and its parsing mode.
type Parser struct {
	Options []Option
	Abbrev  bool // accept unique prefixes of long names
	InOrder bool // options end at the first operand
}

// Parse returns the options of args in command-line order (so a caller can
// act on the first -h or -V, as getopt's loops do) and the operands.
// Parsing stops at the first bad option: the options before it are returned
// with the error, and the operands are then incomplete.
func (p Parser) Parse(args []string) (found []Found, operands []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return found, append(operands, args[i+1:]...), nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			k, err := p.long(name)
			if err != nil {
				return found, operands, err
			}
			o := p.Options[k]
			switch {
			case !o.HasArg && hasVal:
				return found, operands, fmt.Errorf("option '--%s' doesn't allow an argument", o.Long)
			case o.HasArg && !hasVal:
				if i+1 >= len(args) {
					return found, operands, fmt.Errorf("option '--%s' requires an argument", o.Long)
				}
				i++
				val = args[i]
			}
			found = append(found, Found{k, o.Short, val})
		case len(a) > 1 && a[0] == '-':
			for j := 1; j < len(a); j++ {
				k := p.short(a[j])
				if k < 0 {
					return found, operands, fmt.Errorf("invalid option -- '%c'", a[j])
				}
				if !p.Options[k].HasArg {
					found = append(found, Found{k, a[j], ""})
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return found, operands, fmt.Errorf("option requires an argument -- '%c'", a[j])
					}
					i++
					val = args[i]
				}
				found = append(found, Found{k, a[j], val})
				break
			}
		case p.InOrder: // an operand, a lone "-" included
			return found, append(operands, args[i:]...), nil
		default:
			operands = append(operands, a)
		}
	}
	return found, operands, nil
}

// short is the index of the option with short name c, or -1.
func (p Parser) short(c byte) int {
	for i, o := range p.Options {
		if o.Short != 0 && o.Short == c {
			return i
		}
	}
	return -1
}

// long is the index of the option called name: its whole long name, or
// with Abbrev a prefix of exactly one.
func (p Parser) long(name string) (int, error) {
	var matches []int
	for i, o := range p.Options {
		if o.Long == "" {
			continue
		}
		if o.Long == name {
			return i, nil
		}
		if p.Abbrev && name != "" && strings.HasPrefix(o.Long, name) {
			matches = append(matches, i)
		}
	}
	switch len(matches) {
	case 0:
		return -1, fmt.Errorf("unrecognized option '--%s'", name)
	case 1:
		return matches[0], nil
	}
	names := make([]string, len(matches))
	for i, k := range matches {
		names[i] = "'--" + p.Options[k].Long + "'"
	}
	return -1, fmt.Errorf("option '--%s' is ambiguous; possibilities: %s", name, strings.Join(names, " "))
}
