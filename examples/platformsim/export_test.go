package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
)

// freePortRun finds a port whose next two ports are free too, so far as one can tell
// without holding them: listening on all three, then closing.
func freePortRun(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		base := ln.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{ln}
		ok := base+2 <= 65535
		for i := 1; ok && i <= 2; i++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, l)
		}
		for _, l := range lns {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no three consecutive free ports")
	return 0
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	blk, _ := pem.Decode(b)
	require.NotNil(t, blk, path)
	c, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	return c
}

func TestPlatformsim_FixedPortsExportsAndPatients(t *testing.T) {
	dir := t.TempDir()
	var s *sim
	var out strings.Builder
	var port int
	for try := 0; ; try++ {
		port = freePortRun(t)
		var err error
		s, err = startSim(config{dir: dir, control: "127.0.0.1:0", seed: 3, patients: 40, listVersion: 2, password: "pw", port: port}, &out)
		if err == nil {
			break
		}
		require.Less(t, try, 5, "ports taken between the check and the start: %v", err)
		out.Reset()
	}
	defer func() { require.NoError(t, s.close()) }()

	// The addresses are the fixed ones.
	lines := map[string]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			lines[f[0]] = f[1]
		}
	}
	require.Equal(t, "https://127.0.0.1:"+strconv.Itoa(port)+"/servicelist", lines["servicelist"])
	for i, sc := range platformtest.DefaultSites {
		require.Equal(t, "https://127.0.0.1:"+strconv.Itoa(port+1+i), lines["site/"+sc.Name])
	}

	// The service list served verifies against servicelist-ca.pem alone.
	listCA := readCert(t, filepath.Join(dir, "servicelist-ca.pem"))
	require.True(t, listCA.IsCA)
	roots := x509.NewCertPool()
	roots.AddCert(listCA)
	tlsRoots := x509.NewCertPool()
	tlsRoots.AddCert(readCert(t, filepath.Join(dir, "ca.pem")))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tlsRoots, MinVersion: tls.VersionTLS12}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Get(lines["servicelist"] + ".xml")
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromBytes(raw))
	_, err = soap.VerifyEnveloped(doc.Root(), roots, soap.VerifyEnvelopedOptions{IDAttr: "Id"})
	require.NoError(t, err, "the list verifies against the exported CA")
	_, err = soap.VerifyEnveloped(doc.Root(), tlsRoots, soap.VerifyEnvelopedOptions{IDAttr: "Id"})
	require.Error(t, err, "and not against another CA")

	// sts.pem is the certificate the STS signs its tokens with.
	require.Equal(t, s.p.STSCertificate().Raw, readCert(t, filepath.Join(dir, "sts.pem")).Raw)

	// patients.json and GET /patients list every generated patient with the expected answer.
	var fromFile, fromHTTP []patientAnswer
	b, err := os.ReadFile(filepath.Join(dir, "patients.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &fromFile))
	resp, err = http.Get(s.control + "/patients")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&fromHTTP))
	resp.Body.Close()
	require.Len(t, fromFile, 40)
	require.Equal(t, fromFile, fromHTTP)
	kinds := map[string]int{}
	for _, a := range fromFile {
		pt, ok := s.p.Patient(a.SSIN)
		kinds[a.Expected]++
		switch a.Expected {
		case "unknown":
			require.False(t, ok && pt.Known, a.SSIN)
		case "insured", "not-insured":
			require.True(t, ok && pt.Known, a.SSIN)
			require.Equal(t, a.Expected == "insured", pt.CoveredOn(time.Now()), a.SSIN)
			require.Equal(t, string(pt.Regime), a.Regime)
			require.Equal(t, pt.RegNrWithMut, a.RegNrWithMut)
		default:
			t.Fatalf("expected %q", a.Expected)
		}
	}
	require.Positive(t, kinds["insured"], "%v", kinds)
}

func TestPlatformsim_PortOutOfRange(t *testing.T) {
	_, err := startSim(config{dir: t.TempDir(), control: "127.0.0.1:0", port: 65534}, io.Discard)
	require.ErrorContains(t, err, "-port 65534")
}
