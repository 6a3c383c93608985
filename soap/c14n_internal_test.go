package soap

import (
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"
)

// The order of attributes C14N prescribes (xmlsec1 applies it too, see
// TestXMLSec_VerifiesAwkwardBodies) and the namespaces exc-c14n keeps.
func TestCanonical_OrdersAttributesByNamespaceURIAndInheritsNamespaces(t *testing.T) {
	const src = `<e:Envelope xmlns:e="urn:env" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns="urn:default" xmlns:unused="urn:unused">` +
		`<e:Body b="2" a="1" xml:lang="fr" xsi:type="xs:string" xmlns:z="urn:a" z:k="v"><child/><!--gone--></e:Body></e:Envelope>`
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromString(src))
	body := doc.FindElement("//e:Body")

	got, err := canonical(body, "", nil)
	require.NoError(t, err)
	require.Equal(t, `<e:Body xmlns:e="urn:env" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:z="urn:a" a="1" b="2" xsi:type="xs:string" xml:lang="fr" z:k="v">`+
		`<child xmlns="urn:default"></child></e:Body>`, string(got))

	// The tree itself is untouched.
	require.True(t, strings.Contains(body.SelectAttrValue("b", ""), "2"))
	require.Len(t, body.Child, 2)
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
