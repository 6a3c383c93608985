package platformtest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
)

func get(t *testing.T, c *http.Client, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// fetchList gets .sha2 and .xml, checks the hash, verifies the signature
// against the pinned CA and returns the list's root.
func fetchList(t *testing.T, p *platformtest.Platform) (sha string, root *etree.Element) {
	t.Helper()
	_, shaB := get(t, p.HTTPClient(), p.ServiceListBaseURL()+".sha2")
	resp, xml := get(t, p.HTTPClient(), p.ServiceListBaseURL()+".xml")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sum := sha256.Sum256(xml)
	require.Equal(t, hex.EncodeToString(sum[:]), string(shaB), ".sha2 is the hex SHA-256 of .xml")
	doc, err := soap.ParseDocument(bytesReader(xml), soap.Limits{})
	require.NoError(t, err)
	_, err = soap.VerifyEnveloped(doc.Root(), p.ServiceListRoots(), soap.VerifyEnvelopedOptions{IDAttr: "Id"})
	require.NoError(t, err)
	return string(shaB), doc.Root()
}

func endpoints(root *etree.Element, service string) map[string]string {
	out := map[string]string{}
	for _, s := range root.FindElements("./Service") {
		if s.SelectAttrValue("Id", "") != platformtest.UDDIPrefix+service {
			continue
		}
		for _, e := range s.FindElements(".//Endpoint") {
			out[e.Text()] = e.SelectAttrValue("Order", "") + " " + e.SelectAttrValue("Status", "")
		}
	}
	return out
}

func TestServiceList_IsResignedWithNewHashAfterEndpointChange(t *testing.T) {
	p := start(t, platformtest.Config{ActiveBCP: true})
	sha1, root := fetchList(t, p)
	require.Equal(t, platformtest.NSServiceListV2, root.NamespaceURI())
	require.NotNil(t, root.FindElement("./Signature/Object/QualifyingProperties/SignedProperties/SignedSignatureProperties/SigningTime"), "XAdES SigningTime")
	for _, s := range root.FindElements("./Service") {
		if s.SelectAttrValue("Id", "") == platformtest.UDDIPrefix+platformtest.ServiceInsurability {
			c := s.SelectElement("Cache")
			require.NotNil(t, c, "v2 cache hint")
			require.Equal(t, "ENDPOINT_FIRST", c.SelectAttrValue("Strategy", ""))
			require.Equal(t, "P30D", c.FindElement("./Expiry").SelectAttrValue("Duration", ""))
			require.Contains(t, c.FindElement("./Key").Text(), "xsl:stylesheet", "inline XSLT (Key has simple content in the schema)")
		}
	}
	primary, fallback := p.URL("insurability", "ehealth"), p.URL("insurability", "mycarenet")
	require.Equal(t, p.Site("ehealth").URL()+"/Insurability/v2", primary)
	require.Equal(t, p.Site("mycarenet").URL()+"/ehealth/bcp/insurability", fallback)
	require.Equal(t, map[string]string{primary: "0 ACTIVE", fallback: "1 ACTIVE"}, endpoints(root, platformtest.ServiceInsurability))
	require.Equal(t, map[string]string{p.URL("sts", "ehealth"): "0 ACTIVE"}, endpoints(root, platformtest.ServiceSTS))
	issued1, err := time.Parse(time.RFC3339, root.SelectAttrValue("IssueInstant", ""))
	require.NoError(t, err)

	p.SetEndpointStatus(platformtest.ServiceInsurability, "ehealth", false)

	sha2, root2 := fetchList(t, p)
	require.NotEqual(t, sha1, sha2)
	require.Equal(t, sha2, p.ServiceListSHA256())
	require.Equal(t, map[string]string{primary: "0 INACTIVE", fallback: "1 ACTIVE"}, endpoints(root2, platformtest.ServiceInsurability))
	issued2, err := time.Parse(time.RFC3339, root2.SelectAttrValue("IssueInstant", ""))
	require.NoError(t, err)
	require.True(t, issued2.After(issued1), "IssueInstant advances: %v then %v", issued1, issued2)

	// An altered copy does not verify.
	root2.FindElement(".//Endpoint").CreateAttr("Status", "INACTIVE") // was ACTIVE
	_, err = soap.VerifyEnveloped(root2, p.ServiceListRoots(), soap.VerifyEnvelopedOptions{IDAttr: "Id"})
	require.ErrorIs(t, err, soap.ErrDigest)
	// Another platform's CA does not verify it either.
	other := start(t, platformtest.Config{})
	_, err = soap.VerifyEnveloped(mustParse(t, p.ServiceList()), other.ServiceListRoots(), soap.VerifyEnvelopedOptions{IDAttr: "Id"})
	require.ErrorIs(t, err, soap.ErrUntrusted)
}

func TestServiceList_ServesVersion1AndConditionalGets(t *testing.T) {
	p := start(t, platformtest.Config{ListVersion: 1})
	sha, root := fetchList(t, p)
	require.Equal(t, platformtest.NSServiceListV1, root.NamespaceURI())
	require.Nil(t, root.FindElement(".//EndpointList"))
	require.Len(t, endpoints(root, platformtest.ServiceGenericInsurability), 2)

	resp, body := get(t, p.HTTPClient(), p.ServiceListBaseURL()+".xml", "If-None-Match", `"`+sha+`"`)
	require.Equal(t, http.StatusNotModified, resp.StatusCode)
	require.Empty(t, body)
}

// The default list has the production shape: the MyCareNet services have
// their eHealth endpoint ACTIVE and their BCP endpoint INACTIVE; the STS, the
// ETK depot and the eHealthBox one eHealth endpoint. The platform moves a
// service by publishing a newer signed list, and moves it back.
func TestServiceList_ProductionShapeAndMoveToTheBCPSite(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			p := start(t, platformtest.Config{ListVersion: version})
			sha1, root := fetchList(t, p)
			schema := map[int]platformtest.Schema{1: platformtest.SchemaServiceListV1, 2: platformtest.SchemaServiceListV2}[version]
			require.NoError(t, platformtest.ValidateElement(schema, root))
			ins := func(site string) string { return p.URL(platformtest.ServiceInsurability, site) }
			gen := func(site string) string { return p.URL(platformtest.ServiceGenericInsurability, site) }
			require.Equal(t, map[string]string{ins("ehealth"): "0 ACTIVE", ins("mycarenet"): "1 INACTIVE"}, endpoints(root, platformtest.ServiceInsurability))
			require.Equal(t, map[string]string{gen("ehealth"): "0 ACTIVE", gen("mycarenet"): "1 INACTIVE"}, endpoints(root, platformtest.ServiceGenericInsurability))
			for _, svc := range []string{platformtest.ServiceSTS, platformtest.ServiceETK, platformtest.ServiceEHealthBox} {
				require.Equal(t, map[string]string{p.URL(svc, "ehealth"): "0 ACTIVE"}, endpoints(root, svc), svc)
			}

			require.NoError(t, p.MoveService(platformtest.ServiceInsurability, "mycarenet"))
			sha2, root2 := fetchList(t, p)
			require.NotEqual(t, sha1, sha2)
			require.NoError(t, platformtest.ValidateElement(schema, root2))
			_, err := soap.VerifyEnveloped(root2, p.ServiceListRoots(), soap.VerifyEnvelopedOptions{IDAttr: "Id"})
			require.NoError(t, err, "the moved list is signed")
			require.Equal(t, map[string]string{ins("ehealth"): "0 INACTIVE", ins("mycarenet"): "1 ACTIVE"}, endpoints(root2, platformtest.ServiceInsurability))
			require.Equal(t, map[string]string{gen("ehealth"): "0 ACTIVE", gen("mycarenet"): "1 INACTIVE"}, endpoints(root2, platformtest.ServiceGenericInsurability), "only the moved service changes")
			require.True(t, p.EndpointActive(platformtest.ServiceInsurability, "mycarenet"))

			require.NoError(t, p.RestoreService(platformtest.ServiceInsurability))
			_, root3 := fetchList(t, p)
			require.Equal(t, map[string]string{ins("ehealth"): "0 ACTIVE", ins("mycarenet"): "1 INACTIVE"}, endpoints(root3, platformtest.ServiceInsurability))

			require.Error(t, p.MoveService(platformtest.ServiceSTS, "mycarenet"), "the STS has no BCP endpoint")
		})
	}
}
