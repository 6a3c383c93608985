package soap_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

const platformFault = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <soap:Fault>
      <faultcode>soap:Server</faultcode>
      <faultstring>Service temporarily unavailable</faultstring>
      <faultactor>urn:be:fgov:ehealth:esb</faultactor>
      <detail>
        <ns2:BusinessError xmlns:ns2="urn:be:fgov:ehealth:errors:soa:v1" Id="err-1">
          <ns2:Origin>Server</ns2:Origin>
          <ns2:Code>SOA-02001</ns2:Code>
          <ns2:Message xml:lang="en">Service not available. Please contact your service desk</ns2:Message>
        </ns2:BusinessError>
        <ns2:SystemError xmlns:ns2="urn:be:fgov:ehealth:errors:soa:v1"><ns2:Code>SOA-02002</ns2:Code></ns2:SystemError>
      </detail>
    </soap:Fault>
  </soap:Body>
</soap:Envelope>`

func TestReadResponse_FaultIsATypedError(t *testing.T) {
	body, err := soap.ReadResponse(strings.NewReader(platformFault), soap.Limits{})
	require.Nil(t, body)
	var f *soap.Fault
	require.True(t, errors.As(err, &f))
	require.Equal(t, "soap:Server", f.Code)
	require.Equal(t, "Service temporarily unavailable", f.String)
	require.Equal(t, "urn:be:fgov:ehealth:esb", f.Actor)
	require.Equal(t, []string{"SOA-02001", "SOA-02002"}, f.FaultCodes())
	require.Equal(t, []string{"SOA-02001", "SOA-02002"}, f.AllCodes)
	require.True(t, f.HasCode("SOA-02002"))
	require.True(t, f.HasCode("Server"))
	require.True(t, f.HasCode("soap:Server"))
	require.False(t, f.HasCode("SOA-01001"))
	require.Equal(t, "soap fault soap:Server [SOA-02001 SOA-02002] (faultstring withheld)", err.Error())

	// The classifier of bcp sees faults through this interface only.
	var coded interface{ FaultCodes() []string }
	require.True(t, errors.As(err, &coded))
}

func TestReadResponse_ReturnsBodyContent(t *testing.T) {
	body, err := soap.ReadResponse(strings.NewReader(minimal), soap.Limits{})
	require.NoError(t, err)
	require.Equal(t, "r", body.Tag)
	require.Equal(t, "ok", body.Text())

	_, err = soap.ReadResponse(strings.NewReader(entityBomb), soap.Limits{})
	require.ErrorIs(t, err, soap.ErrDoctype)
}

func TestNewFaultEnvelope_RoundTrips(t *testing.T) {
	in := &soap.Fault{Code: "soapenv:Client", String: "not authenticated", Codes: []string{"SOA-01001"}, AllCodes: []string{"SOA-01001", "MCN-42"}}
	b, err := soap.Marshal(soap.NewFaultEnvelope(in))
	require.NoError(t, err)
	_, err = soap.ReadResponse(bytes.NewReader(b), soap.Limits{})
	var f *soap.Fault
	require.True(t, errors.As(err, &f))
	require.Equal(t, in, f)

	doc, err := soap.Parse(bytes.NewReader(b), soap.Limits{})
	require.NoError(t, err)
	got, ok := soap.FaultOf(doc)
	require.True(t, ok)
	require.Equal(t, in, got)

	doc, err = soap.Parse(strings.NewReader(minimal), soap.Limits{})
	require.NoError(t, err)
	_, ok = soap.FaultOf(doc)
	require.False(t, ok)
}

// Only detail/*/Code decides switching (FaultCodes); every Code under detail, at any depth,
// is reported (AllCodes, Error, HasCode).
func TestFaultOf_NestedCodesAreReportedNotSwitching(t *testing.T) {
	const nested = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
<faultcode>s:Client</faultcode><faultstring>refused</faultstring><detail>
<Code>TOP</Code>
<e:BusinessError xmlns:e="urn:e"><e:Code>SOA-03001</e:Code><e:Details><e:Detail><e:Code>SOA-02001</e:Code><x><Code>MCN-7</Code></x></e:Detail></e:Details></e:BusinessError>
</detail></s:Fault></s:Body></s:Envelope>`
	_, err := soap.ReadResponse(strings.NewReader(nested), soap.Limits{})
	var f *soap.Fault
	require.ErrorAs(t, err, &f)
	require.Equal(t, []string{"SOA-03001"}, f.FaultCodes())
	require.Equal(t, []string{"TOP", "SOA-03001", "SOA-02001", "MCN-7"}, f.AllCodes)
	require.True(t, f.HasCode("MCN-7"))
	require.Contains(t, f.Error(), "[TOP SOA-03001 SOA-02001 MCN-7]")
}

// The review's finding (LOW 8): a platform fault echoing a patient's SSIN and
// name reached the caller's error text (and every log line carrying it).
func TestFault_ErrorTextHoldsNoPersonalData(t *testing.T) {
	resp := `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
  <soapenv:Fault>
    <faultcode>soapenv:Client</faultcode>
    <faultstring>Patient 85073003328 (DUPONT Jeanne) is not known to this mutuality</faultstring>
    <detail><soa:BusinessError xmlns:soa="urn:be:fgov:ehealth:errors:soa:v1"><soa:Code>MSG-00002</soa:Code><soa:Code>SSIN-85073003328</soa:Code><soa:Code>DUPONT Jeanne</soa:Code></soa:BusinessError></detail>
  </soapenv:Fault>
</soapenv:Body></soapenv:Envelope>`
	_, err := soap.ReadResponse(strings.NewReader(resp), soap.Limits{})
	var f *soap.Fault
	require.True(t, errors.As(err, &f))
	text := fmt.Sprintf("%v | %+v | %s", err, err, fmt.Errorf("call failed: %w", err))
	for _, personal := range []string{"85073003328", "DUPONT", "Jeanne"} {
		require.NotContains(t, text, personal)
	}
	require.Equal(t, "soap fault soapenv:Client [MSG-00002 [redacted] [redacted]] (faultstring withheld)", err.Error())
	require.Contains(t, f.String, "85073003328", "the caller can still read the fault itself")
	require.True(t, f.HasCode("SSIN-85073003328"), "and match on the real codes")
}
