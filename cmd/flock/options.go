package main

import (
	"fmt"
	"io"
	"strings"
)

// lockMode is what -s, -x and -u ask for; the last one given wins.
type lockMode int

const (
	modeExclusive lockMode = iota
	modeShared
	modeUnlock
)

// config is the parsed command line.
type config struct {
	mode     lockMode
	nonblock bool     // -n
	timeout  *timeout // -w, nil if not given
	conflict int      // -E
	close    bool     // -o
	noFork   bool     // -F
	verbose  bool     // --verbose
	holders  bool     // -H: list the holders instead of locking
	args     []string // what follows the options: FD, or FILE and the command
}

// A longOption is a long option name and the short option it stands for.
// The order matters only for the list printed when an abbreviation is
// ambiguous.
type longOption struct {
	name   string
	hasArg bool
	short  byte
}

// optVerbose stands for --verbose, which has no short form.
const optVerbose = 0

var longOptions = []longOption{
	{"shared", false, 's'},
	{"exclusive", false, 'x'},
	{"unlock", false, 'u'},
	{"nonblocking", false, 'n'},
	{"nonblock", false, 'n'},
	{"nb", false, 'n'},
	{"timeout", true, 'w'},
	{"wait", true, 'w'},
	{"conflict-exit-code", true, 'E'},
	{"close", false, 'o'},
	{"no-fork", false, 'F'},
	{"verbose", false, optVerbose},
	// Not in util-linux. No util-linux long option starts with "l", so
	// no abbreviation util-linux accepts becomes ambiguous.
	{"list-holders", false, 'H'},
	{"help", false, 'h'},
	{"version", false, 'V'},
}

// shortOptions maps each short option to whether it takes an argument. '?'
// is accepted as an option and treated as a usage error, as getopt(3)
// callers commonly do.
var shortOptions = map[byte]bool{
	's': false, 'e': false, 'x': false, 'u': false, 'n': false,
	'w': true, 'E': true, 'o': false, 'F': false,
	'h': false, 'V': false, '?': false,
	'H': false,
}

// cli is what flock needs to report errors: its names and output streams.
type cli struct {
	argv0  string // as invoked, for getopt-style messages
	name   string // base name, for every other message
	stdout io.Writer
	stderr io.Writer
}

// warn prints "NAME: message" on standard error.
func (c *cli) warn(format string, args ...any) {
	fmt.Fprintf(c.stderr, "%s: %s\n", c.name, fmt.Sprintf(format, args...))
}

// fail prints like warn and returns an exit status to exit with.
func (c *cli) fail(code int, format string, args ...any) error {
	c.warn(format, args...)
	return exitStatus(code)
}

