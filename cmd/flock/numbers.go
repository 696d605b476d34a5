package main

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"time"
)

// Numbers are read as the C library reads them for util-linux flock, so
// that the same words are accepted and rejected: -E and FD as strtol(3)
// base 10 within int32, -w as strtold(3) (decimal or hexadecimal, inf,
// nan), converted to a timer as util-linux converts it.

var errSyntax = errors.New("invalid number")

// isCSpace reports whether b is white space in the C locale.
func isCSpace(b byte) bool {
	return b == ' ' || (b >= '\t' && b <= '\r')
}

func trimCSpace(s string) string {
	for s != "" && isCSpace(s[0]) {
		s = s[1:]
	}
	return s
}

// parseInt32 parses s as a whole: optional leading white space, an optional
// sign and decimal digits. It returns errRange if the number does not fit an
// int32, errSyntax if s is not such a number.
func parseInt32(s string) (int32, error) {
	t := trimCSpace(s)
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	var n int64
	over := false
	k := 0
	for ; k < len(t) && t[k] >= '0' && t[k] <= '9'; k++ {
		if n <= math.MaxInt32+1 {
			n = n*10 + int64(t[k]-'0')
		} else {
			over = true
		}
	}
	switch {
	case k == 0:
		return 0, errSyntax
	case over:
		return 0, errRange
	case k != len(t):
		return 0, errSyntax
	}
	if neg {
		n = -n
	}
	if n > math.MaxInt32 || n < math.MinInt32 {
		return 0, errRange
	}
	return int32(n), nil
}

// parseSeconds parses s as a whole the way strtold(3) reads it: optional
// leading white space and sign, then a decimal number with optional
// exponent, a hexadecimal one ("0x", optional binary exponent "p"), "inf",
// "infinity" or "nan", "nan(chars)", letters in any case. The value is
// rounded to the 64-bit mantissa of an x87 long double and then to a
// float64, as util-linux stores it; errRange is returned if it overflows the
// long double range or underflows it (a nonzero value below its smallest
// normal number).
func parseSeconds(s string) (float64, error) {
	t := trimCSpace(s)
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	v, n, err := scanUnsigned(t)
	if err == nil && n == 0 {
		err = errSyntax
	}
	if err == nil && n != len(t) {
		err = errSyntax
	}
	if err != nil {
		return 0, err
	}
	if neg {
		v = -v
	}
	return v, nil
}

