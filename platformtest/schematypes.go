package platformtest

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// Built-in simple types of XML Schema, as far as the platform's schemas
// use them (and their ancestors).

// builtinDerived maps a derived built-in type to its primitive.
var builtinDerived = map[string]string{
	"normalizedString": "string", "token": "string", "language": "string", "Name": "string",
	"NCName": "string", "ID": "string", "IDREF": "string", "NMTOKEN": "string", "ENTITY": "string",
	"integer": "decimal", "long": "decimal", "int": "decimal", "short": "decimal", "byte": "decimal",
	"nonNegativeInteger": "decimal", "positiveInteger": "decimal", "nonPositiveInteger": "decimal",
	"negativeInteger": "decimal", "unsignedLong": "decimal", "unsignedInt": "decimal",
	"unsignedShort": "decimal", "unsignedByte": "decimal",
}

var builtinPrimitive = map[string]bool{
	"string": true, "boolean": true, "decimal": true, "float": true, "double": true,
	"duration": true, "dateTime": true, "time": true, "date": true, "gYearMonth": true,
	"gYear": true, "gMonthDay": true, "gDay": true, "gMonth": true, "hexBinary": true,
	"base64Binary": true, "anyURI": true, "QName": true, "NOTATION": true, "anySimpleType": true,
}

var builtinCache = func() map[string]*xType {
	m := map[string]*xType{}
	for n := range builtinPrimitive {
		m[n] = &xType{name: qname{nsXSD, n}, simple: true, builtin: n, compiled: true}
	}
	for n := range builtinDerived {
		m[n] = &xType{name: qname{nsXSD, n}, simple: true, builtin: n, compiled: true}
	}
	for _, n := range []string{"IDREFS", "NMTOKENS", "ENTITIES"} {
		item := strings.TrimSuffix(n, "S")
		m[n] = &xType{name: qname{nsXSD, n}, simple: true, variety: vList, item: m[item], compiled: true,
			steps: []facets{{length: -1, minLen: 1, maxLen: -1, totalDigits: -1}}}
	}
	return m
}()

func builtinType(name string) *xType {
	if name == "anyType" {
		return anyTypeDef
	}
	return builtinCache[name]
}

// primitiveOf returns the primitive a built-in derives from.
func primitiveOf(b string) string {
	if p, ok := builtinDerived[b]; ok {
		return p
	}
	return b
}

// collapse applies whiteSpace="collapse".
func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

func isXMLSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

var (
	reDecimal  = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)
	reInteger  = regexp.MustCompile(`^[+-]?[0-9]+$`)
	reFloat    = regexp.MustCompile(`^([+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|INF|-INF|NaN)$`)
	reTZ       = `(Z|[+-][0-9]{2}:[0-9]{2})?`
	reDate     = regexp.MustCompile(`^(-?[0-9]{4,})-([0-9]{2})-([0-9]{2})` + reTZ + `$`)
	reDateTime = regexp.MustCompile(`^(-?[0-9]{4,})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?` + reTZ + `$`)
	reTime     = regexp.MustCompile(`^([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?` + reTZ + `$`)
	reGYear    = regexp.MustCompile(`^-?[0-9]{4,}` + reTZ + `$`)
	reGYM      = regexp.MustCompile(`^-?[0-9]{4,}-(0[1-9]|1[0-2])` + reTZ + `$`)
	reDuration = regexp.MustCompile(`^-?P([0-9]+Y)?([0-9]+M)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+(\.[0-9]+)?S)?)?$`)
	reHex      = regexp.MustCompile(`^([0-9a-fA-F]{2})*$`)
	reNCName   = regexp.MustCompile(`^[\p{L}_][\p{L}\p{N}\p{Mn}\p{Mc}._\-\x{B7}]*$`)
	reName     = regexp.MustCompile(`^[\p{L}_:][\p{L}\p{N}\p{Mn}\p{Mc}._:\-\x{B7}]*$`)
	reNMTOKEN  = regexp.MustCompile(`^[\p{L}\p{N}\p{Mn}\p{Mc}._:\-\x{B7}]+$`)
	reLanguage = regexp.MustCompile(`^[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*$`)
)

