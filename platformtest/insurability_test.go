package platformtest_test

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
)

// sampleRequest returns the root of a sample request of testdata/messages
// (written from the schemas, valid per xmllint), as a detached element.
func sampleRequest(name string) *etree.Element {
	doc := etree.NewDocument()
	if err := doc.ReadFromFile(filepath.Join("testdata", "messages", name)); err != nil {
		panic(err)
	}
	return doc.Root().Copy()
}

// insurabilityRequest builds a schema-valid GetInsurabilityForPharmacistRequest
// for ssin ("" = no Ssin: the caller adds RegNrWithMut and Mutuality).
func insurabilityRequest(ssin string, day time.Time) *etree.Element {
	r := sampleRequest("insurability-request.xml")
	r.FindElement(".//InsurabilityRequest/Date").SetText(day.Format("2006-01-02"))
	s := r.FindElement(".//InsurabilityRequest/CareReceiver/Ssin")
	if ssin == "" {
		s.Parent().RemoveChild(s)
	} else {
		s.SetText(ssin)
	}
	return r
}

// genericRequest builds a schema-valid GenericInsurability GetInsurabilityRequest
// for inss ("" = no Inss).
func genericRequest(inss string) *etree.Element {
	r := sampleRequest("genins-request.xml")
	day := time.Now().Format("2006-01-02")
	r.FindElement(".//Period/PeriodStart").SetText(day)
	r.FindElement(".//Period/PeriodEnd").SetText(day)
	s := r.FindElement(".//Request/CareReceiverId/Inss")
	if inss == "" {
		s.Parent().RemoveChild(s)
	} else {
		s.SetText(inss)
	}
	return r
}

func pick(t *testing.T, p *platformtest.Platform, match func(platformtest.Patient) bool) platformtest.Patient {
	t.Helper()
	for _, pt := range p.Patients() {
		if match(pt) {
			return pt
		}
	}
	t.Fatal("no such patient in the population")
	return platformtest.Patient{}
}

func TestInsurability_AnswersFromThePopulationOnEverySite(t *testing.T) {
	p := start(t, platformtest.Config{Seed: 3})
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Noord")
	require.NoError(t, err)
	token := issue(t, p, "ehealth", id)
	today := time.Now()

	insured := pick(t, p, func(pt platformtest.Patient) bool { return pt.Insured && pt.Regime == platformtest.RegimeElevated })
	lapsed := pick(t, p, func(pt platformtest.Patient) bool { return pt.Known && !pt.Insured })
	unknown := pick(t, p, func(pt platformtest.Patient) bool { return !pt.Known })

	for _, site := range []string{"ehealth", "mycarenet"} { // every site serves every path
		t.Run(site, func(t *testing.T) {
			url := p.URL(platformtest.ServiceInsurability, site)
			ask := func(ssin string) *etree.Element {
				status, b := post(t, p.HTTPClient(), url, platformtest.ActionInsurability, signWithToken(t, id.Key, token, insurabilityRequest(ssin, today)))
				require.Equal(t, http.StatusOK, status, string(b))
				resp, f := answer(t, b)
				require.Nil(t, f)
				require.Equal(t, "GetInsurabilityForPharmacistResponse", resp.Tag)
				require.Equal(t, platformtest.NSInsurabilityProtocol, resp.NamespaceURI())
				return resp
			}

			resp := ask(insured.SSIN)
			require.Equal(t, platformtest.InsMajorOK, resp.FindElement("./ReturnInfo/ReturnCode/Major").Text())
			require.Equal(t, "200", resp.FindElement("./Status/Code").Text())
			require.Equal(t, insured.SSIN, resp.FindElement("./InsurabilityResponse/CareReceiver/Ssin").Text())
			require.Equal(t, insured.Birthday.Format("2006-01-02"), resp.FindElement("./InsurabilityResponse/CareReceiver/Birthday").Text())
			require.Equal(t, "elevated", resp.FindElement("./InsurabilityResponse/Coverage/Entitlement/ThirdPartyPayerRegime").Text())
			require.Equal(t, insured.PaymentApproval, resp.FindElement("./InsurabilityResponse/Verification/PaymentApproval").Text())

			resp = ask(lapsed.SSIN)
			require.Equal(t, platformtest.InsMajorOK, resp.FindElement("./ReturnInfo/ReturnCode/Major").Text())
			require.Nil(t, resp.FindElement("./InsurabilityResponse/Coverage"), "coverage ended")

			resp = ask(unknown.SSIN)
			require.Equal(t, platformtest.InsMajorUnknown, resp.FindElement("./ReturnInfo/ReturnCode/Major").Text())
			require.Nil(t, resp.FindElement("./InsurabilityResponse/Coverage"))
		})
	}
	require.Equal(t, 2, p.Count("", platformtest.ServiceInsurability, platformtest.OutcomeBusiness))
	require.Equal(t, 4, p.Count("", platformtest.ServiceInsurability, platformtest.OutcomeOK))
}

