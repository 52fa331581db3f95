// Package expr is the small, safe expression language of knockdaemon
// actions: the Condition of an action, its State statements and the
// state(…) and field substitutions of its System commands.
//
// The Perl knockdaemon handed these strings to eval. Here they are parsed
// once, when the config loads (errors carry file:line and a column), into
// a tree that is evaluated without eval: integers and strings only, no
// loops, no calls, no access to anything but the knock's fields, the time
// keywords and the state store, so a condition costs at most a few
// operations per byte of its source.
//
// It is a format, beside the other grammars in formats/, because two
// layers read it: config/knockdaemon checks every condition, statement and
// command while migrating a knockdaemon.conf (so --migrate reports
// file:line:column), and actions/knockdaemon evaluates them. A config
// reader must not import an action (arch_test.go), and the language needs
// nothing from either: only positions (config) and an Env to evaluate in.
//
// Grammar (loosest binding first; all binary operators left-associative):
//
//	expr      = or
//	or        = and { "||" and }
//	and       = equality { "&&" equality }
//	equality  = relation { ("==" | "!=") relation }
//	relation  = sum { ("<" | ">" | "<=" | ">=") sum }
//	sum       = product { ("+" | "-") product }
//	product   = unary { ("*" | "/") unary }
//	unary     = ("!" | "-") unary | primary
//	primary   = INTEGER | STRING | NAME | state | "(" expr ")"
//	state     = "state" "(" key { "," key } ")"
//	key       = WORD | expr
//	statement = state ( "=" expr | "+=" expr | "-=" expr | "++" | "--" )
//
// NAME is a field or keyword (IsName): IP PORT TIME FLAG0… CHECKSUM LOGIP
// KNOCKTIME NOW THISYEAR THISMONTH THISDAY THISHOUR. WORD is any other
// identifier, allowed only as a whole state(…) argument, where it is that
// literal text: state(IP,visits,num) is the entry 10.1.1.1 → visits → num.
// STRING is double-quoted with \" and \\ as the only escapes.
//
// Semantics (see docs/knockdaemon-actions.md for the full reference):
//   - A missing state entry is undefined: false under !, 0 in arithmetic
//     and comparisons, 1 after ++ (Perl's behaviour the recipes rely on).
//   - A string that spells a decimal integer computes as that integer.
//     Comparisons are numeric when both sides are integers, otherwise
//     byte-wise string comparisons (undefined as "0", integers in decimal).
//   - Arithmetic is on 64-bit integers; overflow, division by zero and a
//     non-integer operand are evaluation errors, never a panic or a wrap.
//     A condition that fails to evaluate is false.
//   - && and || short-circuit and yield 1 or 0.
package expr
