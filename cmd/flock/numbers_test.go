package main

import (
	"testing"
)

// The expectations below were measured on util-linux flock 2.38.1: the
// timer values with strace (timer_settime), the rest from its exit status
// and messages.

func TestTimeoutValues(t *testing.T) {
	for _, c := range []struct {
		in        string
		sec, usec int64
		valid     bool
		err       error
	}{
		{in: "0", valid: true},
		{in: "-0", valid: true},
		{in: "0.000001", valid: true}, // no timer: -n
		{in: "0.000002", usec: 1, valid: true},
		{in: "0.000003", usec: 3, valid: true},
		{in: "0.000007", usec: 6, valid: true},
		{in: "0.0000011", usec: 1, valid: true},
		{in: "1.000001", sec: 1, valid: true},
		{in: "1.000003", sec: 1, usec: 2, valid: true},
		{in: "0.1", usec: 100000, valid: true},
		{in: "0.3", usec: 299999, valid: true},
		{in: "2.7", sec: 2, usec: 700000, valid: true},
		{in: "1e-5", usec: 10, valid: true},
		{in: "0x10", sec: 16, valid: true},
		{in: "0X10", sec: 16, valid: true},
		{in: "0x1.8p1", sec: 3, valid: true},
		{in: "0x.8", usec: 500000, valid: true},
		{in: "0.5e1", sec: 5, valid: true},
		{in: "1.e2", sec: 100, valid: true},
		{in: "5.", sec: 5, valid: true},
		{in: ".5", usec: 500000, valid: true},
		{in: "+1", sec: 1, valid: true},
		{in: " \t\v1", sec: 1, valid: true},
		{in: "9e18", sec: 9e18, valid: true},
		{in: "1e-310", valid: true},
		{in: "1e-4900", valid: true},
		{in: "-0.0000001", valid: true},
		{in: "-1", sec: -1},
		{in: "-0.5", usec: -500000},
		{in: "9.3e18"},
		{in: "1e400"},
		{in: "1e4932"},
		{in: "inf"},
		{in: "-INFINITY"},
		{in: "nan"},
		{in: "nan(12)"},
		{in: "nan()"},
		{in: "1e5000", err: errRange},
		{in: "1.2e4932", err: errRange},
		{in: "1e-4940", err: errRange},
		{in: "1e-5000", err: errRange},
		{in: "1e99999999999999999999", err: errRange},
		{in: "", err: errSyntax},
		{in: " ", err: errSyntax},
		{in: ".", err: errSyntax},
		{in: "+", err: errSyntax},
		{in: "1s", err: errSyntax},
		{in: "1,5", err: errSyntax},
		{in: "1_0", err: errSyntax},
		{in: "1e", err: errSyntax},
		{in: "0x", err: errSyntax},
		{in: "0xp1", err: errSyntax},
		{in: "0x.p1", err: errSyntax},
		{in: "0x1p", err: errSyntax},
		{in: "1 ", err: errSyntax},
		{in: "infinit", err: errSyntax},
		{in: "nan(", err: errSyntax},
	} {
		secs, err := parseSeconds(c.in)
		if err != c.err {
			t.Errorf("parseSeconds(%q): error %v, want %v", c.in, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		to := newTimeout(secs)
		if to.valid != c.valid || (c.valid || c.sec != 0 || c.usec != 0) && (to.sec != c.sec || to.usec != c.usec) {
			t.Errorf("-w %q: timer %d s %d µs valid %v, want %d s %d µs valid %v", c.in, to.sec, to.usec, to.valid, c.sec, c.usec, c.valid)
		}
	}
}

func TestInt32Values(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int32
		err  error
	}{
		{"0", 0, nil},
		{"-0", 0, nil},
		{"010", 10, nil},
		{" +5", 5, nil},
		{"\t-5", -5, nil},
		{"2147483647", 2147483647, nil},
		{"-2147483648", -2147483648, nil},
		{"2147483648", 0, errRange},
		{"-2147483649", 0, errRange},
		{"99999999999999999999", 0, errRange},
		{"99999999999999999999x", 0, errRange},
		{"", 0, errSyntax},
		{" ", 0, errSyntax},
		{"5 ", 0, errSyntax},
		{"0x10", 0, errSyntax},
		{"5.0", 0, errSyntax},
		{"+", 0, errSyntax},
	} {
		got, err := parseInt32(c.in)
		if got != c.want || err != c.err {
			t.Errorf("parseInt32(%q) = %d, %v; want %d, %v", c.in, got, err, c.want, c.err)
		}
	}
}