var intRanges = map[string][2]string{
	"long":               {"-9223372036854775808", "9223372036854775807"},
	"int":                {"-2147483648", "2147483647"},
	"short":              {"-32768", "32767"},
	"byte":               {"-128", "127"},
	"nonNegativeInteger": {"0", ""},
	"positiveInteger":    {"1", ""},
	"nonPositiveInteger": {"", "0"},
	"negativeInteger":    {"", "-1"},
	"unsignedLong":       {"0", "18446744073709551615"},
	"unsignedInt":        {"0", "4294967295"},
	"unsignedShort":      {"0", "65535"},
	"unsignedByte":       {"0", "255"},
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if (year%4 == 0 && year%100 != 0) || year%400 == 0 {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func atoi(s string) int {
	n := 0
	neg := strings.HasPrefix(s, "-")
	for _, c := range strings.TrimPrefix(s, "-") {
		n = n*10 + int(c-'0')
		if n > 1e8 {
			n = 1e8
		}
	}
	if neg {
		return -n
	}
	return n
}

func validTZ(tz string) bool {
	if tz == "" || tz == "Z" {
		return true
	}
	h, m := atoi(tz[1:3]), atoi(tz[4:6])
	return m < 60 && (h < 14 || (h == 14 && m == 0))
}

func validYMD(y, mo, d string) bool {
	year, month, day := atoi(y), atoi(mo), atoi(d)
	if year == 0 {
		return false // year 0000 is not allowed in XSD 1.0
	}
	return month >= 1 && month <= 12 && day >= 1 && day <= daysIn(year, month)
}

func validHMS(h, m, s string) bool {
	hh, mm, ss := atoi(h), atoi(m), atoi(s)
	if hh == 24 {
		return mm == 0 && ss == 0
	}
	return hh < 24 && mm < 60 && ss < 60
}

// checkBuiltin checks a whitespace-normalised value against a built-in
// type's lexical space; el resolves QName prefixes.
func checkBuiltin(b, v string, el *etree.Element) error {
	bad := func() error { return fmt.Errorf("value is not a valid xs:%s", b) }
	switch b {
	case "string", "normalizedString", "token", "anySimpleType", "anyURI", "NOTATION", "ENTITY":
		return nil
	case "boolean":
		if v == "true" || v == "false" || v == "1" || v == "0" {
			return nil
		}
		return bad()
	case "decimal":
		if reDecimal.MatchString(v) {
			return nil
		}
		return bad()
	case "float", "double":
		if reFloat.MatchString(v) {
			return nil
		}
		return bad()
	case "date":
		m := reDate.FindStringSubmatch(v)
		if m == nil || !validYMD(m[1], m[2], m[3]) || !validTZ(m[4]) {
			return bad()
		}
		return nil
	case "dateTime":
		m := reDateTime.FindStringSubmatch(v)
		if m == nil || !validYMD(m[1], m[2], m[3]) || !validHMS(m[4], m[5], m[6]) || !validTZ(m[8]) {
			return bad()
		}
		return nil
	case "time":
		m := reTime.FindStringSubmatch(v)
		if m == nil || !validHMS(m[1], m[2], m[3]) || !validTZ(m[5]) {
			return bad()
		}
		return nil
	case "gYear":
		if reGYear.MatchString(v) {
			return nil
		}
		return bad()
	case "gYearMonth":
		if reGYM.MatchString(v) {
			return nil
		}
		return bad()
	case "gMonthDay", "gDay", "gMonth":
		return nil
	case "duration":
		m := reDuration.FindStringSubmatch(v)
		if m == nil || v == "P" || v == "-P" || strings.HasSuffix(v, "T") {
			return bad()
		}
		return nil
	case "hexBinary":
		if reHex.MatchString(v) {
			return nil
		}
		return bad()
	case "base64Binary":
		if _, ok := base64Length(v); ok {
			return nil
		}
		return bad()
	case "QName":
		prefix, local, ok := strings.Cut(v, ":")
		if !ok {
			prefix, local = "", v
		}
		if (ok && !reNCName.MatchString(prefix)) || !reNCName.MatchString(local) {
			return bad()
		}
		if ok {
			if _, found := lookupPrefix(el, prefix); !found {
				return fmt.Errorf("the prefix of a QName value is not declared")
			}
		}
		return nil
	case "language":
		if reLanguage.MatchString(v) {
			return nil
		}
		return bad()
	case "Name":
		if reName.MatchString(v) {
			return nil
		}
		return bad()
	case "NCName", "ID", "IDREF":
		if reNCName.MatchString(v) {
			return nil
		}
		return bad()
	case "NMTOKEN":
		if reNMTOKEN.MatchString(v) {
			return nil
		}
		return bad()
	}
	if r, ok := intRanges[b]; ok || b == "integer" {
		if !reInteger.MatchString(v) {
			return bad()
		}
		n, _ := new(big.Int).SetString(strings.TrimPrefix(v, "+"), 10)
		if r[0] != "" {
			lo, _ := new(big.Int).SetString(r[0], 10)
			if n.Cmp(lo) < 0 {
				return bad()
			}
		}
		if r[1] != "" {
			hi, _ := new(big.Int).SetString(r[1], 10)
			if n.Cmp(hi) > 0 {
				return bad()
			}
		}
		return nil
	}
	return fmt.Errorf("unsupported built-in type xs:%s", b)
}

// base64Length checks a base64Binary value as libxml2 (the platform's
// schema judge in ehgate's tests) does: characters outside the base64
// alphabet are ignored, the data characters must make whole quanta with
// correct padding (unused bits zero), nothing may follow the padding. It
// returns the decoded length in octets.
func base64Length(v string) (int, bool) {
	dec := func(c byte) int {
		switch {
		case c >= 'A' && c <= 'Z':
			return int(c - 'A')
		case c >= 'a' && c <= 'z':
			return int(c-'a') + 26
		case c >= '0' && c <= '9':
			return int(c-'0') + 52
		case c == '+':
			return 62
		case c == '/':
			return 63
		case c == '=':
			return 64
		}
		return -1
	}
	n, i := 0, 0
	last := -1
	for ; i < len(v); i++ {
		d := dec(v[i])
		if d < 0 {
			continue
		}
		if d == 64 {
			break
		}
		n++
		last = d
	}
	pad := 0
	for ; i < len(v); i++ {
		d := dec(v[i])
		switch {
		case d < 0:
		case d < 64:
			return 0, false
		default:
			pad++
		}
	}
	total := 3 * (n / 4)
	switch pad {
	case 0:
		if n%4 != 0 {
			return 0, false
		}
	case 1:
		if n%4 != 3 || last&^0x3c != 0 {
			return 0, false
		}
		total += 2
	case 2:
		if n%4 != 2 || last&^0x30 != 0 {
			return 0, false
		}
		total++
	default:
		return 0, false
	}
	return total, true
}

// normalise applies the type's whiteSpace facet.
func (t *xType) normalise(v string) string {
	if t.variety == vAtomic && (t.builtin == "string" || t.builtin == "anySimpleType") {
		return v
	}
	if t.variety == vAtomic && t.builtin == "normalizedString" {
		return strings.Map(func(r rune) rune {
			if isXMLSpace(r) {
				return ' '
			}
			return r
		}, v)
	}
	return collapse(v)
}

// checkValue validates a raw (unnormalised) value against simple type t.
// ids collects xs:ID values for the uniqueness check.
func (t *xType) checkValue(raw string, el *etree.Element, ids map[string]bool) error {
	v := t.normalise(raw)
	switch t.variety {
	case vList:
		items := strings.Fields(v)
		for _, it := range items {
			if err := t.item.checkValue(it, el, ids); err != nil {
				return err
			}
		}
		return t.checkFacets(v, len(items))
	case vUnion:
		var first error
		for _, m := range t.members {
			if err := m.checkValue(raw, el, map[string]bool{}); err == nil {
				return t.checkFacets(v, -1)
			} else if first == nil {
				first = err
			}
		}
		if first == nil {
			first = fmt.Errorf("value matches no member type")
		}
		return first
	}
	if err := checkBuiltin(t.builtin, v, el); err != nil {
		return err
	}
	if err := t.checkFacets(v, -1); err != nil {
		return err
	}
	if t.builtin == "ID" && ids != nil {
		if ids[v] {
			return fmt.Errorf("an ID value is not unique")
		}
		ids[v] = true
	}
	return nil
}

// checkFacets checks every restriction step's facets; items is the item
// count of a list (else -1).
func (t *xType) checkFacets(v string, items int) error {
	prim := primitiveOf(t.builtin)
	length := items
	if items < 0 {
		switch prim {
		case "hexBinary":
			length = len(v) / 2
		case "base64Binary":
			length, _ = base64Length(v)
		default:
			length = utf8.RuneCountInString(v)
		}
	}
	for _, f := range t.steps {
		if len(f.patterns) > 0 {
			ok := false
			for _, re := range f.patterns {
				if re.MatchString(v) {
					ok = true
					break
				}
			}
			if !ok {
				return fmt.Errorf("value does not match pattern %s", strings.Join(f.patternSrc, " | "))
			}
		}
		if len(f.enums) > 0 {
			ok := false
			for _, e := range f.enums {
				if valueEqual(prim, t.normalise(e), v) {
					ok = true
					break
				}
			}
			if !ok {
				return fmt.Errorf("value is not one of the enumerated values")
			}
		}
		switch {
		case f.length >= 0 && length != f.length:
			return fmt.Errorf("value has length %d, not %d", length, f.length)
		case f.minLen >= 0 && length < f.minLen:
			return fmt.Errorf("value is shorter than %d", f.minLen)
		case f.maxLen >= 0 && length > f.maxLen:
			return fmt.Errorf("value is longer than %d", f.maxLen)
		}
		if prim == "decimal" {
			if err := checkNumericFacets(f, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func valueEqual(prim, a, b string) bool {
	if prim == "decimal" {
		x, ok1 := new(big.Rat).SetString(strings.TrimPrefix(a, "+"))
		y, ok2 := new(big.Rat).SetString(strings.TrimPrefix(b, "+"))
		return ok1 && ok2 && x.Cmp(y) == 0
	}
	return a == b
}

func checkNumericFacets(f facets, v string) error {
	x, ok := new(big.Rat).SetString(strings.TrimPrefix(v, "+"))
	if !ok {
		return fmt.Errorf("value is not a number")
	}
	cmp := func(bound *string) int {
		y, ok := new(big.Rat).SetString(strings.TrimPrefix(*bound, "+"))
		if !ok {
			return 0
		}
		return x.Cmp(y)
	}
	switch {
	case f.minIncl != nil && cmp(f.minIncl) < 0:
		return fmt.Errorf("value is below %s", *f.minIncl)
	case f.maxIncl != nil && cmp(f.maxIncl) > 0:
		return fmt.Errorf("value is above %s", *f.maxIncl)
	case f.minExcl != nil && cmp(f.minExcl) <= 0:
		return fmt.Errorf("value is not above %s", *f.minExcl)
	case f.maxExcl != nil && cmp(f.maxExcl) >= 0:
		return fmt.Errorf("value is not below %s", *f.maxExcl)
	}
	if f.totalDigits >= 0 || f.hasFraction {
		digits := strings.TrimLeft(strings.TrimLeft(v, "+-"), "0")
		intPart, frac, _ := strings.Cut(digits, ".")
		frac = strings.TrimRight(frac, "0")
		total := len(intPart) + len(frac)
		if f.totalDigits >= 0 && total > f.totalDigits {
			return fmt.Errorf("value has more than %d digits", f.totalDigits)
		}
		if f.hasFraction && len(frac) > f.fractionDigits {
			return fmt.Errorf("value has more than %d fraction digits", f.fractionDigits)
		}
	}
	return nil
}