func TestInsurability_RejectsWhatTheRealPlatformRejects(t *testing.T) {
	p := start(t, platformtest.Config{TokenLifetime: time.Hour})
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Oost")
	require.NoError(t, err)
	gp, err := p.NewIdentity(platformtest.GP, "Dr. Jacobs")
	require.NoError(t, err)
	token := issue(t, p, "ehealth", id)
	gpToken := issue(t, p, "ehealth", gp)
	oKey, _ := outsider()
	patient := pick(t, p, func(pt platformtest.Patient) bool { return pt.Insured })
	body := func() *etree.Element { return insurabilityRequest(patient.SSIN, time.Now()) }

	tamper := func(msg []byte) []byte {
		doc := etree.NewDocument()
		require.NoError(t, doc.ReadFromBytes(msg))
		doc.FindElement("//Ssin").SetText(pick(t, p, func(pt platformtest.Patient) bool { return pt.Known && pt.SSIN != patient.SSIN }).SSIN)
		b, err := doc.WriteToBytes()
		require.NoError(t, err)
		return b
	}
	staleSigner := func() []byte {
		msg := signWithTokenAt(t, id.Key, token, body(), time.Now().Add(-20*time.Minute))
		return msg
	}
	site := p.Site("ehealth")

	tests := []struct {
		name   string
		msg    func() []byte
		inject func()
		code   string
	}{
		{"body altered after signing", func() []byte { return tamper(signWithToken(t, id.Key, token, body())) }, nil, "SOA-01001"},
		{"signed by another key than the holder's", func() []byte { return signWithToken(t, oKey, token, body()) }, nil, "SOA-01001"},
		{"no token, certificate only", func() []byte { return signWithCert(t, id.Key, id.Certificate, body()) }, nil, "SOA-01001"},
		{"stale timestamp", staleSigner, nil, "SOA-01001"},
		{"token past its lifetime on a skewed clock", func() []byte { return signWithToken(t, id.Key, token, body()) },
			func() {
				site.Inject("insurability", platformtest.Fault{Kind: platformtest.FaultClockSkew, Skew: 2 * time.Hour})
			}, "SOA-01001"},
		{"token declared expired", func() []byte { return signWithToken(t, id.Key, token, body()) },
			func() { site.Inject("insurability", platformtest.Fault{Kind: platformtest.FaultExpiredToken}) }, "SOA-01001"},
		{"gp token on the pharmacists' service", func() []byte { return signWithToken(t, gp.Key, gpToken, body()) }, nil, "SOA-01002"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.inject != nil {
				tt.inject()
				defer site.Clear("insurability")
			}
			status, b := post(t, p.HTTPClient(), p.URL("insurability", "ehealth"), platformtest.ActionInsurability, tt.msg())
			require.Equal(t, http.StatusInternalServerError, status, string(b))
			_, f := answer(t, b)
			require.NotNil(t, f, string(b))
			require.Equal(t, "soapenv:Client", f.Code)
			require.Equal(t, []string{tt.code}, f.FaultCodes())
		})
	}
	require.Equal(t, len(tests), p.Count("ehealth", "insurability", platformtest.OutcomeRejected))

	// The same token still works once the faults are cleared.
	status, b := post(t, p.HTTPClient(), p.URL("insurability", "ehealth"), platformtest.ActionInsurability, signWithToken(t, id.Key, token, body()))
	require.Equal(t, http.StatusOK, status, string(b))
}

func TestInsurability_TokensFromTheFaultySTSAreRejected(t *testing.T) {
	p := start(t, platformtest.Config{})
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek West")
	require.NoError(t, err)
	patient := pick(t, p, func(pt platformtest.Patient) bool { return pt.Insured })
	for _, kind := range []platformtest.FaultKind{platformtest.FaultBadSTSSignature, platformtest.FaultExpiredToken} {
		t.Run(kind.String(), func(t *testing.T) {
			p.Site("ehealth").Inject("sts", platformtest.Fault{Kind: kind})
			defer p.Site("ehealth").Clear("sts")
			token := issue(t, p, "ehealth", id)
			status, b := post(t, p.HTTPClient(), p.URL("insurability", "mycarenet"), platformtest.ActionInsurability,
				signWithToken(t, id.Key, token, insurabilityRequest(patient.SSIN, time.Now())))
			requireRejected(t, status, b)
		})
	}
}