// scanUnsigned reads the longest number at the start of t and returns its
// value and length; a range error wins over trailing garbage, as in C.
func scanUnsigned(t string) (float64, int, error) {
	lower := strings.ToLower(t)
	switch {
	case strings.HasPrefix(lower, "infinity"):
		return math.Inf(1), len("infinity"), nil
	case strings.HasPrefix(lower, "inf"):
		return math.Inf(1), len("inf"), nil
	case strings.HasPrefix(lower, "nan"):
		n := len("nan")
		if k := strings.IndexByte(lower[n:], ')'); strings.HasPrefix(lower[n:], "(") && k > 0 && isNaNChars(lower[n+1:n+k]) {
			n += k + 1
		}
		return math.NaN(), n, nil
	}

	base, digitBits := 10, 0
	p := 0
	if len(t) > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') && (isDigit(t[2], 16) || (t[2] == '.' && len(t) > 3 && isDigit(t[3], 16))) {
		base, digitBits, p = 16, 4, 2
	}
	mant := new(big.Int)
	bigBase := big.NewInt(int64(base))
	fracDigits := 0
	digits := 0
	for seenPoint := false; p < len(t); p++ {
		c := t[p]
		if c == '.' && !seenPoint {
			seenPoint = true
			continue
		}
		if !isDigit(c, base) {
			break
		}
		mant.Mul(mant, bigBase)
		mant.Add(mant, big.NewInt(int64(digitValue(c))))
		digits++
		if seenPoint {
			fracDigits++
		}
	}
	if digits == 0 {
		return 0, 0, nil
	}

	// Exponent: decimal digits after e (decimal) or p (hexadecimal); if
	// no digit follows, the letter is not part of the number.
	var exp int64
	expChar := byte('e')
	if base == 16 {
		expChar = 'p'
	}
	if p < len(t) && (t[p]|0x20) == expChar {
		q := p + 1
		eneg := false
		if q < len(t) && (t[q] == '+' || t[q] == '-') {
			eneg = t[q] == '-'
			q++
		}
		if q < len(t) && isDigit(t[q], 10) {
			for ; q < len(t) && isDigit(t[q], 10); q++ {
				if exp < 1<<40 {
					exp = exp*10 + int64(t[q]-'0')
				}
			}
			if eneg {
				exp = -exp
			}
			p = q
		}
	}

	if mant.Sign() == 0 {
		return 0, p, nil
	}
	x := new(big.Float).SetPrec(64).SetMode(big.ToNearestEven)
	if base == 16 {
		// value = mant * 2^(exp - 4*fracDigits)
		e2 := exp - int64(digitBits*fracDigits)
		top := e2 + int64(mant.BitLen())
		if top > 16400 {
			return 0, p, errRange
		}
		if top < -16500 {
			return 0, p, errRange
		}
		x.SetInt(mant)
		x.SetMantExp(x, int(e2))
	} else {
		// value = mant * 10^(exp - fracDigits)
		e10 := exp - int64(fracDigits)
		top := e10 + int64(len(mant.String()))
		if top > 4940 {
			return 0, p, errRange
		}
		if top < -4960 {
			return 0, p, errRange
		}
		pow := new(big.Int).Exp(big.NewInt(10), big.NewInt(abs64(e10)), nil)
		r := new(big.Rat)
		if e10 >= 0 {
			r.SetInt(new(big.Int).Mul(mant, pow))
		} else {
			r.SetFrac(mant, pow)
		}
		x.SetRat(r)
	}
	// The x87 long double: largest finite < 2^16384, smallest normal 2^-16382.
	if e := x.MantExp(nil); e > 16384 || e < -16381 {
		return 0, p, errRange
	}
	f, _ := x.Float64()
	return f, p, nil
}

// isNaNChars reports whether s may stand between the parentheses of
// "nan(...)": ASCII letters, digits and underscores.
func isNaNChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '_' && !isDigit(s[i], 36) {
			return false
		}
	}
	return true
}

func isDigit(c byte, base int) bool {
	return digitValue(c) < base
}

func digitValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return 99
}

func abs64(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// A timeout is a -w value as util-linux turns it into a timer: whole
// seconds truncated toward zero, and microseconds computed from the
// fraction in long double arithmetic, then truncated.
type timeout struct {
	sec, usec int64
	valid     bool // whether a timer can be set to it (else EINVAL)
}

func newTimeout(secs float64) *timeout {
	if math.IsNaN(secs) || secs >= 0x1p63 || secs < -0x1p63 {
		// An x86 conversion to time_t gives its minimum, which no
		// timer accepts.
		return &timeout{sec: math.MinInt64}
	}
	sec := int64(secs)
	frac := secs - float64(sec)
	p := new(big.Float).SetPrec(64).SetMode(big.ToNearestEven)
	p.Mul(big.NewFloat(frac), big.NewFloat(1e6))
	usec, _ := p.Int64()
	return &timeout{sec: sec, usec: usec, valid: sec >= 0 && usec >= 0}
}

// zero reports whether the timeout means "do not wait": -w 0, or a value
// too small to make a timer of.
func (t *timeout) zero() bool { return t.sec == 0 && t.usec == 0 }

// duration returns the timeout, or 0 if it is too long for a time.Duration
// (some 292 years), which then means no limit.
func (t *timeout) duration() time.Duration {
	if t.sec > int64(math.MaxInt64/time.Second)-1 {
		return 0
	}
	return time.Duration(t.sec)*time.Second + time.Duration(t.usec)*time.Microsecond
}

// errText renders an error's cause as the C library's strerror would, for
// messages like util-linux's: the innermost error (the errno, for system
// calls) with a capital letter.
func errText(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	s := err.Error()
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		s = string(s[0]-'a'+'A') + s[1:]
	}
	return s
}