// usageError prints a getopt-style message and the hint to try --help.
func (c *cli) usageError(format string, args ...any) error {
	if format != "" {
		fmt.Fprintf(c.stderr, "%s: %s\n", c.argv0, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(c.stderr, "Try '%s --help' for more information.\n", c.name)
	return exitStatus(exitUsage)
}

// exitStatus is returned as an error when flock must exit with that status
// after having said what it had to.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// parse parses the command line as util-linux flock does: getopt_long(3)
// with scanning stopped at the first non-option, so that everything after
// FILE belongs to the command; each option takes effect as it is read, so
// -h, -V and invalid values act in command-line order.
func (c *cli) parse(args []string) (*config, error) {
	cfg := &config{conflict: 1}
	if len(args) < 2 {
		c.warn("not enough arguments")
		return nil, c.usageError("")
	}
	i := 1
	for i < len(args) {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		i++
		if a[1] == '-' {
			opt, arg, hasArg, err := c.matchLong(a[2:])
			if err != nil {
				return nil, err
			}
			if opt.hasArg && !hasArg {
				if i == len(args) {
					return nil, c.usageError("option '--%s' requires an argument", opt.name)
				}
				arg = args[i]
				i++
			}
			if err := c.apply(cfg, opt.short, arg); err != nil {
				return nil, err
			}
			continue
		}
		for j := 1; j < len(a); j++ {
			ch := a[j]
			needArg, ok := shortOptions[ch]
			if !ok {
				return nil, c.usageError("invalid option -- '%c'", ch)
			}
			var arg string
			if needArg {
				switch {
				case j+1 < len(a):
					arg = a[j+1:]
				case i < len(args):
					arg = args[i]
					i++
				default:
					return nil, c.usageError("option requires an argument -- '%c'", ch)
				}
			}
			if err := c.apply(cfg, ch, arg); err != nil {
				return nil, err
			}
			if needArg {
				break
			}
		}
	}
	cfg.args = args[i:]
	if cfg.close && cfg.noFork {
		return nil, c.fail(exitUsage, "the --no-fork and --close options are incompatible")
	}
	if len(cfg.args) == 0 {
		return nil, c.fail(exitUsage, "requires file descriptor, file or directory")
	}
	return cfg, nil
}

// matchLong finds the long option that text (what follows "--") names,
// exactly or by an unambiguous prefix, and splits off an "=value".
func (c *cli) matchLong(text string) (opt longOption, arg string, hasArg bool, err error) {
	name := text
	if k := strings.IndexByte(text, '='); k >= 0 {
		name, arg, hasArg = text[:k], text[k+1:], true
	}
	var found []longOption
	exact := false
	for _, o := range longOptions {
		if o.name == name {
			found, exact = []longOption{o}, true
			break
		}
		if strings.HasPrefix(o.name, name) {
			found = append(found, o)
		}
	}
	if len(found) == 0 {
		return opt, "", false, c.usageError("unrecognized option '--%s'", text)
	}
	opt = found[0]
	if !exact {
		// Prefixes of options that mean the same thing are not ambiguous.
		list := []string{"'--" + opt.name + "'"}
		for _, o := range found[1:] {
			if o.short != opt.short || o.hasArg != opt.hasArg {
				list = append(list, "'--"+o.name+"'")
			}
		}
		if len(list) > 1 {
			return opt, "", false, c.usageError("option '--%s' is ambiguous; possibilities: %s", text, strings.Join(list, " "))
		}
	}
	if hasArg && !opt.hasArg {
		return opt, "", false, c.usageError("option '--%s' doesn't allow an argument", opt.name)
	}
	return opt, arg, hasArg, nil
}

// apply records one option.
func (c *cli) apply(cfg *config, opt byte, arg string) error {
	switch opt {
	case 's':
		cfg.mode = modeShared
	case 'x', 'e':
		cfg.mode = modeExclusive
	case 'u':
		cfg.mode = modeUnlock
	case 'n':
		cfg.nonblock = true
	case 'o':
		cfg.close = true
	case 'F':
		cfg.noFork = true
	case optVerbose:
		cfg.verbose = true
	case 'H':
		cfg.holders = true
	case 'w':
		secs, err := parseSeconds(arg)
		if err != nil {
			return c.fail(exitUsage, "invalid timeout value: '%s'%s", arg, rangeSuffix(err))
		}
		cfg.timeout = newTimeout(secs)
	case 'E':
		n, err := parseInt32(arg)
		if err != nil {
			return c.fail(exitUsage, "invalid exit code: '%s'%s", arg, rangeSuffix(err))
		}
		if n < 0 || n > 255 {
			return c.fail(exitUsage, "exit code out of range (expected 0 to 255)")
		}
		cfg.conflict = int(n)
	case 'h':
		fmt.Fprintf(c.stdout, helpText, c.name)
		return exitStatus(0)
	case 'V':
		fmt.Fprintf(c.stdout, "%s from github.com/go-flock/flock %s\n", c.name, version())
		return exitStatus(0)
	default: // '?'
		return c.usageError("")
	}
	return nil
}

// rangeSuffix is what a number's error adds to the message: the reason if
// the number is out of range, nothing if it is not a number at all.
func rangeSuffix(err error) string {
	if err == errRange {
		return ": " + errText(err)
	}
	return ""
}

const helpText = `
Usage:
 %[1]s [options] <file>|<directory> <command> [<argument>...]
 %[1]s [options] <file>|<directory> -c <command>
 %[1]s [options] <file descriptor number>

Hold a file lock while a command runs, or lock an inherited descriptor.

Options:
 -s, --shared             take a shared (read) lock
 -x, -e, --exclusive      take an exclusive (write) lock (the default)
 -u, --unlock             release the lock
 -n, --nonblock, --nb     fail at once if the lock is held elsewhere
 -w, --timeout, --wait <seconds>
                          fail if not locked within <seconds> (0 means -n)
 -E, --conflict-exit-code <number>
                          exit status when -n or -w fails (0-255, default 1)
 -o, --close              keep the lock from the command and its children
 -c, --command <command>  run <command> with "$SHELL -c"
 -F, --no-fork            replace flock with the command (no -o)
     --verbose            report the time taken, or why the lock failed
 -H, --list-holders       list who holds the lock on <file>|<directory>
                          and exit (0 if free, 1 or the -E number if held)

 -h, --help               show this help
 -V, --version            show the version

Exit status: the command's; 1 or the -E number if -n or -w fails;
64 usage, 65 lock error, 66 cannot open, 69 cannot execute (or, with -H,
listing holders not supported here).
`