func TestGenericInsurability_AnswersCareProvidersAndBusinessFaults(t *testing.T) {
	p := start(t, platformtest.Config{Seed: 9})
	gp, err := p.NewIdentity(platformtest.GP, "Dr. Claes")
	require.NoError(t, err)
	token := issue(t, p, "ehealth", gp)
	insured := pick(t, p, func(pt platformtest.Patient) bool { return pt.Insured })
	unknown := pick(t, p, func(pt platformtest.Patient) bool { return !pt.Known })

	ask := func(inss string) *etree.Element {
		status, b := post(t, p.HTTPClient(), p.URL(platformtest.ServiceGenericInsurability, "mycarenet"), platformtest.ActionGenericInsurability,
			signWithToken(t, gp.Key, token, genericRequest(inss)))
		require.Equal(t, http.StatusOK, status, string(b))
		resp, f := answer(t, b)
		require.Nil(t, f)
		require.Equal(t, platformtest.NSGenericInsurabilityProtocol, resp.NamespaceURI())
		return resp
	}
	resp := ask(insured.SSIN)
	require.Nil(t, resp.FindElement("./Response/MessageFault"))
	require.Equal(t, insured.SSIN, resp.FindElement("./Response/CareReceiverDetail/Inss").Text())
	item := resp.FindElement("./Response/InsurabilityResponseDetail/InsurabilityList/InsurabilityItem")
	require.NotNil(t, item)
	require.Equal(t, insured.CT1, item.SelectElement("CT1").Text())
	require.Equal(t, insured.Mutuality, item.SelectElement("Mutuality").Text())

	resp = ask(unknown.SSIN)
	require.Equal(t, "NO_IO_ERROR", resp.FindElement("./Response/MessageFault/FaultCode").Text())
	require.Equal(t, unknown.SSIN, resp.FindElement("./Response/CareReceiverId/Inss").Text())

	resp = ask("12345678901") // wrong check digits
	require.Equal(t, "INPUT_ERROR", resp.FindElement("./Response/MessageFault/FaultCode").Text())
}

func TestInsurability_FindsPatientsByRegistrationNumberAtTheirMutuality(t *testing.T) {
	p := start(t, platformtest.Config{Seed: 5})
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Mutualiteit")
	require.NoError(t, err)
	token := issue(t, p, "ehealth", id)
	pt := pick(t, p, func(pt platformtest.Patient) bool { return pt.Insured })

	v2 := insurabilityRequest("", time.Now())
	cr := v2.FindElement(".//CareReceiver")
	cr.CreateElement("core:RegNrWithMut").SetText(pt.RegNrWithMut)
	cr.CreateElement("core:Mutuality").SetText(pt.Mutuality)
	status, b := post(t, p.HTTPClient(), p.URL("insurability", "ehealth"), platformtest.ActionInsurability, signWithToken(t, id.Key, token, v2))
	require.Equal(t, 200, status, string(b))
	resp, _ := answer(t, b)
	require.Equal(t, pt.SSIN, resp.FindElement("./InsurabilityResponse/CareReceiver/Ssin").Text())

	gen := genericRequest("")
	cid := gen.FindElement(".//CareReceiverId")
	cid.CreateElement("core:RegNrWithMut").SetText(pt.RegNrWithMut)
	cid.CreateElement("core:Mutuality").SetText(pt.Mutuality)
	status, b = post(t, p.HTTPClient(), p.URL("genericinsurability", "ehealth"), platformtest.ActionGenericInsurability, signWithToken(t, id.Key, token, gen))
	require.Equal(t, 200, status, string(b))
	resp, _ = answer(t, b)
	require.Equal(t, pt.SSIN, resp.FindElement("./Response/CareReceiverDetail/Inss").Text())

	cid.SelectElement("Mutuality").SetText("999") // the right number at the wrong mutuality
	status, b = post(t, p.HTTPClient(), p.URL("genericinsurability", "ehealth"), platformtest.ActionGenericInsurability, signWithToken(t, id.Key, token, gen))
	require.Equal(t, 200, status, string(b))
	resp, _ = answer(t, b)
	require.Equal(t, "NO_IO_ERROR", resp.FindElement("./Response/MessageFault/FaultCode").Text())
}
