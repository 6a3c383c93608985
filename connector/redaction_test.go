package connector

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
)

// The review's finding (LOW 8): at DEBUG level, an SSIN and a patient name echoed in a
// platform fault reached the log, and the fault text reached the caller's error verbatim.
func TestClient_FaultEchoingPersonalDataReachesNeitherLogNorError(t *testing.T) {
	env := newTestEnv(t) // logs observed at DEBUG
	pt := patients(env.p, 1)[0]
	echo := fmt.Sprintf("Patient %s (%s %s) is not known to this mutuality", pt.SSIN, pt.LastName, pt.FirstName)
	for _, code := range []string{"SOA-03001", "SOA-02001"} { // a business fault, and one that switches
		t.Run(code, func(t *testing.T) {
			for _, s := range env.p.Sites() {
				s.Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultSOAP, Code: code, FaultString: echo, NestedCode: "SSIN-" + pt.SSIN})
			}
			defer func() {
				for _, s := range env.p.Sites() {
					s.Clear(platformtest.ServiceInsurability)
				}
			}()
			body := insurabilityBody(t, InsurabilityRequest{SSIN: pt.SSIN, Date: env.clock.Now(), RequestType: RequestInformation}, env.c.origin, "call-"+code)
			_, err := env.c.Call(context.Background(), ServiceInsurability, ActionInsurability, body)
			require.Error(t, err)
			var fault *soap.Fault
			require.ErrorAs(t, err, &fault)
			require.Equal(t, echo, fault.String, "the caller can still read the fault itself")

			texts := []string{err.Error(), fmt.Sprintf("%+v", err)}
			for _, e := range env.logs.All() {
				texts = append(texts, e.Message)
				for k, v := range e.ContextMap() {
					texts = append(texts, fmt.Sprintf("%s=%v", k, v))
				}
			}
			require.Greater(t, len(texts), 2, "the call was logged")
			all := strings.Join(texts, "\n")
			require.Contains(t, all, "soap fault", "the fault was logged or returned")
			for _, personal := range []string{pt.SSIN, pt.LastName, pt.FirstName} {
				require.NotContains(t, all, personal)
			}
		})
	}
}
