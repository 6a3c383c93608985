package connector

import "github.com/ehgate/ehgate/soap"

// parseInsurabilityEnvelope reads the GetInsurabilityForPharmacistResponse in an answer's
// bytes as the live path does: soap's check of the envelope (soap.ReadRawAnswer, PostRaw's),
// then the Body element in its scope.
func parseInsurabilityEnvelope(raw []byte, reference string) (InsurabilityAnswer, error) {
	a, err := soap.ReadRawAnswer(raw, soap.DefaultLimits)
	if err != nil {
		return InsurabilityAnswer{}, err
	}
	return parseInsurabilityBody(a.Body, a.Scope, reference)
}
