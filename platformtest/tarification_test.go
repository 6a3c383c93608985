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

func tarificationRequest(key, partition string, detail []byte) *etree.Element {
	r := etree.NewElement("tar:SendTarificationRequest")
	r.CreateAttr("xmlns:tar", platformtest.NSTarification)
	r.CreateElement("tar:CommonInput").CreateElement("tar:InputReference").SetText(key)
	r.CreateElement("tar:Partition").SetText(partition)
	r.CreateElement("tar:Detail").SetText(base64.StdEncoding.EncodeToString(detail))
	return r
}

func TestTarification_DeduplicatesConcurrentRetriesAcrossSites(t *testing.T) {
	p := start(t, platformtest.Config{})
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Dorp")
	require.NoError(t, err)
	token := issue(t, p, "ehealth", id)
	const keys, retries = 2, 50

	// Sign once per key: a retry resends the same message.
	msgs := make([][]byte, keys)
	for k := range keys {
		msgs[k] = signWithToken(t, id.Key, token, tarificationRequest(fmt.Sprintf("key-%d", k), "partition-a", []byte(fmt.Sprintf("payload %d", k))))
	}
	var wg sync.WaitGroup
	errs := make(chan error, keys*retries)
	for r := range retries {
		for k := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				site := []string{"ehealth", "mycarenet"}[(r+k)%2]
				req, _ := http.NewRequest(http.MethodPost, p.URL(platformtest.ServiceTarification, site), bytesReader(msgs[k]))
				req.Header.Set("SOAPAction", platformtest.ActionTarification)
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
				ref := doc.FindElement("//Reference")
				if code == nil || code.Text() != "200" || ref == nil || ref.Text() != fmt.Sprintf("key-%d", k) {
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
	require.Len(t, writes, keys, "each key accepted once")
	seen := map[string]bool{}
	for _, w := range writes {
		require.False(t, seen[w.Key])
		seen[w.Key] = true
		require.Equal(t, retries, w.Attempts)
		require.Equal(t, "partition-a", w.Partition)
		require.Equal(t, "Apotheek Dorp", w.Sender)
		require.Contains(t, []string{"ehealth", "mycarenet"}, w.Site)
		require.Equal(t, "payload "+w.Key[len("key-"):], string(w.Detail))
	}
	require.Equal(t, keys, p.Count("", platformtest.ServiceTarification, platformtest.OutcomeOK))
	require.Equal(t, keys*(retries-1), p.Count("", platformtest.ServiceTarification, platformtest.OutcomeDuplicate))
}

func TestTarification_BusinessRejectionIsNotRecorded(t *testing.T) {
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
	send := func(key, partition, detail string) *etree.Element {
		status, b := post(t, p.HTTPClient(), p.URL("tarification", "ehealth"), platformtest.ActionTarification,
			signWithToken(t, id.Key, token, tarificationRequest(key, partition, []byte(detail))))
		require.Equal(t, http.StatusOK, status, string(b))
		resp, f := answer(t, b)
		require.Nil(t, f)
		return resp
	}
	resp := send("k1", "p", "bad")
	require.Equal(t, "400", resp.FindElement("./Status/Code").Text())
	require.Equal(t, "unknown product code", resp.FindElement("./Status/Message").Text())
	resp = send("k2", "", "good")
	require.Equal(t, "400", resp.FindElement("./Status/Code").Text())
	require.Empty(t, p.Writes())

	resp = send("k1", "p", "good") // a corrected write under the same key
	require.Equal(t, "200", resp.FindElement("./Status/Code").Text())
	require.Len(t, p.Writes(), 1)
}
