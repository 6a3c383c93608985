package soap_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

// Parse's errors say what is malformed without quoting the input: a garbled answer's patient
// number stays out of the error text (the XML decoder quotes entities and names).
func TestParse_ErrorsQuoteNoContent(t *testing.T) {
	const ssin = "93051822361"
	for _, body := range []string{
		`<a>&` + ssin + `</a>`,
		`<a>&` + ssin + `;</a>`,
		`<a>&#` + ssin + `;</a>`,
		"<a\u00d7" + ssin + `/>`,
		`<a><b` + ssin + `></a></b` + ssin + `>`,
		`<a b=` + ssin + `/>`,
		`<a b="1" b` + ssin + `/>`,
	} {
		doc := `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>` + body + `</S:Body></S:Envelope>`
		_, err := soap.Parse(strings.NewReader(doc), soap.Limits{})
		require.ErrorIs(t, err, soap.ErrMalformed, body)
		require.NotContains(t, err.Error(), ssin, body)
	}
}
