package soap

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Answers Parse refuses, or might read otherwise than the scanner: scanEnvelope leaves them
// to Parse (the lexer before xmlpull accepted the first two and the quote).
func TestScanEnvelope_LeavesToParseWhatItCannotVouchFor(t *testing.T) {
	const env = `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"`
	for name, doc := range map[string]string{
		"name character outside XML's classes":   env + "><S:Body><a\u00d7/></S:Body></S:Envelope>",
		"processing instruction target likewise": env + "><S:Body><a/></S:Body></S:Envelope><?a\u00d7?>",
		"quote in a URI in scope":                env + ` xmlns:p='a"b'><S:Body><a/></S:Body></S:Envelope>`,
		"white space in a URI in scope":          env + " xmlns:p=\"urn:a\tb\"><S:Body><a/></S:Body></S:Envelope>",
		"byte order mark":                        "\xef\xbb\xbf" + env + "><S:Body><a/></S:Body></S:Envelope>",
		"encoding other than UTF-8":              `<?xml version="1.0" encoding="ISO-8859-1"?>` + env + "><S:Body><a/></S:Body></S:Envelope>",
		"version 1.1":                            `<?xml version="1.1"?>` + env + "><S:Body><a/></S:Body></S:Envelope>",
		"undeclared prefix (Parse allows it)":    env + "><S:Body><p:a/></S:Body></S:Envelope>",
		"two bodies":                             env + "><S:Body><a/></S:Body><S:Body><a/></S:Body></S:Envelope>",
		"empty body":                             env + "><S:Body> </S:Body></S:Envelope>",
	} {
		_, ok := scanEnvelope([]byte(doc), DefaultLimits)
		require.False(t, ok, name)
	}
	// Names of letters xmlpull knows encoding/xml reads alike are the lexer's.
	doc := []byte(env + "><S:Body><\u00e9t\u00e9 \u00e0='1'/></S:Body></S:Envelope>")
	_, ok := scanEnvelope(doc, DefaultLimits)
	require.True(t, ok)
	_, err := parseBytes(doc, DefaultLimits)
	require.NoError(t, err)
}

// The counts of Limits are those scanNodes makes: comments and processing instructions
// (the declaration included) against MaxComments, every node and white space outside the
// root against MaxNodes, the depth of empty elements too.
func TestScanEnvelope_CountsAsParseCounts(t *testing.T) {
	doc := []byte("<?xml version=\"1.0\"?>\n<!--a-->\n<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\"><S:Body><a>t<![CDATA[c]]><?p?><b/></a></S:Body></S:Envelope>\n")
	// Nodes: declaration, 2 blanks, comment, Envelope, Body, a, t, CDATA, p, b, trailing blank.
	c, err := scanNodes(doc, DefaultLimits)
	require.NoError(t, err)
	require.Equal(t, nodeCounts{elements: 4, nodes: 12, comments: 3}, c)
	for _, tc := range []struct {
		lim Limits
		ok  bool
	}{
		{Limits{MaxNodes: 12}, true},
		{Limits{MaxNodes: 11}, false},
		{Limits{MaxComments: 3}, true},
		{Limits{MaxComments: 2}, false},
		{Limits{MaxElements: 4}, true},
		{Limits{MaxElements: 3}, false},
		{Limits{MaxDepth: 4}, true},
		{Limits{MaxDepth: 3}, false}, // b, empty, is at depth 4
	} {
		_, ok := scanEnvelope(doc, tc.lim)
		require.Equal(t, tc.ok, ok, "%+v", tc.lim)
		_, err := parseBytes(doc, tc.lim.withDefaults())
		if ok {
			require.NoError(t, err)
		}
	}
}
