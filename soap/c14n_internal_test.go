package soap

import (
	"encoding/base64"
	"os"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"
)

// The expected output is xmlsec1 1.2.37's pre-digest buffer for the same
// reference (--store-references --print-debug): attributes ordered by
// namespace URI, inherited namespaces declared where used, no xmlns="" where
// no default namespace was output, comments gone.
func TestCanonical_MatchesXMLSecOnAttributesAndNamespaces(t *testing.T) {
	const src = `<e:Envelope xmlns:e="urn:env" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns="urn:default" xmlns:unused="urn:unused">` +
		`<e:Body Id="b1" b="2" a="1" xml:lang="fr" xsi:type="xs:string" xmlns:z="urn:a" z:k="v"><child/><!--gone--><n xmlns=""><m/></n></e:Body></e:Envelope>`
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromString(src))
	body := doc.FindElement("//e:Body")

	got, err := canonical(body, "", nil)
	require.NoError(t, err)
	require.Equal(t, `<e:Body xmlns:e="urn:env" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:z="urn:a" Id="b1" a="1" b="2" xsi:type="xs:string" xml:lang="fr" z:k="v">`+
		`<child xmlns="urn:default"></child><n><m></m></n></e:Body>`, string(got))

	// The tree itself is untouched.
	require.True(t, strings.Contains(body.SelectAttrValue("b", ""), "2"))
	require.Len(t, body.Child, 3)
}

func TestCanonical_EmptyDefaultNamespaceAtApexIsNotDeclared(t *testing.T) {
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromString(`<a xmlns="urn:a"><b xmlns=""><c/></b><d/></a>`))
	got, err := canonical(doc.FindElement("//c"), "", nil)
	require.NoError(t, err)
	require.Equal(t, `<c></c>`, string(got))
	got, err = canonical(doc.FindElement("//d"), "", nil)
	require.NoError(t, err)
	require.Equal(t, `<d xmlns="urn:a"></d>`, string(got))
	got, err = canonical(doc.Root(), "", nil)
	require.NoError(t, err)
	require.Equal(t, `<a xmlns="urn:a"><b xmlns=""><c></c></b><d></d></a>`, string(got))
}

// The canonical form of the real acceptance list (signature omitted) is
// byte-identical to the pre-digest buffer of xmlsec1 1.2.37
// (--store-references --print-debug); this is the SHA-256 of that buffer.
// It differs from the list's DigestValue because the list was re-indented
// after signing.
func TestCanonical_MatchesXMLSecOnTheAcceptanceList(t *testing.T) {
	f, err := os.Open("testdata/servicelist-acceptance-2022-12.xml")
	require.NoError(t, err)
	defer f.Close()
	doc, err := ParseDocument(f, Limits{})
	require.NoError(t, err)
	root := doc.Root()
	d, err := digestOf(root, "", root.SelectElement("ds:Signature"))
	require.NoError(t, err)
	require.Equal(t, "e5Vieb3kHawzxcKSfsHEyXeMUQJNRlncnyuVKg6FRu4=", base64.StdEncoding.EncodeToString(d))
	require.NotEqual(t, "7GCb7lo8t5cclDzSHFP/yj4aTfxW9kYIX7CeNRyGSmI=", base64.StdEncoding.EncodeToString(d))
}
