package platformtest_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
)

// ehboxRequest builds a schema-valid SendMessageRequest with publication
// id pubID to the recipient (typ, id) carrying content.
func ehboxRequest(pubID, typ, id string, content []byte) *etree.Element {
	r := sampleRequest("ehbox-request.xml")
	r.CreateAttr("PublicationId", pubID)
	dc := r.SelectElement("DestinationContext")
	dc.SelectElement("Id").SetText(id)
	dc.SelectElement("Type").SetText(typ)
	r.FindElement(".//Document/EncryptableTextContent").SetText(base64.StdEncoding.EncodeToString(content))
	return r
}

func TestEHealthBox_DeduplicatesConcurrentRetriesAcrossSitesOnPublicationId(t *testing.T) {
	p := start(t, platformtest.Config{})
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Dorp")
	require.NoError(t, err)
	token := issue(t, p, "ehealth", id)
	const keys, retries = 2, 50

	// Sign once per key: a retry resends the same message.
	msgs := make([][]byte, keys)
	for k := range keys {
		msgs[k] = signWithToken(t, id.Key, token, ehboxRequest(fmt.Sprintf("PUB%010d", k), "NIHII", "25123456", []byte(fmt.Sprintf("payload %d", k))))
	}
	var wg sync.WaitGroup
	errs := make(chan error, keys*retries)
	for r := range retries {
		for k := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// The eHealthBox has one endpoint; every site serves every path.
				site := []string{"ehealth", "mycarenet"}[(r+k)%2]
				req, _ := http.NewRequest(http.MethodPost, p.URL(platformtest.ServiceEHealthBox, site), bytesReader(msgs[k]))
				req.Header.Set("SOAPAction", platformtest.ActionEHealthBox)
				resp, err := p.HTTPClient().Do(req)
				if err != nil {
					errs <- err
					return
				}
				defer resp.Body.Close()
				doc := etree.NewDocument()
				if _, err := doc.ReadFrom(resp.Body); err != nil {
					errs <- err
					return
				}
				code := doc.FindElement("//Status/Code")
				sent := doc.FindElement("//SendMessageResponse")
				if code == nil || code.Text() != platformtest.EHealthBoxOK || sent == nil || sent.SelectAttrValue("SentPublicationId", "") != fmt.Sprintf("PUB%010d", k) {
					errs <- errors.New("not the same success for a retry")
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	writes := p.Writes()
	require.Len(t, writes, keys, "each PublicationId accepted once")
	seen := map[string]bool{}
	for _, w := range writes {
		require.False(t, seen[w.Key])
		seen[w.Key] = true
		require.Equal(t, retries, w.Attempts)
		require.Equal(t, "NIHII:25123456", w.Partition)
		require.Equal(t, "Apotheek Dorp", w.Sender)
		require.Equal(t, platformtest.ServiceEHealthBox, w.Service)
		require.Contains(t, []string{"ehealth", "mycarenet"}, w.Site)
		var k int
		_, err := fmt.Sscanf(w.Key, "PUB%010d", &k)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("payload %d", k), string(w.Detail))
	}
	require.Equal(t, keys, p.Count("", platformtest.ServiceEHealthBox, platformtest.OutcomeOK))
	require.Equal(t, keys*(retries-1), p.Count("", platformtest.ServiceEHealthBox, platformtest.OutcomeDuplicate))
}

func TestEHealthBox_BusinessRejectionIsNotRecorded(t *testing.T) {
	p := start(t, platformtest.Config{})
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Haven")
	require.NoError(t, err)
	token := issue(t, p, "ehealth", id)
	p.SetWriteValidator(func(w platformtest.Write) error {
		if string(w.Detail) == "bad" {
			return errors.New("unknown product code")
		}
		return nil
	})
	send := func(key, detail string) *etree.Element {
		status, b := post(t, p.HTTPClient(), p.URL("ehbox", "ehealth"), platformtest.ActionEHealthBox,
			signWithToken(t, id.Key, token, ehboxRequest(key, "NIHII", "25123456", []byte(detail))))
		require.Equal(t, http.StatusOK, status, string(b))
		resp, f := answer(t, b)
		require.Nil(t, f)
		require.NoError(t, platformtest.ValidateElement(platformtest.SchemaEHealthBox, resp))
		return resp
	}
	resp := send("k1", "bad")
	require.Equal(t, platformtest.EHealthBoxRejected, resp.FindElement("./Status/Code").Text())
	require.Equal(t, "unknown product code", resp.FindElement("./Status/Message").Text())
	require.Empty(t, p.Writes())

	resp = send("k1", "good") // a corrected message under the same PublicationId
	require.Equal(t, platformtest.EHealthBoxOK, resp.FindElement("./Status/Code").Text())
	require.Len(t, p.Writes(), 1)
}
