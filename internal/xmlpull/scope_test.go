package xmlpull

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// Span gives each token's bytes: tags, text runs, CDATA sections; an empty-element tag is
// the span of its Start and End; comments and processing instructions are in no span.
func TestScanner_Span(t *testing.T) {
	doc := "<?xml version=\"1.0\"?>\n<a x='1'><!--c--><b/>t&amp;<![CDATA[c]]><?p?></a >\n"
	var s Scanner
	s.Reset([]byte(doc))
	var got []string
	for {
		k, err := s.Next()
		require.NoError(t, err)
		if k == EOF {
			break
		}
		start, end := s.Span()
		got = append(got, doc[start:end])
	}
	require.Equal(t, []string{"<a x='1'>", "<b/>", "<b/>", "t&amp;", "<![CDATA[c]]>", "</a >"}, got)
}

// Scope lists the declarations in scope, outermost first, the current Start's included,
// those of closed elements gone.
func TestScanner_Scope(t *testing.T) {
	var s Scanner
	s.Reset([]byte(`<a xmlns="urn:d" xmlns:p="urn:p"><p:h xmlns:q="urn:q"/><b xmlns:p="urn:p2" xmlns=""/></a>`))
	scope := func() string {
		var b strings.Builder
		for _, d := range s.Scope() {
			fmt.Fprintf(&b, "%s=%s ", d.Prefix, d.URI)
		}
		return b.String()
	}
	var got []string
	for {
		k, err := s.Next()
		require.NoError(t, err)
		if k == EOF {
			break
		}
		if k == Start {
			_, local := s.Name()
			got = append(got, string(local)+": "+scope())
			require.Nil(t, s.Scope()[0].Prefix, "the default namespace has no prefix")
		}
	}
	require.Equal(t, []string{
		"a: =urn:d p=urn:p ",
		"h: =urn:d p=urn:p q=urn:q ",
		"b: =urn:d p=urn:p p=urn:p2 = ",
	}, got)
	require.Empty(t, s.Scope(), "at the end")
}

// Skipped counts the comments and processing instructions (the XML declaration too) and the
// white space outside the root, which Next hands out no token for.
func TestScanner_Skipped(t *testing.T) {
	var s Scanner
	s.Reset([]byte("<?xml version=\"1.0\"?>\n<!--a-->\n<r> <!--b--><?p x?> </r>\n<!--c-->"))
	for {
		k, err := s.Next()
		require.NoError(t, err)
		if k == EOF {
			break
		}
	}
	markup, blanks := s.Skipped()
	require.Equal(t, 5, markup)
	require.Equal(t, 3, blanks, "after the declaration, after the first comment, after the root")
}

// Names with non-ASCII characters: letters of common scripts are read, anything else is
// refused (× is no name character at all), wherever a name stands.
func TestScanner_NonASCIINames(t *testing.T) {
	for doc, ok := range map[string]bool{
		"<\u00e9t\u00e9 a\u00ef='1'>\u00d7</\u00e9t\u00e9>": true,
		"<\u0391 xmlns:\u043f='urn:x' \u043f:\u4e2d='1'/>":  true,
		"<a><?\u00e9 \u00d7?></a>":                          true,
		"<a><!-- \u00d7 --></a>":                            true,
		"<a\u00d7/>":                                        false,
		"<a b\u00d7='1'/>":                                  false,
		"<a xmlns:p\u00d7='urn:x'/>":                        false,
		"<a><?p\u00d7?></a>":                                false,
		"<a></a\u00d7>":                                     false,
		"<\u0e01/>":                                         false, // Thai: left out
		"<a\u0300/>":                                        false, // a combining mark: left out
	} {
		_, err := tokens([]byte(doc))
		require.Equal(t, ok, err == nil, "%s: %v", doc, err)
		if !ok {
			require.ErrorIs(t, err, ErrMalformed)
		}
	}
}

// Every non-ASCII character the scanner accepts in a name, first or later, encoding/xml
// accepts there too (checked for all of Unicode).
func TestScanner_NameLettersAreEncodingXMLs(t *testing.T) {
	n := 0
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		var b [utf8.UTFMax]byte
		if !nonASCIIName(b[:utf8.EncodeRune(b[:], r)]) {
			continue // the scanner refuses it in a name: TestScanner_NonASCIINames
		}
		for _, name := range []string{string(r), "a" + string(r)} {
			doc := []byte("<" + name + "/>")
			_, err := tokens(doc)
			require.NoError(t, err, "%U", r)
			n++
			_, err = decoded(doc)
			require.NoError(t, err, "%U", r)
		}
	}
	require.Greater(t, n, 2*20000, "CJK alone has 20902")
}

