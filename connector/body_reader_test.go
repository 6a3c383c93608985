package connector

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

// The live path reads only the answer's Body element, in the scope of the namespaces
// declared on Envelope and Body; an answer soap's lexer leaves to the parser (many
// namespaces, many attributes) comes serialised again and reads the same.
func TestInsurabilityBody_ReadsTheElementInItsScope(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("testdata", "answers", "insurability-success.xml"))
	require.NoError(t, err)
	want, err := parseInsurabilityResponse(doc, "12345678901234")
	require.NoError(t, err)
	const decls = ` xmlns:p="urn:be:fgov:ehealth:insurability:protocol:v2" xmlns:c="urn:be:fgov:ehealth:insurability:core:v2"`
	root := doc[bytes.Index(doc, []byte("\n<p:"))+1:]
	bare := bytes.Replace(root, []byte(decls), nil, 1) // the answer relying on its ancestors
	require.NotEqual(t, root, bare)
	var many, attrs strings.Builder
	for i := range 40 {
		if i < 20 {
			many.WriteString(` xmlns:n` + strconv.Itoa(i) + `="urn:n` + strconv.Itoa(i) + `"`)
		}
		attrs.WriteString(` a` + strconv.Itoa(i) + `="x"`)
	}
	env := func(prolog, envAttrs, header, bodyAttrs string, answer []byte) []byte {
		return []byte(prolog + `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"` + envAttrs + `>` + header +
			`<soapenv:Body` + bodyAttrs + `>` + string(answer) + `</soapenv:Body></soapenv:Envelope>`)
	}
	for name, raw := range map[string][]byte{
		"declared on the answer":                 env("", "", "", "", root),
		"declared on the Envelope":               env("", decls, "", "", bare),
		"declared on the Body":                   env("", "", "", decls, bare),
		"a header redeclares a prefix":           env("", decls, `<soapenv:Header xmlns:c="urn:wrong"><c:X/></soapenv:Header>`, "", bare),
		"the answer redeclares a prefix":         env("", ` xmlns:p="urn:wrong" xmlns:c="urn:wrong"`, "", "", root),
		"many attributes in the header (parsed)": env("", decls, `<soapenv:Header><h`+attrs.String()+`/></soapenv:Header>`, "", bare),
		"many namespaces (parsed)":               env("", decls+many.String(), "", "", bare),
		"declaration and comment (lexed)":        env("<?xml version=\"1.0\"?>\n<!-- c -->\n", "", "", decls, bare),
		"body with white space around (lexed)":   env("", decls, "", "", append(append([]byte("\n  "), bare...), "\n"...)),
	} {
		got, err := parseInsurabilityEnvelope(raw, "12345678901234")
		require.NoError(t, err, name)
		require.Equal(t, want, got, name)
	}

	// A default namespace in scope puts the unqualified Status in it: a schema violation.
	_, err = parseInsurabilityEnvelope(env("", decls+` xmlns="urn:d"`, "", "", bare), "12345678901234")
	var re *ResponseError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "GetInsurabilityForPharmacistResponse/Status", re.Element)

	// Not declared anywhere: Parse allows the prefix, the reader does not.
	_, err = parseInsurabilityEnvelope(env("", "", "", "", bare), "12345678901234")
	require.ErrorIs(t, err, soap.ErrMalformed)
	require.NotContains(t, err.Error(), "93051822361")

	// The Scope soap hands over is what the reader resolves against.
	a, err := soap.ReadRawAnswer(env("", decls, "", "", bare), soap.DefaultLimits)
	require.NoError(t, err)
	require.Len(t, a.Scope, 3)
	_, err = parseInsurabilityBody(a.Body, a.Scope[:1], "12345678901234")
	require.ErrorIs(t, err, soap.ErrMalformed, "without p and c")
	_, err = parseInsurabilityBody(a.Body, []soap.Namespace{{Prefix: "p", URI: ""}}, "12345678901234")
	require.ErrorIs(t, err, soap.ErrMalformed, "an invalid declaration is refused")
}

// Reading the Body element in its scope costs the allocations of reading the answer alone
// (the strings it keeps): declaring the scope and the pooled scanner cost none.
func TestInsurabilityBody_AllocatesAsTheAnswerAlone(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	doc, err := os.ReadFile(filepath.Join("testdata", "answers", "insurability-success.xml"))
	require.NoError(t, err)
	a, err := soap.ReadRawAnswer(inEnvelope(t, doc), soap.DefaultLimits)
	require.NoError(t, err)
	body := bytes.Replace(a.Body, []byte(` xmlns:p="urn:be:fgov:ehealth:insurability:protocol:v2"`), nil, 1)
	scope := append(a.Scope, soap.Namespace{Prefix: "p", URI: "urn:be:fgov:ehealth:insurability:protocol:v2"})
	_, err = parseInsurabilityBody(body, scope, "12345678901234")
	require.NoError(t, err)
	alone := testing.AllocsPerRun(50, func() { _, _ = parseInsurabilityResponse(doc, "12345678901234") })
	inScope := testing.AllocsPerRun(50, func() { _, _ = parseInsurabilityBody(body, scope, "12345678901234") })
	require.Equal(t, alone, inScope)
	require.Less(t, inScope, 20.0)
}

// BenchmarkInsurabilityBody: the connector's read of a live answer once soap has checked the
// envelope (PostRaw): the Body element only, in its scope; compare BenchmarkInsurabilityWire's
// answer, which checks the envelope too (soap.ReadRawAnswer).
func BenchmarkInsurabilityBody(b *testing.B) {
	doc, err := os.ReadFile(filepath.Join("testdata", "answers", "insurability-success.xml"))
	require.NoError(b, err)
	a, err := soap.ReadRawAnswer(inEnvelope(b, doc), soap.DefaultLimits)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseInsurabilityBody(a.Body, a.Scope, "12345678901234"); err != nil {
			b.Fatal(err)
		}
	}
}
