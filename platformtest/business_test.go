package platformtest_test

import (
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
)

// Every authenticated service accepts a message signed by the token's
// holder and rejects, with SOA-01001, one signed by another key or altered
// after signing.
func TestBusinessServices_AcceptTheHolderAndRejectOtherKeysAndAlteredBodies(t *testing.T) {
	p := start(t, platformtest.Config{})
	pharmacy, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Plein")
	require.NoError(t, err)
	token := issue(t, p, "mycarenet", pharmacy)
	oKey, _ := outsider()
	patient := pick(t, p, func(pt platformtest.Patient) bool { return pt.Insured })

	services := []struct {
		service, action string
		body            func() *etree.Element
		alter           string // local name of an element whose text is changed
	}{
		{platformtest.ServiceInsurability, platformtest.ActionInsurability, func() *etree.Element { return insurabilityRequest(patient.SSIN, time.Now()) }, "Date"},
		{platformtest.ServiceGenericInsurability, platformtest.ActionGenericInsurability, func() *etree.Element { return genericRequest(patient.SSIN) }, "InsurabilityRequestType"},
		{platformtest.ServiceEHealthBox, platformtest.ActionEHealthBox, func() *etree.Element { return ehboxRequest("P000000000001", "NIHII", "25123456", []byte("x")) }, "Title"},
	}
	for _, svc := range services {
		t.Run(svc.service, func(t *testing.T) {
			for _, site := range []string{"ehealth", "mycarenet"} {
				url := p.URL(svc.service, site)
				status, b := post(t, p.HTTPClient(), url, svc.action, signWithToken(t, pharmacy.Key, token, svc.body()))
				require.Equal(t, 200, status, string(b))

				status, b = post(t, p.HTTPClient(), url, svc.action, signWithToken(t, oKey, token, svc.body()))
				requireRejected(t, status, b)

				doc := etree.NewDocument()
				require.NoError(t, doc.ReadFromBytes(signWithToken(t, pharmacy.Key, token, svc.body())))
				doc.FindElement("//" + svc.alter).SetText("altered")
				altered, err := doc.WriteToBytes()
				require.NoError(t, err)
				status, b = post(t, p.HTTPClient(), url, svc.action, altered)
				requireRejected(t, status, b)
			}
		})
	}
	require.Len(t, p.Writes(), 1, "the duplicate message on the second site is not a second write")
}