// Declare puts an element cut out of a document in the scope of its ancestors' declarations.
func TestScanner_Declare(t *testing.T) {
	var s Scanner
	read := func(doc string, decls ...string) (string, error) {
		s.Reset([]byte(doc))
		for i := 0; i < len(decls); i += 2 {
			if err := s.Declare(decls[i], decls[i+1]); err != nil {
				return "", err
			}
		}
		var b strings.Builder
		for {
			k, err := s.Next()
			if err != nil {
				return b.String(), err
			}
			switch k {
			case Start:
				uri, local := s.Name()
				fmt.Fprintf(&b, "<{%s}%s>", uri, local)
			case EOF:
				return b.String(), nil
			}
		}
	}
	got, err := read(`<r:a><b/><r:c xmlns:r="urn:inner"/><d xmlns=""/></r:a>`, "r", "urn:r", "", "urn:d")
	require.NoError(t, err)
	require.Equal(t, "<{urn:r}a><{urn:d}b><{urn:inner}c><{}d>", got)
	require.Len(t, s.Scope(), 2, "the declared bindings stay to the end")

	// The same prefix declared twice: the last is in force.
	got, err = read(`<r:a/>`, "r", "urn:one", "r", "urn:two")
	require.NoError(t, err)
	require.Equal(t, "<{urn:two}a>", got)

	// Without them, the element's prefix is undeclared.
	_, err = read(`<r:a/>`)
	require.ErrorIs(t, err, ErrMalformed)

	// A Reset forgets them.
	_, err = read(`<r:a/>`, "", "urn:d")
	require.ErrorIs(t, err, ErrMalformed)

	for _, bad := range [][2]string{{"p", ""}, {"xmlns", "urn:x"}, {"xml", "urn:x"}, {"p", XMLNamespace}, {"a:b", "urn:x"}, {"1a", "urn:x"}, {"a b", "urn:x"}} {
		_, err := read(`<a/>`, bad[0], bad[1])
		require.ErrorIs(t, err, ErrMalformed, "%q", bad)
		if bad[1] != "" {
			require.NotContains(t, err.Error(), bad[1], "no content in the error")
		}
	}
	_, err = read(`<a/>`, "xml", XMLNamespace)
	require.NoError(t, err)

	s.Reset([]byte(`<a/>`))
	_, err = s.Next()
	require.NoError(t, err)
	require.Error(t, s.Declare("p", "urn:p"), "after the first token")
	require.False(t, errors.Is(s.Err(), ErrMalformed), "the scanner goes on")
}

// Declare costs no allocation once the scanner has read a document with as many declared
// bytes.
func TestScanner_DeclareDoesNotAllocate(t *testing.T) {
	doc := []byte(`<p:R xmlns:c="urn:c"><S><C>200</C></S><c:V>1</c:V><x:Y/></p:R>`)
	var s Scanner
	read := func() {
		s.Reset(doc)
		for _, d := range [][2]string{{"soapenv", "http://schemas.xmlsoap.org/soap/envelope/"}, {"p", "urn:p"}, {"x", "urn:x"}, {"", "urn:d"}} {
			require.NoError(t, s.Declare(d[0], d[1]))
		}
		for {
			k, err := s.Next()
			if err != nil || k == EOF {
				require.NoError(t, err)
				return
			}
		}
	}
	read()
	require.Zero(t, testing.AllocsPerRun(50, read))
}

// render appends what s hands out for the current token to b, in tokens' form.
func render(b *strings.Builder, s *Scanner, k Kind) {
	switch k {
	case Start:
		uri, local := s.Name()
		fmt.Fprintf(b, "<{%s}%s", uri, local)
		for _, a := range s.Attrs() {
			fmt.Fprintf(b, " %s:%s=%q", a.Prefix, a.Local, s.AttrValue(a))
		}
		b.WriteString("> ")
	case End:
		uri, local := s.Name()
		fmt.Fprintf(b, "</{%s}%s> ", uri, local)
	case Text:
		fmt.Fprintf(b, "%q ", s.TextBytes())
	}
}

// FuzzScanner_CutElement: the root's first child element, cut out at its Span and read with
// the root's Scope declared, reads as it does in place.
func FuzzScanner_CutElement(f *testing.F) {
	for _, doc := range []string{
		`<p:a xmlns:p="urn:p" xmlns="urn:d"><b p:x="1"><p:c xmlns:p="urn:q">t</p:c></b></p:a>`,
		`<a xmlns:p="urn:p&amp;q"> <p:b/> </a>`,
		"<a xmlns='urn:a'><!--c--><b xmlns=''><c>&#233;<![CDATA[x]]></c></b><d/></a>",
	} {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Scanner
		s.Reset(data)
		var scope [][2]string
		var inPlace strings.Builder
		start, end, depth := -1, -1, 0
		for end < 0 {
			k, err := s.Next()
			if err != nil || k == EOF {
				return
			}
			if k == Start && s.Depth() == 1 {
				for _, d := range s.Scope() {
					scope = append(scope, [2]string{string(d.Prefix), string(d.URI)})
				}
			}
			if k == Start && s.Depth() == 2 && start < 0 {
				start, _ = s.Span()
				depth = 2
			}
			if start >= 0 {
				render(&inPlace, &s, k)
				if k == End && s.Depth() == depth {
					_, end = s.Span()
				}
			}
		}
		var cut Scanner
		cut.Reset(data[start:end])
		for _, d := range scope {
			require.NoError(t, cut.Declare(d[0], d[1]), "%q", data)
		}
		var got strings.Builder
		for {
			k, err := cut.Next()
			require.NoError(t, err, "%q: %q", data, data[start:end])
			if k == EOF {
				break
			}
			render(&got, &cut, k)
		}
		require.Equal(t, inPlace.String(), got.String(), "%q", data)
	})
}
